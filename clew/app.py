"""The application factory: Flask with the store, the JSON API and the Dash console attached."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, abort, jsonify, request

import console
from clew import store
from clew.store import queries
from console import queries as console_queries

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
    """The JSON twin of every console view, served by the console's own query functions."""

    @app.get("/api/graph")
    def api_graph():
        """The dependency graph with per-edge metrics (the same document as `clew graph --json`)."""
        return jsonify(console_queries.graph(store.engine_of(app), _window_from_request()))

    @app.get("/api/overview")
    def api_overview():
        """The Overview page's figures, per-minute series and worst edges."""
        model = console_queries.overview(store.engine_of(app), _window_from_request())
        return jsonify({"figures": model.figures, "series": model.series})

    @app.get("/api/edge-series")
    def api_edge_series():
        """Per-minute rate, error ratio and p95 of one edge (`client` and `server` required)."""
        client, server = request.args.get("client"), request.args.get("server")
        if not client or not server:
            abort(400, description="client and server are required")
        window = _window_from_request()
        return jsonify(console_queries.edge_series(store.engine_of(app), window, client, server))

    @app.get("/healthz")
    def healthz():
        """Liveness and database reachability."""
        with store.engine_of(app).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return jsonify({"status": "ok"})
