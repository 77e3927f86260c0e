"""The application factory: Flask with the store, the JSON API and the Dash console attached."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, jsonify, make_response, request
from werkzeug.middleware.proxy_fix import ProxyFix

import console
from clew import auth, exemplars, oidc, receiver, store
from clew.store import accounts, queries
from console import access
from console import queries as console_queries

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: CLEW_DATABASE_URL, else ./clew.db
    "AUTH": True,  # logins and API tokens required (clew.auth); clew demo turns it off
    "DEMO": False,
    "OTLP_TOKEN": None,  # when set, POST /v1/traces needs "Authorization: Bearer <it>"
    "OTLP_QUEUE_SIZE": 32,  # requests waiting for the receiver's writer before 503s
    "READ_ONLY": False,  # when true, waivers cannot be created or revoked (console and API)
    # Password logins refused for a while after this many failures in the window (clew.auth).
    "LOGIN_FAILURES_PER_NAME": 5,
    "LOGIN_FAILURES_PER_ADDRESS": 20,
    "LOGIN_FAILURE_WINDOW": 900,  # seconds
    # How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: trust none).
    "TRUSTED_PROXY_HOPS": 0,
    # A Jaeger or Tempo query API that keeps raw traces (TRACE_QUERY_*); unset, none is asked.
    **exemplars.DEFAULTS,
}

#: Each report format's media type and file extension.
REPORT_TYPES: dict[str, tuple[str, str]] = {
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
    "sarif": ("application/sarif+json", "sarif"),
    "junit": ("application/xml; charset=utf-8", "xml"),
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Clew web app. Nothing connects or starts until a request arrives."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("CLEW")
    if config:
        app.config.update(config)
    if hops := int(app.config["TRUSTED_PROXY_HOPS"]):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    _add_security_headers(app)
    store.init_app(app)
    exemplars.init_app(app)
    auth.init_app(app)
    oidc.init_app(app)
    _register_api(app)
    receiver.init_app(app)
    console.init_app(app)
    return app


def _window_from_request() -> queries.Window:
    try:
        return queries.window_between(
            request.args.get("since"), request.args.get("until"), time.time_ns()
        )
    except ValueError as error:
        abort(400, description=str(error))


def _required(name: str) -> str:
    value = request.args.get(name)
    if not value:
        abort(400, description=f"{name} is required")
    return value


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

    @app.get("/api/node")
    def api_node():
        """The node panel: the node's figures, the endpoints it serves, its inbound per-minute
        series and its blast radius (`name` required)."""
        name = _required("name")
        window = _window_from_request()
        engine = store.engine_of(app)
        graph = console_queries.graph(engine, window)
        node = next((n for n in graph["nodes"] if n["id"] == name), None)
        detail = console_queries.node_detail(engine, window, name)
        return jsonify(
            {
                "node": node,
                "endpoints": detail.endpoints,
                "series": detail.series,
                "blast_radius": detail.blast_radius,
            }
        )

    @app.get("/api/edge-endpoints")
    def api_edge_endpoints():
        """The endpoints of one edge with their metrics (`client` and `server` required)."""
        client, server = _required("client"), _required("server")
        window = _window_from_request()
        return jsonify(console_queries.edge_endpoints(store.engine_of(app), window, client, server))

    @app.get("/api/blast-radius")
    def api_blast_radius():
        """Every node that depends on `node`, directly or transitively, sorted."""
        node = _required("node")
        window = _window_from_request()
        return jsonify(console_queries.blast_radius(store.engine_of(app), window, node))

    @app.get("/api/graph-diff")
    def api_graph_diff():
        """The window (`since` required) against the one of the same length before it."""
        _required("since")
        result = console_queries.graph_diff(store.engine_of(app), _window_from_request())
        return jsonify(result.diff)

    @app.get("/api/paths")
    def api_paths():
        """Failing integration paths of the window, most failing traces first."""
        return jsonify(console_queries.failing_paths(store.engine_of(app), _window_from_request()))

    @app.get("/api/traces/<trace_id>")
    def api_trace(trace_id: str):
        """One trace as the Paths page's waterfall: spans, critical path, failing span; from
        the configured Jaeger or Tempo query API when the store no longer has it."""
        trace_query = exemplars.configured(app)
        found = exemplars.exemplar(store.engine_of(app), trace_id, trace_query)
        if found.trace is None:
            problem = found.problem
            if problem is None or isinstance(problem, exemplars.TraceNotFound):
                abort(404, description=found.explanation())
            status = 400 if isinstance(problem, exemplars.BadTraceId) else 502
            abort(status, description=str(problem))
        return jsonify(found.document())

    _register_governance(app)
    _register_admin(app)

    @app.get("/healthz")
    def healthz():
        """Liveness and database reachability."""
        with store.engine_of(app).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return jsonify({"status": "ok"})


def _fail(status: int, message: str):
    """Stop the request with ``status`` and a JSON body ``{"error": message}``."""
    abort(make_response(jsonify({"error": message}), status))


def _owners() -> tuple[str | None, str | None]:
    return request.args.get("team") or None, request.args.get("system") or None


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        _fail(400, "the body must be a JSON object")
    return body


def _text_fields(body: dict[str, Any], *names: str) -> list[str]:
    """The non-empty strings ``names`` of a JSON body, in order (400 naming the first missing)."""
    values = []
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            _fail(400, f"{name} is required (a non-empty string)")
        values.append(value)
    return values


def _register_admin(app: Flask) -> None:
    """Accounts and API tokens (the Admin page's JSON twins): the admin role only, which
    ``clew.auth.ROUTE_ROLES`` asks of each of these endpoints."""

    def _changed(change, *args) -> None:
        try:
            change(store.engine_of(app), *args)
        except accounts.NoSuchAccount as error:
            _fail(404, str(error))
        except accounts.LockoutRefused as error:
            _fail(409, str(error))
        except accounts.AccountError as error:
            _fail(400, str(error))

    @app.get("/api/users")
    def api_users():
        """Every account: name, role, how it logs in, last login, enabled or disabled."""
        return jsonify(console_queries.users(store.engine_of(app)))

    @app.post("/api/users")
    def api_add_user():
        """Add a local account from a JSON body: username, password, role."""
        username, password, role = _text_fields(_json_body(), "username", "password", "role")
        _changed(console_queries.add_user, username, password, role, store.utcnow())
        return jsonify(_user(username)), 201

    @app.post("/api/users/<username>/role")
    def api_set_user_role(username: str):
        """Give an account the role in the JSON body's ``role``."""
        (role,) = _text_fields(_json_body(), "role")
        if role not in accounts.ROLES:
            _fail(400, f"role must be one of {', '.join(accounts.ROLES)}")
        _changed(console_queries.set_user_role, username, role, access.user())
        return jsonify(_user(username))

    @app.post("/api/users/<username>/disable")
    def api_disable_user(username: str):
        """Disable an account: it cannot log in and its sessions end."""
        _changed(console_queries.set_user_disabled, username, True, store.utcnow(), access.user())
        return jsonify(_user(username))

    @app.post("/api/users/<username>/enable")
    def api_enable_user(username: str):
        """Enable a disabled account again."""
        _changed(console_queries.set_user_disabled, username, False, store.utcnow(), access.user())
        return jsonify(_user(username))

    def _user(username: str) -> dict[str, Any]:
        return next(
            u for u in console_queries.users(store.engine_of(app)) if u["username"] == username
        )

    @app.get("/api/tokens")
    def api_tokens():
        """Every API token (never its text): name, scope, last use, in force or revoked."""
        return jsonify(console_queries.tokens(store.engine_of(app)))

    @app.post("/api/tokens")
    def api_create_token():
        """Make a token from a JSON body (name, scope); its text is in this answer only."""
        name, scope = _text_fields(_json_body(), "name", "scope")
        try:
            token_id, token = console_queries.create_token(
                store.engine_of(app), name, scope, store.utcnow()
            )
        except ValueError as error:
            _fail(400, str(error))
        return jsonify({"id": token_id, "name": name, "scope": scope, "token": token}), 201

    @app.post("/api/tokens/<int:token_id>/revoke")
    def api_revoke_token(token_id: int):
        """Revoke a token: requests carrying it are refused from now on."""
        if not console_queries.revoke_token(store.engine_of(app), token_id, store.utcnow()):
            _fail(404, f"no token #{token_id} in force")
        return jsonify({"id": token_id, "revoked": True})


def _register_governance(app: Flask) -> None:
    """The Governance page's JSON twins, its waiver writes, and the report downloads."""

    @app.get("/api/findings")
    def api_findings():
        """Open and waived findings (or those in `state`), of `team`, `system`, `severity`."""
        from policies.engine import SEVERITIES

        team, system = _owners()
        state, severity = request.args.get("state"), request.args.get("severity")
        if severity and severity not in SEVERITIES:
            _fail(400, f"severity must be one of {', '.join(SEVERITIES)}")
        console_queries.lapse_waivers(store.engine_of(app), store.utcnow())
        try:
            found = console_queries.findings(
                store.engine_of(app),
                states=(state,) if state else ("open", "waived"),
                team=team,
                system=system,
            )
        except ValueError as error:
            _fail(400, str(error))
        return jsonify([f for f in found if not severity or f["severity"] == severity])

    @app.get("/api/waivers")
    def api_waivers():
        """Every waiver with its state, the findings it waives and the ones it covers."""
        return jsonify(console_queries.waivers(store.engine_of(app), store.utcnow()))

    @app.post("/api/waivers")
    def api_add_waiver():
        """Create a waiver from a JSON body: rule, subject, reason, approver, expires."""
        if not access.may_change_waivers():
            _fail(403, access.refusal())
        body = _json_body()
        fields = {}
        for name in ("rule", "subject", "reason", "approver", "expires"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                _fail(400, f"{name} is required (a non-empty string)")
            fields[name] = value
        try:
            made = console_queries.add_waiver(
                store.engine_of(app), store.utcnow(), created_by=access.actor(), **fields
            )
        except ValueError as error:
            _fail(400, str(error))
        waiver = next(
            w
            for w in console_queries.waivers(store.engine_of(app), store.utcnow())
            if w["id"] == made["id"]
        )
        return jsonify(waiver), 201

    @app.post("/api/waivers/<int:waiver_id>/revoke")
    def api_revoke_waiver(waiver_id: int):
        """Revoke a waiver: the findings it waived open again."""
        if not access.may_change_waivers():
            _fail(403, access.refusal())
        if not console_queries.revoke_waiver(store.engine_of(app), waiver_id, store.utcnow()):
            _fail(404, f"no active waiver #{waiver_id}")
        return jsonify({"id": waiver_id, "revoked": True})

    @app.get("/api/governance")
    def api_governance():
        """The compliance report's data for `team` and `system` (the Governance page)."""
        team, system = _owners()
        return jsonify(
            console_queries.governance(store.engine_of(app), store.utcnow(), team, system)
        )

    @app.get("/reports/governance.<fmt>")
    def governance_report(fmt: str):
        """The compliance report for `team` and `system` as a file: html, pdf, csv, json,
        sarif or junit."""
        if fmt not in REPORT_TYPES:
            _fail(404, f"no report format {fmt!r}; known: {', '.join(REPORT_TYPES)}")
        team, system = _owners()
        content = console_queries.governance_report(
            store.engine_of(app), store.utcnow(), fmt, team, system
        )
        media_type, extension = REPORT_TYPES[fmt]
        name = "-".join(["clew-governance", *[v for v in (team, system) if v]])
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return Response(
            content,
            content_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="{safe}.{extension}"'},
        )


# --- Security headers ----------------------------------------------------------------------

#: The Content-Security-Policy of every response, with ``{scripts}`` the hashes of the
#: console's inline scripts. Nothing from another origin; styles may be inline because Dash's
#: components (Plotly, AG Grid, Cytoscape) write ``<style>`` elements at run time, and
#: AG Grid draws its icons from ``data:`` SVG images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _add_security_headers(app: Flask) -> None:
    """Give every response of ``app`` (console, assets, JSON API, receiver) its security
    headers: a CSP, no framing, no sniffing, no referrer."""
    policy: list[str] = []  # made at the first response, once every inline script is known

    @app.after_request
    def security_headers(response: Response) -> Response:
        if not policy:
            dash_app = app.extensions.get("clew.console")
            hashes = dash_app.csp_hashes() if dash_app is not None else []
            policy.append(CONTENT_SECURITY_POLICY.format(scripts=" ".join(hashes)))
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy[0])
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        return response
