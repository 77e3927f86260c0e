"""The application factory: Flask with the store, the JSON API and the Dash console attached."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, abort, jsonify, request

import console
from clew import metrics, store
from clew.store import queries

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: CLEW_DATABASE_URL, else ./clew.db
    "DEMO": False,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Clew web app. Nothing connects or starts until a request arrives."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("CLEW")
    if config:
        app.config.update(config)
    store.init_app(app)
    _register_api(app)
    console.init_app(app)
    return app


def _window_from_request() -> queries.Window:
    try:
        return queries.window_between(
            request.args.get("since"), request.args.get("until"), time.time_ns()
        )
    except ValueError as error:
        abort(400, description=str(error))


def _register_api(app: Flask) -> None:
    @app.get("/api/graph")
    def api_graph():
        """The dependency graph with per-edge metrics (the same document as `clew graph --json`)."""
        with store.engine_of(app).connect() as conn:
            return jsonify(metrics.graph_view(conn, _window_from_request()))

    @app.get("/api/overview")
    def api_overview():
        """The Overview page's figures."""
        with store.engine_of(app).connect() as conn:
            return jsonify(metrics.overview(conn, _window_from_request()).__dict__)

    @app.get("/healthz")
    def healthz():
        """Liveness and database reachability."""
        with store.engine_of(app).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return jsonify({"status": "ok"})
