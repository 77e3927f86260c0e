"""Who is asking: logins with signed session cookies, API tokens, CSRF, and each route's role.

With ``AUTH`` on (``CLEW_AUTH``, the default), every request but the login page, ``/healthz`` and
the OTLP receiver (which checks its own ingest tokens) needs a logged-in account or an API token
(``Authorization: Bearer clew_...``, scope read or admin). Browsers without one are sent to
``/login``; API clients and Dash's own requests get 401 JSON.

Roles, lowest first: viewer (reads everything), governance (also waivers and reports), admin.
A read token acts as a viewer, an admin token as an admin; an ingest token only ingests.

CSRF: a session holds a random token; every response to a session sets it as the cookie
``_csrf_token`` (readable by scripts, as dash-renderer's ``getCSRFHeader`` reads that cookie and
sends it back as ``X-CSRFToken`` on its requests), and a state-changing request from a session
must carry it as that header or as the form field ``csrf_token``. A cross-site page can neither
read the cookie nor set the header. Token requests carry no cookies and are exempt.

The session key is ``SECRET_KEY`` (``CLEW_SECRET_KEY``) when set, else one made at random the first
time and kept in the store's ``settings`` table, so that restarts and every process on the same
database keep the same sessions.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from clew import store
from clew.store import accounts
from console import access

#: The role each kind of token acts as (an ingest token reaches the receiver only).
TOKEN_ROLES = {"read": "viewer", "admin": "admin"}
#: Routes (Flask endpoints) that need more than the viewer role.
ROUTE_ROLES = {"governance_report": access.REPORT_ROLE} | dict.fromkeys(
    (
        "api_users",
        "api_add_user",
        "api_set_user_role",
        "api_disable_user",
        "api_enable_user",
        "api_tokens",
        "api_create_token",
        "api_revoke_token",
    ),
    access.ADMIN_ROLE,
)
#: The OTLP receiver's endpoints (traces, metrics), which check ingest tokens themselves
#: (``clew.receiver``).
RECEIVER_ENDPOINTS = ("otlp_receiver.export_traces", "otlp_receiver.export_metrics")
#: The OpenID Connect login's endpoints (``clew.oidc``), when it is configured.
OIDC_ENDPOINTS = ("oidc_login", "oidc_callback")
#: Endpoints anyone may reach: the login pages, the liveness check, and the receiver.
PUBLIC_ENDPOINTS = frozenset({"login", "logout", "healthz", *RECEIVER_ENDPOINTS, *OIDC_ENDPOINTS})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
#: The name the generated session key is kept under in the ``settings`` table.
SECRET_KEY_SETTING = "session_secret_key"


def enabled(app: Flask | None = None) -> bool:
    """Whether ``app`` (or the current one) requires logins and tokens."""
    return bool((app or current_app).config.get("AUTH"))


def at_least(role: str | None, wanted: str) -> bool:
    """Whether ``role`` may do what ``wanted`` may (viewer < governance < admin)."""
    return role in accounts.ROLES and accounts.ROLES.index(role) >= accounts.ROLES.index(wanted)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the key read from the store the first time one is
    needed (nothing connects when the app is made)."""

    def get_signing_serializer(self, app: Flask):
        # Flask asks on every request; with auth off there are no sessions (and no key made).
        if not app.secret_key and enabled(app):
            app.secret_key = _stored_secret_key(app)
        return super().get_signing_serializer(app)


def _stored_secret_key(app: Flask) -> str:
    with store.engine_of(app).begin() as conn:
        return accounts.setting(
            conn, SECRET_KEY_SETTING, lambda: secrets.token_urlsafe(48), store.utcnow()
        )


def init_app(app: Flask) -> None:
    """Put logins, tokens, CSRF and roles in front of ``app``'s routes (when ``AUTH`` is on),
    and add ``/login`` and ``/logout``."""
    app.session_interface = _SessionInterface()
    app.config["SESSION_COOKIE_NAME"] = "clew_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.before_request(_authenticate)
    app.after_request(_set_csrf_cookie)
    app.add_url_rule("/login", "login", _login, methods=["GET", "POST"])
    app.add_url_rule("/logout", "logout", _logout, methods=["GET", "POST"])


def current_identity() -> dict[str, Any] | None:
    """Who the current request is: ``{"kind": "user" | "token", "name", "role"}``, or None."""
    return g.get("clew_identity")


def _bearer() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def token_scope(app: Flask, token: str | None) -> str | None:
    """The scope of the API token ``token`` in force (its last use recorded), or None."""
    if not token:
        return None
    with store.engine_of(app).begin() as conn:
        found = accounts.use_token(conn, token, store.utcnow())
    return found["scope"] if found else None


def _refuse(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="clew"'
    return response


def _wants_json() -> bool:
    """Whether the request comes from a program (the JSON API, Dash's own requests, a token
    holder) rather than a browser navigating to a page."""
    path = request.path
    return (
        path.startswith(("/api/", "/_dash-"))
        or "Authorization" in request.headers
        or request.method not in SAFE_METHODS
    )


def _authenticate() -> Response | None:
    """The before-request hook: find who is asking, refuse who may not, check CSRF."""
    if not enabled():
        g.clew_role = "admin"  # no accounts: everyone may do everything, as before auth
        return None
    g.clew_role = None
    if request.endpoint in RECEIVER_ENDPOINTS:
        return None  # the receiver checks its own tokens
    token = _bearer()
    if token is not None:
        scope = token_scope(current_app, token)
        if scope is None:
            return _refuse(401, "the API token is unknown or revoked")
        g.clew_role = TOKEN_ROLES.get(scope)
        g.clew_identity = {"kind": "token", "name": f"{scope} token", "role": g.clew_role}
    elif (user_id := session.get("uid")) is not None:
        with store.engine_of(current_app).begin() as conn:
            user = accounts.get_user(conn, user_id)
        if user is None:  # removed or disabled since: the session ends
            session.clear()
        else:
            g.clew_identity = {"kind": "user", "name": user["username"], "role": user["role"]}
            g.clew_role = user["role"]
    public = request.endpoint in PUBLIC_ENDPOINTS
    if g.clew_role is None and not public:
        if token is not None:
            return _refuse(403, "an ingest token may only send traces and metrics")
        if _wants_json():
            return _refuse(401, "log in, or send 'Authorization: Bearer <API token>'")
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    # Cookies ride along on a cross-site request; a token header cannot be made to.
    if request.method not in SAFE_METHODS and token is None and not _csrf_ok():
        return _refuse(403, "the CSRF token is missing or wrong; reload the page")
    wanted = ROUTE_ROLES.get(request.endpoint or "", "viewer")
    if not public and not at_least(g.clew_role, wanted):
        return _refuse(403, f"this needs the {wanted} role or above")
    return None


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not (expected and given):
        return False
    # Bytes: compare_digest refuses str with characters past ASCII, which a header may carry.
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def _set_csrf_cookie(response: Response) -> Response:
    """Hand the session's CSRF token to dash-renderer (which sends it back as a header)."""
    if enabled() and "csrf" in session and not _token_request():
        response.set_cookie(
            CSRF_COOKIE,
            session["csrf"],
            httponly=False,  # dash-renderer reads it from document.cookie
            samesite="Lax",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response


def _token_request() -> bool:
    """Whether the current request came with an API token (and so without cookies)."""
    identity = current_identity()
    return bool(identity and identity["kind"] == "token")


def begin_session(user: dict[str, Any]) -> None:
    """Log ``user`` (an account's id, username and role) in: a new session and CSRF token, so
    that a session fixed beforehand is worth nothing."""
    session.clear()
    session["uid"] = user["id"]
    csrf_token()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never another host)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target:
        return "/"
    return target


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clew — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
       border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
label { display: block; margin: .8rem 0 .2rem; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; box-sizing: border-box; }
button { margin-top: 1.2rem; padding: .5rem 1.2rem; }
.error { color: #b00020; }
.muted { color: #555; }
a.sso { display: block; text-align: center; padding: .6rem; border: 1px solid #1f5fbf;
        border-radius: 4px; color: #1f5fbf; text-decoration: none; }
</style></head>
<body><main>
<h1>Clew</h1>
{% if who %}<p>Logged in as <strong>{{ who }}</strong>.</p>
<form method="post" action="{{ url_for('logout') }}">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<button type="submit">Log out</button></form>
{% else %}
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if oidc %}
<p><a class="sso" href="{{ url_for('oidc_login', next=next) }}">Log in with {{ oidc }}</a></p>
<p class="muted">or with a Clew account:</p>{% endif %}
<form method="post" action="{{ url_for('login', next=next) }}">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{ username }}" autocomplete="username"
 required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
{% endif %}
</main></body></html>
"""


def login_page(status: int = 200, **values: Any) -> tuple[str, int]:
    """The login page (with ``error``, ``username`` and ``next`` when given), answered with
    ``status``."""
    oidc = current_app.config.get("OIDC_ISSUER") and (
        current_app.config.get("OIDC_NAME") or "single sign-on"
    )
    values = {"who": None, "error": None, "username": "", "next": "/", "oidc": oidc, **values}
    # render_template_string escapes every value (Flask turns autoescape on for strings).
    return render_template_string(LOGIN_PAGE, csrf=csrf_token(), **values), status


def _login():
    """``GET /login``: the form; ``POST``: check the username and password, start a session."""
    target = safe_next(request.args.get("next"))
    if not enabled():
        return redirect(target)
    if request.method == "GET":
        identity = current_identity()
        return login_page(who=identity["name"] if identity else None, next=target)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if not username:
        return login_page(401, error="Wrong username or password.", next=target)
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_FAILURE_WINDOW"])
    address = request.remote_addr or "-"
    now = store.utcnow()
    with store.engine_of(current_app).begin() as conn:
        wait = accounts.login_retry_after(
            conn,
            username,
            address,
            now,
            per_name=config["LOGIN_FAILURES_PER_NAME"],
            per_address=config["LOGIN_FAILURES_PER_ADDRESS"],
            window=window,
        )
        # While refused, the password is not even checked: guessing gains nothing.
        user = None if wait else accounts.authenticate(conn, username, password)
        if user is None and not wait:
            accounts.record_login_failure(conn, username, address, now, window)
        elif user is not None:
            accounts.clear_login_failures(conn, username)
            accounts.record_login(conn, user["id"], now)
    if wait:
        minutes = max(1, round(wait / 60))
        body, status = login_page(
            429,
            error=f"Too many failed logins for this name or from this address."
            f" Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            username=username,
            next=target,
        )
        return body, status, {"Retry-After": str(wait)}
    if user is None:
        return login_page(401, error="Wrong username or password.", username=username, next=target)
    begin_session(user)
    return redirect(target)


def _logout():
    """``POST /logout`` ends the session (``GET`` shows the button, so a link cannot)."""
    if request.method == "POST":
        session.clear()
        return redirect(url_for("login"))
    if not enabled():
        return redirect("/")
    identity = current_identity()
    return login_page(who=identity["name"] if identity else None)
