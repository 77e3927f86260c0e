"""The Dash console, attached to the Flask app that ``clew.app.create_app`` builds.

Read-only: pages reach the store only through ``console.queries``. Everything is registered per
app in ``init_app``, so several apps can live in one process (tests, WSGI dispatchers).
"""

from __future__ import annotations

from pathlib import Path

import dash_cytoscape as cyto
from dash import Dash
from flask import Flask

from console import shell

ASSETS = Path(__file__).resolve().parent / "assets"


def init_app(flask_app: Flask) -> Dash:
    """Attach the console to ``flask_app`` at ``/`` and return the Dash app."""
    # The extra bundle carries dagre (the map's layered layout); it is served from the package.
    cyto.load_extra_layouts()
    app = Dash(
        __name__,
        server=flask_app,
        url_base_pathname="/",
        assets_folder=str(ASSETS),
        serve_locally=True,
        use_pages=False,
        pages_folder="",
        suppress_callback_exceptions=True,  # pages are rendered into the shell by the router
        title="Clew",
        update_title=None,
    )
    app.layout = shell.layout(
        demo=bool(flask_app.config.get("DEMO")), auth=bool(flask_app.config.get("AUTH"))
    )
    shell.register_callbacks(app)
    for page in shell.PAGES.values():
        page.register_callbacks(app)
    flask_app.extensions["clew.console"] = app
    return app
