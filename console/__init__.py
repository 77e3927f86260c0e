"""The Dash console (placeholder until the console module lands)."""


def init_app(app):
    return None
