"""Who may do what in the web app: logins, sessions, CSRF, API tokens, and each role's reach over
every Flask route and every Dash callback that changes state."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from clew import receiver, store
from clew.app import create_app
from clew.store import accounts
from console import ids
from tests.console.test_http import _names, _outputs

PASSWORD = "a long enough passphrase"
ROLES = ("viewer", "governance", "admin")
TOKENS = {"read token": "read", "ingest token": "ingest", "admin token": "admin"}
IDENTITIES = ("anonymous", *ROLES, *TOKENS)
#: The role each identity acts as in the console and the JSON API.
ACTS_AS = {"viewer": "viewer", "governance": "governance", "admin": "admin"} | {
    "read token": "viewer",
    "admin token": "admin",
}
GOV = ids.Governance
ADMIN = ids.Admin
HOSTILE = "<img src=x onerror=alert(1)>"


def _expires() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).date().isoformat()


def waiver_body() -> dict[str, str]:
    return {
        "rule": "zombie-endpoint",
        "subject": "payments-api POST /v2/refunds",
        "reason": "Partners move off /v2/refunds by January (PAY-88)",
        "approver": "lead.payments@shop.example",
        "expires": _expires(),
    }


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    """argon2id at its lowest cost: these tests hash a password at every login, and what they
    check is who gets in, not the hash (tests/clew/test_accounts.py checks that, at full cost)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        accounts, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@dataclass
class Site:
    app: Flask
    tokens: dict[str, str]

    def engine(self):
        return store.engine_of(self.app)


def make_site(tmp_path: Path, **config: Any) -> Iterator[Site]:
    path = tmp_path / "clew.db"
    engine = store.open_engine(str(path))
    store.upgrade(engine)
    tokens = {}
    with engine.begin() as conn:
        for role in ROLES:
            accounts.add_user(conn, role, PASSWORD, role, store.utcnow())
        for name, scope in TOKENS.items():
            tokens[name] = accounts.create_token(conn, name, scope, store.utcnow())[1]
    engine.dispose()
    app = create_app({"DATABASE_URL": str(path), "AUTH": True, **config})
    yield Site(app, tokens)
    receiver.stop(app)
    store.engine_of(app).dispose()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A web app with auth on, an account of each role and a token of each scope."""
    yield from make_site(tmp_path)


def csrf_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("_csrf_token")
    return cookie.value if cookie else None


def login(client: FlaskClient, username: str, password: str = PASSWORD, **extra):
    """Log in as a browser does: the form (which sets the CSRF cookie), then its POST."""
    assert client.get("/login").status_code == 200
    form = {"username": username, "password": password, "csrf_token": csrf_of(client), **extra}
    return client.post("/login", data=form)


class Caller:
    """One identity's requests: a browser session (sending the CSRF header dash-renderer
    sends), an API token, or nobody."""

    def __init__(self, site: Site, who: str):
        self.client = site.app.test_client()
        self.headers: dict[str, str] = {}
        self.who = who
        if who in TOKENS:
            self.headers["Authorization"] = f"Bearer {site.tokens[who]}"
        elif who in ROLES:
            assert login(self.client, who).status_code == 302
        else:
            self.client.get("/login")  # a session holding only a CSRF token

    def open(self, method: str, url: str, **kwargs):
        headers = dict(self.headers)
        if csrf_of(self.client) and "Authorization" not in headers:
            headers["X-CSRFToken"] = csrf_of(self.client)
        return self.client.open(url, method=method, headers=headers, **kwargs)


# --- Logins and sessions ------------------------------------------------------------------------


def test_a_browser_without_a_session_is_sent_to_the_login_page_and_back(site):
    client = site.app.test_client()
    page = client.get("/governance?team=payments")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/governance?team%3Dpayments"
    done = login(client, "viewer", next="/ignored")
    assert done.status_code == 302 and done.headers["Location"] == "/"
    form = client.get("/login?next=/governance?team%3Dpayments").get_data(as_text=True)
    assert "Logged in as <strong>viewer</strong>" in form
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    client.get("/login?next=/governance?team%3Dpayments")
    back = client.post(
        "/login?next=/governance?team%3Dpayments",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert back.headers["Location"] == "/governance?team=payments"
    assert client.get("/governance?team=payments").status_code == 200


def _components(tree: Any, component_id: str) -> list[dict]:
    """The components of a Dash layout (as JSON) with the id ``component_id``."""
    found = []
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == component_id:
            found.append(tree)
        for value in tree.values():
            found += _components(value, component_id)
    elif isinstance(tree, list):
        for value in tree:
            found += _components(value, component_id)
    return found


def test_the_console_links_to_the_log_out_page_when_logins_are_on(site, tmp_path):
    client = site.app.test_client()
    login(client, "viewer")
    links = _components(client.get("/_dash-layout").get_json(), ids.LOGOUT)
    assert [(c["type"], c["props"]["href"], c["props"]["children"]) for c in links] == [
        ("A", "/logout", "Log out")
    ]
    page = client.get("/logout").get_data(as_text=True)
    assert "Logged in as <strong>viewer</strong>" in page and 'action="/logout"' in page
    path = tmp_path / "open.db"
    store.upgrade(store.open_engine(str(path)))
    open_app = create_app({"DATABASE_URL": str(path), "AUTH": False})
    assert _components(open_app.test_client().get("/_dash-layout").get_json(), ids.LOGOUT) == []
    store.engine_of(open_app).dispose()


def test_an_api_client_without_credentials_gets_401_json(site):
    client = site.app.test_client()
    for url in ("/api/graph", "/api/waivers", "/_dash-layout", "/_dash-dependencies"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.get_json() == {
            "error": "log in, or send 'Authorization: Bearer <API token>'"
        }
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="clew"'


def test_a_wrong_password_or_unknown_name_is_refused_alike(site):
    client = site.app.test_client()
    wrong = login(client, "viewer", "not the passphrase")
    unknown = login(client, "nobody")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/api/graph").status_code == 401


def test_the_session_cookie_is_signed_http_only_and_same_site(site):
    client = site.app.test_client()
    response = login(client, "viewer")
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("clew_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("_csrf_token="))
    assert "HttpOnly" not in csrf_cookie and "SameSite=Lax" in csrf_cookie
    value = client.get_cookie("clew_session").value
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.set_cookie("clew_session", forged)
    assert client.get("/api/graph").status_code == 401


def test_logging_in_starts_a_new_session_and_csrf_token(site):
    client = site.app.test_client()
    client.get("/login")
    before = csrf_of(client)
    login(client, "viewer")
    assert csrf_of(client) not in (None, before)


def test_the_login_page_shows_names_as_text(site):
    client = site.app.test_client()
    page = login(client, HOSTILE, next='"><script>alert(1)</script>')
    html = page.get_data(as_text=True)
    assert page.status_code == 401
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil"]
)
def test_after_login_a_browser_goes_nowhere_but_this_site(site, target):
    client = site.app.test_client()
    client.get("/login")
    done = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert done.status_code == 302 and done.headers["Location"] == "/"


def test_logging_out_ends_the_session_and_needs_the_csrf_token(site):
    client = site.app.test_client()
    login(client, "admin")
    assert client.post("/logout").status_code == 403  # a cross-site form cannot log one out
    assert client.get("/api/graph").status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/api/graph").status_code == 401


def test_a_removed_account_loses_its_session_and_a_new_role_counts_at_once(site):
    admin, governance = site.app.test_client(), site.app.test_client()
    login(admin, "admin")
    login(governance, "governance")
    headers = {"X-CSRFToken": csrf_of(governance)}
    with site.engine().begin() as conn:
        accounts.set_role(conn, "governance", "viewer")
    refused = governance.post("/api/waivers", json=waiver_body(), headers=headers)
    assert refused.status_code == 403
    assert refused.get_json() == {"error": access_text("viewer")}
    with site.engine().begin() as conn:
        accounts.remove_user(conn, "admin")
    assert admin.get("/api/graph").status_code == 401
    assert admin.get("/").status_code == 302


def test_a_disabled_account_loses_its_session_and_cannot_log_in_until_enabled(site):
    client = site.app.test_client()
    login(client, "viewer")
    assert client.get("/api/graph").status_code == 200
    with site.engine().begin() as conn:
        assert accounts.set_disabled(conn, "viewer", store.utcnow())
    assert client.get("/api/graph").status_code == 401
    assert login(client, "viewer").status_code == 401
    with site.engine().begin() as conn:
        assert accounts.set_disabled(conn, "viewer", None)
    assert login(client, "viewer").status_code == 302
    assert client.get("/api/graph").status_code == 200


# --- Failed logins held back --------------------------------------------------------------------


@pytest.fixture
def strict_site(tmp_path: Path) -> Iterator[Site]:
    """As ``site``, with 3 failures allowed per name and 5 per address in 10 minutes."""
    yield from make_site(
        tmp_path,
        LOGIN_FAILURES_PER_NAME=3,
        LOGIN_FAILURES_PER_ADDRESS=5,
        LOGIN_FAILURE_WINDOW=600,
    )


def _age_failures(site: Site, seconds: int) -> None:
    """Move every recorded failure ``seconds`` into the past, as if that time had passed."""
    with site.engine().begin() as conn:
        for row_id, at in conn.execute(text("SELECT id, at FROM login_failures")).all():
            older = accounts.aware(at) - timedelta(seconds=seconds)
            conn.execute(
                text("UPDATE login_failures SET at = :at WHERE id = :id"),
                {"at": older, "id": row_id},
            )


def test_a_name_with_too_many_failed_logins_is_held_back_even_with_its_password(strict_site):
    client = strict_site.app.test_client()
    for _ in range(3):
        assert login(client, "viewer", "guess").status_code == 401
    held = login(client, "viewer")  # the right password, but too late
    assert held.status_code == 429
    assert 590 <= int(held.headers["Retry-After"]) <= 600
    assert "Too many failed logins" in held.get_data(as_text=True)
    assert "Try again in 10 minutes." in held.get_data(as_text=True)
    assert client.get("/api/graph").status_code == 401
    # Refused attempts are not checked, so they do not count (nor push the wait further).
    with strict_site.engine().begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM login_failures")).scalar_one() == 3
    # Another name from the same address is still let in.
    assert login(strict_site.app.test_client(), "admin").status_code == 302
    _age_failures(strict_site, 601)
    assert login(client, "viewer").status_code == 302
    assert client.get("/api/graph").status_code == 200


def test_a_success_clears_the_names_failures(strict_site):
    client = strict_site.app.test_client()
    for _ in range(2):
        login(client, "viewer", "guess")
    assert login(client, "viewer").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    for _ in range(2):  # two more: four in all, but the count began again at the success
        assert login(client, "viewer", "guess").status_code == 401
    assert login(client, "viewer").status_code == 302
    with strict_site.engine().begin() as conn:
        last = conn.execute(
            text("SELECT last_login_at FROM users WHERE username = 'viewer'")
        ).scalar_one()
    assert abs((accounts.aware(last) - store.utcnow()).total_seconds()) < 60


def test_an_address_guessing_many_names_is_held_back(strict_site):
    client = strict_site.app.test_client()
    for name in ("a", "b", "c", "d", "e"):  # five names, one guess each
        assert login(client, name, "guess").status_code == 401
    assert login(client, "admin").status_code == 429
    # Another address (the test client's REMOTE_ADDR) may still log in as admin.
    other = strict_site.app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert login(other, "admin").status_code == 302


def test_clew_users_unlock_forgets_the_failures(strict_site, tmp_path):
    from click.testing import CliRunner

    from clew.cli import main

    client = strict_site.app.test_client()
    for _ in range(3):
        login(client, "viewer", "guess")
    assert login(client, "viewer").status_code == 429
    unlocked = CliRunner().invoke(
        main, ["users", "unlock", "viewer", "--db", str(tmp_path / "clew.db")]
    )
    assert unlocked.exit_code == 0 and "3 failed logins of viewer forgotten" in unlocked.output
    assert login(client, "viewer").status_code == 302


def test_behind_trusted_proxies_the_forwarded_address_counts(tmp_path):
    for site in make_site(tmp_path, TRUSTED_PROXY_HOPS=1, LOGIN_FAILURES_PER_ADDRESS=2):
        for n, forwarded in enumerate(("198.51.100.1", "198.51.100.1", "198.51.100.2")):
            client = site.app.test_client()
            client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
            expected = 401 if n < 2 else 302
            password = "guess" if n < 2 else PASSWORD
            assert (
                login(client, f"nobody{n}" if n < 2 else "viewer", password).status_code == expected
            )
        with site.engine().begin() as conn:
            assert set(conn.execute(text("SELECT address FROM login_failures")).scalars()) == {
                "198.51.100.1"
            }
        held = site.app.test_client()
        held.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.1"
        assert login(held, "viewer").status_code == 429


def access_text(role: str) -> str:
    from console import access

    return access.ROLE_TEXT.format(role=role)


def test_the_login_form_needs_its_csrf_token(site):
    client = site.app.test_client()
    client.get("/login")
    refused = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert refused.status_code == 403
    assert client.get("/api/graph").status_code == 401


# --- CSRF ----------------------------------------------------------------------------------------


def test_a_session_write_needs_the_csrf_header_equal_to_its_token(site):
    client = site.app.test_client()
    login(client, "governance")
    token = csrf_of(client)
    assert client.post("/api/waivers", json=waiver_body()).status_code == 403
    wrong = client.post("/api/waivers", json=waiver_body(), headers={"X-CSRFToken": "x" + token})
    assert wrong.status_code == 403
    assert wrong.get_json() == {"error": "the CSRF token is missing or wrong; reload the page"}
    for odd in ("é" * 43, token + "\u00ff"):
        refused = client.post("/api/waivers", json=waiver_body(), headers={"X-CSRFToken": odd})
        assert refused.status_code == 403  # not a 500
    assert client.get("/api/waivers").get_json() == []
    made = client.post("/api/waivers", json=waiver_body(), headers={"X-CSRFToken": token})
    assert made.status_code == 201
    other = site.app.test_client()
    login(other, "governance")
    stolen = other.post("/api/waivers", json=waiver_body(), headers={"X-CSRFToken": token})
    assert stolen.status_code == 403  # one session's token is worth nothing in another


def test_dash_callbacks_need_the_csrf_header_from_a_session(site):
    client = site.app.test_client()
    login(client, "viewer")
    body = dash_body(client, "page.children", {"url.pathname": "/", "url.search": ""})
    assert client.post("/_dash-update-component", json=body).status_code == 403
    headers = {"X-CSRFToken": csrf_of(client)}
    assert client.post("/_dash-update-component", json=body, headers=headers).status_code == 200


def test_the_csrf_cookie_is_the_one_dash_renderer_reads_and_sends_back():
    renderer = Path(inspect.getfile(__import__("dash"))).parent / "dash-renderer" / "build"
    source = (renderer / "dash_renderer.dev.js").read_text()
    assert "config.csrf_token_name || '_csrf_token'" in source
    assert "config.csrf_header_name || 'X-CSRFToken'" in source


def test_token_requests_need_no_csrf_token(site):
    headers = {"Authorization": f"Bearer {site.tokens['admin token']}"}
    made = site.app.test_client().post("/api/waivers", json=waiver_body(), headers=headers)
    assert made.status_code == 201
    assert "Set-Cookie" not in made.headers


# --- API tokens ---------------------------------------------------------------------------------


def test_an_unknown_or_revoked_token_gets_401_and_a_used_one_is_dated(site):
    client = site.app.test_client()
    bad = client.get("/api/graph", headers={"Authorization": "Bearer clew_nope"})
    assert bad.status_code == 401
    assert bad.get_json() == {"error": "the API token is unknown or revoked"}
    token = site.tokens["read token"]
    with site.engine().begin() as conn:
        before = {t["name"]: t["last_used_at"] for t in accounts.list_tokens(conn)}
    assert before["read token"] is None
    assert client.get("/api/graph", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with site.engine().begin() as conn:
        listed = {t["name"]: t for t in accounts.list_tokens(conn)}
        assert listed["read token"]["last_used_at"] is not None
        assert listed["admin token"]["last_used_at"] is None
        accounts.revoke_token(conn, listed["read token"]["id"], store.utcnow())
    again = client.get("/api/graph", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


# --- The session key -----------------------------------------------------------------------------


def test_the_session_key_is_kept_in_the_store_so_a_restart_keeps_sessions(tmp_path):
    first = make_site(tmp_path)
    site = next(first)
    client = site.app.test_client()
    login(client, "viewer")
    cookie = client.get_cookie("clew_session").value
    with site.engine().begin() as conn:
        kept = conn.execute(
            text("SELECT value FROM settings WHERE name = 'session_secret_key'")
        ).scalar_one()
    assert site.app.secret_key == kept and len(kept) >= 64
    restarted = create_app({"DATABASE_URL": str(tmp_path / "clew.db"), "AUTH": True})
    again = restarted.test_client()
    again.set_cookie("clew_session", cookie)
    assert again.get("/api/graph").status_code == 200
    assert restarted.secret_key == kept
    store.engine_of(restarted).dispose()
    next(first, None)


def test_a_configured_secret_key_is_used_and_none_is_stored(tmp_path):
    site = next(make_site(tmp_path, SECRET_KEY="configured-" + "k" * 40))
    client = site.app.test_client()
    assert login(client, "viewer").status_code == 302
    assert client.get("/api/graph").status_code == 200
    with site.engine().begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM settings")).scalar_one() == 0
    store.engine_of(site.app).dispose()


def test_with_auth_off_nothing_asks_who_you_are(tmp_path):
    path = tmp_path / "clew.db"
    store.upgrade(store.open_engine(str(path)))
    app = create_app({"DATABASE_URL": str(path), "AUTH": False})
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/api/graph").status_code == 200
    assert client.post("/api/waivers", json=waiver_body()).status_code == 201
    assert client.get("/login").headers["Location"] == "/"
    assert "Set-Cookie" not in client.get("/api/waivers").headers
    with store.engine_of(app).begin() as conn:  # no session key made: there are no sessions
        assert conn.execute(text("SELECT COUNT(*) FROM settings")).scalar_one() == 0
    store.engine_of(app).dispose()


def test_auth_is_on_unless_turned_off():
    from clew.app import DEFAULTS

    assert DEFAULTS["AUTH"] is True


# --- Every route and every writing callback, for every identity ----------------------------------


@dataclass(frozen=True)
class Route:
    """A request to one route: who may make it (``public``, or the least role) and the status
    it gets when allowed."""

    endpoint: str
    method: str
    url: str
    need: str
    ok: int
    json: Any = None


def dash_body(client: FlaskClient, output: str, inputs: dict, state: dict | None = None) -> dict:
    """The body dash-renderer POSTs for the callback naming ``output`` (read as an admin)."""
    dependencies = client.get("/_dash-dependencies", headers=_admin_headers(client)).get_json()
    dep = next(d for d in dependencies if output in _names(d["output"]))

    def values(specs, given):
        return [{**spec, "value": given.get(f"{spec['id']}.{spec['property']}")} for spec in specs]

    return {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": values(dep["inputs"], inputs),
        "state": values(dep["state"], state or {}),
        "changedPropIds": list(inputs),
    }


def _admin_headers(client: FlaskClient) -> dict[str, str]:
    return getattr(client, "admin_headers", {})


def routes(site: Site) -> list[Route]:
    """A request for every rule of the app's URL map, and the role it needs."""
    admin = site.app.test_client()
    admin.admin_headers = {"Authorization": f"Bearer {site.tokens['admin token']}"}
    index = admin.get("/", headers=admin.admin_headers).get_data(as_text=True)
    script = re.findall(r'<script src="(/_dash-component-suites/[^"]+)"', index)[0]
    router = dash_body(admin, "page.children", {"url.pathname": "/", "url.search": ""})
    return [
        Route("static", "GET", "/static/none.css", "viewer", 404),
        Route("api_graph", "GET", "/api/graph", "viewer", 200),
        Route("api_overview", "GET", "/api/overview", "viewer", 200),
        Route("api_edge_series", "GET", "/api/edge-series?client=a&server=b", "viewer", 200),
        Route("api_node", "GET", "/api/node?name=a", "viewer", 200),
        Route("api_edge_endpoints", "GET", "/api/edge-endpoints?client=a&server=b", "viewer", 200),
        Route("api_blast_radius", "GET", "/api/blast-radius?node=a", "viewer", 200),
        Route("api_graph_diff", "GET", "/api/graph-diff?since=1h", "viewer", 200),
        Route("api_paths", "GET", "/api/paths", "viewer", 200),
        Route("api_trace", "GET", "/api/traces/0af7651916cd43dd8448eb211c80319c", "viewer", 404),
        Route("api_findings", "GET", "/api/findings", "viewer", 200),
        Route("api_waivers", "GET", "/api/waivers", "viewer", 200),
        Route("api_add_waiver", "POST", "/api/waivers", "governance", 201, waiver_body()),
        Route("api_revoke_waiver", "POST", "/api/waivers/1/revoke", "governance", 200),
        Route("api_governance", "GET", "/api/governance", "viewer", 200),
        Route("governance_report", "GET", "/reports/governance.json", "governance", 200),
        Route("api_users", "GET", "/api/users", "admin", 200),
        Route("api_add_user", "POST", "/api/users", "admin", 201),  # a new name each time
        Route(
            "api_set_user_role",
            "POST",
            "/api/users/target/role",
            "admin",
            200,
            {"role": "governance"},
        ),
        Route("api_disable_user", "POST", "/api/users/target/disable", "admin", 200),
        Route("api_enable_user", "POST", "/api/users/target/enable", "admin", 200),
        Route("api_tokens", "GET", "/api/tokens", "admin", 200),
        Route(
            "api_create_token",
            "POST",
            "/api/tokens",
            "admin",
            201,
            {"name": "walk", "scope": "read"},
        ),
        Route("api_revoke_token", "POST", "/api/tokens/1/revoke", "admin", 200),
        Route("healthz", "GET", "/healthz", "public", 200),
        Route("otlp_receiver.export_traces", "POST", receiver.PATH, "receiver", 200),
        Route("otlp_receiver.export_metrics", "POST", receiver.METRICS_PATH, "receiver", 200),
        Route("_dash_assets.static", "GET", "/assets/clew.css", "viewer", 200),
        Route(
            "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
            "GET",
            script,
            "viewer",
            200,
        ),
        Route("/_dash-layout", "GET", "/_dash-layout", "viewer", 200),
        Route("/_dash-dependencies", "GET", "/_dash-dependencies", "viewer", 200),
        Route("/_dash-update-component", "POST", "/_dash-update-component", "viewer", 200, router),
        Route("/_reload-hash", "GET", "/_reload-hash", "viewer", 200),
        Route("/_favicon.ico", "GET", "/_favicon.ico", "viewer", 200),
        Route("/", "GET", "/", "viewer", 200),
        Route("/<path:path>", "GET", "/governance?team=x", "viewer", 200),
        Route("login", "GET", "/login", "public", 200),
        Route("login", "POST", "/login", "public", 401),  # an empty form: wrong password
        Route("logout", "GET", "/logout", "public", 200),
        Route("logout", "POST", "/logout", "public", 302),  # last: it ends the session
    ]


def expected(route: Route, who: str) -> int:
    """The status ``who`` gets for ``route``."""
    if route.need == "receiver":  # an ingest or admin token, nothing else (not a session)
        return route.ok if who in ("ingest token", "admin token") else 401
    if route.need == "public":
        return route.ok
    if who == "anonymous":
        program = route.url.startswith(("/api/", "/_dash-")) or route.method != "GET"
        return 401 if program else 302
    if who == "ingest token":
        return 403
    roles = accounts.ROLES
    allowed = roles.index(ACTS_AS[who]) >= roles.index(route.need)
    return route.ok if allowed else 403


def _requested(rule) -> set[tuple[str, str]]:
    return {(rule.endpoint, m) for m in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_answers_each_identity_as_its_role_allows(site):
    table = routes(site)
    rules = set().union(*(_requested(rule) for rule in site.app.url_map.iter_rules()))
    assert {(r.endpoint, r.method) for r in table} == rules, "a route without an expectation"
    got, wanted = {}, {}
    with site.engine().begin() as conn:
        accounts.add_user(conn, "target", PASSWORD, "viewer", store.utcnow())
    for who in IDENTITIES:
        caller = Caller(site, who)
        for route in table:
            body = route.json
            if route.endpoint == "api_add_user":
                url, body = (
                    route.url,
                    {"username": f"new {who}", "password": "pw", "role": "viewer"},
                )
            elif route.endpoint == "api_revoke_token":
                with site.engine().begin() as conn:  # a token in force to revoke
                    made = accounts.create_token(conn, "x", "read", store.utcnow())[0]
                url = f"/api/tokens/{made}/revoke"
            elif route.endpoint == "api_revoke_waiver":
                # a waiver in force to revoke, made by an admin token
                made = site.app.test_client().post(
                    "/api/waivers",
                    json=waiver_body(),
                    headers={"Authorization": f"Bearer {site.tokens['admin token']}"},
                )
                url = f"/api/waivers/{made.get_json()['id']}/revoke"
            else:
                url = route.url
            if route.need == "receiver":
                response = caller.open("POST", url, data=b"", content_type="application/x-protobuf")
            else:
                response = caller.open(route.method, url, json=body)
            response.close()
            key = f"{who} {route.method} {route.url}"
            got[key], wanted[key] = response.status_code, expected(route, who)
            if response.status_code == 302 and who == "anonymous" and route.need != "public":
                assert response.headers["Location"].startswith("/login?next=/"), key
    assert got == wanted


def test_the_governance_page_offers_reports_only_to_roles_that_may_run_them(site):
    from console import access

    for who, offered in (("viewer", False), ("read token", False), ("governance", True),
                         ("admin", True)):  # fmt: skip
        caller = Caller(site, who)
        if who in TOKENS:
            caller.client.admin_headers = caller.headers
        body = dash_body(
            caller.client,
            f"{GOV.REPORTS}.children",
            {f"{GOV.STATE}.data": {"team": "payments"}, f"{GOV.VERSION}.data": 0},
        )
        page = caller.open("POST", "/_dash-update-component", json=body)
        assert page.status_code == 200, who
        # Dash writes "/" as "\u002f" in its JSON.
        text_of_page = page.get_data(as_text=True).replace("\\u002f", "/")
        assert ("/reports/governance.pdf?team=payments" in text_of_page) is offered, who
        assert (access.REPORT_ROLE_TEXT in text_of_page) is not offered, who


#: A call of the console's query module that changes state, named by its verb.
WRITE_CALL = re.compile(r"\bqueries\.((?:add|revoke|set|delete|remove|update|create|save)_\w+)\(")


def writing_callbacks(app: Flask) -> dict[str, set[str]]:
    """The Dash callbacks (by output) whose code calls a write of ``console.queries``, each
    with the writes it calls."""
    dash_app = app.extensions["clew.console"]
    found = {}
    for output, spec in dash_app.callback_map.items():
        code = inspect.getsource(inspect.unwrap(spec["callback"]))
        if writes := set(WRITE_CALL.findall(code)):
            found[output] = writes
    return found


def test_every_writing_callback_is_checked_for_every_identity(site):
    writing = writing_callbacks(site.app)
    by_output = {_names(key)[0]: writes for key, writes in writing.items()}
    # Every writing callback is exercised below or in the admin test after this one.
    assert by_output == {
        f"{GOV.FORM_MESSAGE}.children": {"add_waiver"},
        f"{GOV.REVOKE_MESSAGE}.children": {"revoke_waiver"},
        f"{ADMIN.USER_MESSAGE}.children": {"set_user_role", "set_user_disabled"},
        f"{ADMIN.ADD_MESSAGE}.children": {"add_user"},
        f"{ADMIN.CREATED}.children": {"create_token"},
        f"{ADMIN.REVOKE_MESSAGE}.children": {"revoke_token"},
    }
    admin = site.app.test_client()
    admin.admin_headers = {"Authorization": f"Bearer {site.tokens['admin token']}"}
    body = waiver_body()
    create = dash_body(
        admin,
        f"{GOV.FORM_MESSAGE}.children",
        {f"{GOV.CREATE}.n_clicks": 1},
        {f"{GOV.RULE}.value": body["rule"], f"{GOV.SUBJECT}.value": body["subject"]}
        | {f"{GOV.REASON}.value": body["reason"], f"{GOV.APPROVER}.value": body["approver"]}
        | {f"{GOV.EXPIRES}.value": body["expires"], f"{GOV.VERSION}.data": 0},
    )
    for who in IDENTITIES:
        caller = Caller(site, who)
        waivers_before = admin.get("/api/waivers", headers=admin.admin_headers).get_json()
        made = caller.open("POST", "/_dash-update-component", json=create)
        waivers_after = admin.get("/api/waivers", headers=admin.admin_headers).get_json()
        latest = max(w["id"] for w in waivers_after) if waivers_after else 0
        revoke = dash_body(
            admin,
            f"{GOV.REVOKE_MESSAGE}.children",
            {f"{GOV.REVOKE}.n_clicks": 1},
            {f"{GOV.WAIVERS}.selectedRows": [{"id": latest}], f"{GOV.VERSION}.data": 0},
        )
        revoked = caller.open("POST", "/_dash-update-component", json=revoke)
        in_force = [
            w["id"]
            for w in admin.get("/api/waivers", headers=admin.admin_headers).get_json()
            if w["revoked_at"] is None
        ]
        if who == "anonymous":
            assert (made.status_code, revoked.status_code) == (401, 401), who
            assert waivers_after == waivers_before
            continue
        if who == "ingest token":
            assert (made.status_code, revoked.status_code) == (403, 403), who
            assert waivers_after == waivers_before
            continue
        assert (made.status_code, revoked.status_code) == (200, 200), who
        made_text = str(made.get_json()["response"][GOV.FORM_MESSAGE]["children"])
        revoked_text = str(revoked.get_json()["response"][GOV.REVOKE_MESSAGE]["children"])
        if ACTS_AS[who] == "viewer":
            assert access_text("viewer") in made_text, who
            assert revoked_text == access_text("viewer"), who
            assert waivers_after == waivers_before, who
        else:
            assert "created" in made_text, who
            assert len(waivers_after) == len(waivers_before) + 1, who
            assert revoked_text == f"Waiver #{latest} revoked: its findings are open again."
            assert latest not in in_force, who


def test_every_admin_callback_is_checked_for_every_identity(site):
    admin = site.app.test_client()
    admin.admin_headers = {"Authorization": f"Bearer {site.tokens['admin token']}"}
    with site.engine().begin() as conn:
        accounts.add_user(conn, "target", PASSWORD, "viewer", store.utcnow())

    def state():  # accounts and tokens (a token's last use aside: reading marks it)
        with site.engine().begin() as conn:
            tokens = [t | {"last_used_at": None} for t in accounts.list_tokens(conn)]
            return accounts.list_users(conn), tokens

    def click(caller, output, button, **values):
        body = dash_body(admin, output, {f"{button}.n_clicks": 1}, values)
        response = caller.open("POST", "/_dash-update-component", json=body)
        said = response.get_json()["response"] if response.status_code == 200 else None
        return response.status_code, said

    for who in IDENTITIES:
        caller = Caller(site, who)
        with site.engine().begin() as conn:
            token_id = accounts.create_token(conn, f"for {who}", "read", store.utcnow())[0]
        before = state()
        version = {f"{ADMIN.VERSION}.data": 0}
        target = {f"{ADMIN.USERS}.selectedRows": [{"username": "target"}]}
        calls = [
            click(caller, f"{ADMIN.USER_MESSAGE}.children", ADMIN.SET_ROLE,
                  **target, **version, **{f"{ADMIN.ROLE}.value": "governance"}),
            click(caller, f"{ADMIN.USER_MESSAGE}.children", ADMIN.DISABLE, **target, **version),
            click(caller, f"{ADMIN.ADD_MESSAGE}.children", ADMIN.ADD, **version,
                  **{f"{ADMIN.NEW_NAME}.value": f"new {who}", f"{ADMIN.NEW_PASSWORD}.value": "pw",
                     f"{ADMIN.NEW_ROLE}.value": "viewer"}),
            click(caller, f"{ADMIN.CREATED}.children", ADMIN.CREATE, **version,
                  **{f"{ADMIN.TOKEN_NAME}.value": f"made by {who}",
                     f"{ADMIN.TOKEN_SCOPE}.value": "ingest"}),
            click(caller, f"{ADMIN.REVOKE_MESSAGE}.children", ADMIN.REVOKE, **version,
                  **{f"{ADMIN.TOKENS}.selectedRows": [{"id": token_id}]}),
        ]  # fmt: skip
        statuses = [status for status, _ in calls]
        if who in ("anonymous", "ingest token"):
            assert statuses == [401 if who == "anonymous" else 403] * 5, who
            assert state() == before, who
            continue
        assert statuses == [200] * 5, who
        if ACTS_AS[who] != "admin":
            refusal = access_text_admin(ACTS_AS[who])
            assert all(refusal in str(said) for _, said in calls), who
            assert state() == before, who
            continue
        users, tokens = state()
        found = {u["username"]: u for u in users}
        assert found["target"]["role"] == "governance" and found["target"]["disabled_at"]
        assert f"new {who}" in found
        made = {t["name"]: t for t in tokens}
        assert made[f"made by {who}"]["scope"] == "ingest"
        assert made[f"for {who}"]["revoked_at"] is not None
        # The new token's text is shown (once) and works.
        shown = re.search(r"clew_[A-Za-z0-9_-]{43}", str(calls[3][1]))
        assert shown, calls[3][1]
        with site.engine().begin() as conn:
            assert accounts.use_token(conn, shown.group(0), store.utcnow())["scope"] == "ingest"
        with site.engine().begin() as conn:  # as it was, for the next identity
            accounts.set_disabled(conn, "target", None)
            accounts.set_role(conn, "target", "viewer")


def access_text_admin(role: str) -> str:
    from console import access

    return access.ADMIN_TEXT.format(role=role)


def test_the_admin_api_keeps_an_admin_and_says_why_it_refuses(site):
    admin = Caller(site, "admin")
    token = Caller(site, "admin token")
    refused = admin.open("POST", "/api/users/admin/disable")
    assert refused.status_code == 409
    assert "your own account" in refused.get_json()["error"]
    # Through a token (no account of its own), the last admin is still kept.
    last = token.open("POST", "/api/users/admin/role", json={"role": "viewer"})
    assert last.status_code == 409 and "no enabled admin" in last.get_json()["error"]
    assert token.open("POST", "/api/users/admin/disable").status_code == 409
    assert token.open("POST", "/api/users/nobody/disable").status_code == 404
    bad = token.open("POST", "/api/users/viewer/role", json={"role": "root"})
    assert bad.status_code == 400
    assert token.open("POST", "/api/users", json={"username": "x"}).status_code == 400
    taken = token.open(
        "POST", "/api/users", json={"username": "viewer", "password": "p", "role": "viewer"}
    )
    assert taken.status_code == 400 and "exists already" in taken.get_json()["error"]
    # With a second admin, the first may be demoted (by the second).
    made = token.open(
        "POST", "/api/users", json={"username": "second", "password": "p", "role": "admin"}
    )
    assert made.status_code == 201 and made.get_json()["role"] == "admin"
    demoted = token.open("POST", "/api/users/admin/role", json={"role": "viewer"})
    assert demoted.status_code == 200 and demoted.get_json()["role"] == "viewer"
    # A token made through the API works; revoked, it no longer does.
    new = token.open("POST", "/api/tokens", json={"name": "ci", "scope": "read"}).get_json()
    reader = {"Authorization": f"Bearer {new['token']}"}
    client = site.app.test_client()
    assert client.get("/api/graph", headers=reader).status_code == 200
    listed = token.open("GET", "/api/tokens").get_json()
    assert all("token" not in t for t in listed)
    assert {t["name"]: t["state"] for t in listed}["ci"] == "in force"
    assert token.open("POST", f"/api/tokens/{new['id']}/revoke").status_code == 200
    assert token.open("POST", f"/api/tokens/{new['id']}/revoke").status_code == 404
    assert client.get("/api/graph", headers=reader).status_code == 401


# --- The receiver --------------------------------------------------------------------------------


def _send(client: FlaskClient, spans, **headers: str):
    from tests.clew.test_receiver import PROTOBUF, proto_body

    return client.post(
        receiver.PATH, data=proto_body(spans), content_type=PROTOBUF, headers=headers
    )


def test_with_auth_on_the_receiver_takes_ingest_and_admin_tokens_only(site):
    from tests.clew.test_receiver import ids_of, sdk_spans, stored

    client = site.app.test_client()
    taken: set[tuple[str, str]] = set()
    for who in ("ingest token", "admin token"):
        spans = sdk_spans(who.split()[0])
        response = _send(client, spans, Authorization=f"Bearer {site.tokens[who]}")
        assert response.status_code == 200, who
        taken |= ids_of(spans)
    refused = sdk_spans("refused")
    for headers in (
        {},
        {"Authorization": f"Bearer {site.tokens['read token']}"},
        {"Authorization": "Bearer clew_unknown"},
        {"Authorization": f"Basic {site.tokens['ingest token']}"},
    ):
        response = _send(client, refused, **headers)
        assert response.status_code == 401, headers
    browser = site.app.test_client()
    login(browser, "admin")  # a session is no ingest credential
    assert _send(browser, refused, **{"X-CSRFToken": csrf_of(browser)}).status_code == 401
    assert stored(site.engine()) == taken
    with site.engine().begin() as conn:
        listed = {t["name"]: t for t in accounts.list_tokens(conn)}
        accounts.revoke_token(conn, listed["ingest token"]["id"], store.utcnow())
    assert listed["ingest token"]["last_used_at"] is not None
    assert listed["admin token"]["last_used_at"] is not None
    again = _send(client, sdk_spans("late"), Authorization=f"Bearer {site.tokens['ingest token']}")
    assert again.status_code == 401


def test_with_auth_on_the_shared_otlp_token_still_works_beside_ingest_tokens(tmp_path):
    from tests.clew.test_receiver import sdk_spans

    gen = make_site(tmp_path, OTLP_TOKEN="shared-secret")
    site = next(gen)
    client = site.app.test_client()
    assert _send(client, sdk_spans("a"), Authorization="Bearer shared-secret").status_code == 200
    ingest = f"Bearer {site.tokens['ingest token']}"
    assert _send(client, sdk_spans("b"), Authorization=ingest).status_code == 200
    assert _send(client, sdk_spans("c"), Authorization="Bearer other").status_code == 401
    next(gen, None)


def test_an_otlp_authorize_hook_decides_alone(tmp_path):
    from tests.clew.test_receiver import sdk_spans

    asked = []

    def only_partner(token):
        asked.append(token)
        return token == "partner"

    gen = make_site(tmp_path, OTLP_AUTHORIZE=only_partner)
    site = next(gen)
    client = site.app.test_client()
    ingest = site.tokens["ingest token"]
    assert _send(client, sdk_spans("a"), Authorization="Bearer partner").status_code == 200
    assert _send(client, sdk_spans("b"), Authorization=f"Bearer {ingest}").status_code == 401
    assert asked == ["partner", ingest]
    next(gen, None)


# --- clew demo -----------------------------------------------------------------------------------


def test_clew_demo_serves_without_auth_and_its_banner_says_so(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clew import cli, demo
    from console.shell import DEMO_TEXT

    served = []
    monkeypatch.setattr(demo, "load_sample", lambda engine, **_: {"loaded": False})
    monkeypatch.setattr(cli, "_serve", lambda app, host, port: served.append(app))
    result = CliRunner().invoke(cli.main, ["demo", "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    (app,) = served
    assert app.config["AUTH"] is False and app.config["DEMO"] is True
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert DEMO_TEXT.endswith("no authentication")
    assert DEMO_TEXT in str(app.extensions["clew.console"].layout)
    store.engine_of(app).dispose()
