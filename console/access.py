"""Who may change what through the console and its JSON API.

Roles do not exist yet: ``may_change_waivers`` is the one place that decides whether the current
request may create or revoke a waiver, so that the roles work replaces its body and nothing else.
"""

from __future__ import annotations

from flask import current_app


def may_change_waivers() -> bool:
    """Whether the current request may create or revoke waivers: always, unless the app's
    config says ``READ_ONLY`` (``CLEW_READ_ONLY``). Call it inside a request."""
    return not current_app.config.get("READ_ONLY")


#: What the console and the API say when ``may_change_waivers`` refuses.
READ_ONLY_TEXT = "This Clew is read-only (READ_ONLY is set): waivers cannot be changed here."
