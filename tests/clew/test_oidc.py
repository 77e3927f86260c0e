"""Logging in through OpenID Connect, against a provider served on a local port.

The provider is small but strict, as a real one is: it publishes discovery and keys, takes the
browser's authorization request, and at its token endpoint checks the client's secret, the code,
the redirect URI and the PKCE verifier before it signs an ID token (RS256). Clew reaches it over
HTTP as it would reach Keycloak or Entra ID; the browser's part (following redirects) is played
by the test with ``requests`` and Flask's test client.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
from click.testing import CliRunner
from flask import Flask, jsonify, redirect, request
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

from clew import oidc, receiver, store
from clew.app import create_app
from clew.cli import main
from clew.store import accounts
from tests.clew.test_auth import cheap_password_hashes  # noqa: F401 (an autouse fixture)

CLIENT_ID = "clew-console"
CLIENT_SECRET = "s3cret-of-the-client"
ROLES = {"clew-admins": "admin", "governance-board": "governance", "architects": "viewer"}


@dataclass
class Provider:
    """An OpenID provider on a local port. ``claims`` are the next login's (beside the ones it
    always sets); ``spoil`` names one thing to get wrong in the next ID token."""

    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    claims: dict[str, Any] = field(default_factory=dict)
    spoil: str | None = None
    #: A key of the same id that the provider does not publish.
    impostor: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    #: What the userinfo endpoint adds, for the access token it issued (beside ``sub``).
    userinfo: dict[str, Any] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **self.claims,
        }
        key = self.key
        if self.spoil == "nonce":
            claims["nonce"] = "another-" + grant["nonce"]
        elif self.spoil == "audience":
            claims["aud"] = "another-client"
        elif self.spoil == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.spoil == "issuer":
            claims["iss"] = "https://impostor.example"
        elif self.spoil == "signature":
            key = self.impostor
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def app(self) -> Flask:
        app = Flask("provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                issuer=self.url,
                authorization_endpoint=f"{self.url}/authorize",
                token_endpoint=f"{self.url}/token",
                jwks_uri=f"{self.url}/jwks",
                userinfo_endpoint=f"{self.url}/userinfo",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic"],
            )

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            args = request.args
            assert args["client_id"] == CLIENT_ID and args["response_type"] == "code"
            assert "openid" in args["scope"].split()
            if self.spoil == "denied":
                return redirect(f"{args['redirect_uri']}?error=access_denied&state={args['state']}")
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(args)
            return redirect(f"{args['redirect_uri']}?code={code}&state={args['state']}")

        @app.get("/userinfo")
        def userinfo():
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or given not in self.access_tokens:
                return jsonify(error="invalid_token"), 401
            return jsonify({"sub": self.access_tokens[given]} | self.userinfo)

        @app.post("/token")
        def token():
            form = request.form.to_dict()
            self.token_requests.append(form)
            scheme, _, basic = request.headers.get("Authorization", "").partition(" ")
            client = base64.b64decode(basic).decode() if scheme == "Basic" else ""
            grant = self.codes.pop(form.get("code", ""), None)
            if client != f"{CLIENT_ID}:{CLIENT_SECRET}":
                return jsonify(error="invalid_client"), 401
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                grant is None
                or form.get("redirect_uri") != grant["redirect_uri"]
                or grant.get("code_challenge_method") != "S256"
                or challenge != grant.get("code_challenge")
            ):
                return jsonify(error="invalid_grant"), 400
            answer = {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer"}
            self.access_tokens[answer["access_token"]] = self.claims.get("sub", "")
            if self.spoil != "no id token":
                answer["id_token"] = self.id_token(grant)
            return jsonify(answer | {"expires_in": 300})

        return app


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    found = Provider()
    server = make_server("127.0.0.1", 0, found.app(), threaded=True)
    found.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    thread.join()


@pytest.fixture(autouse=True)
def fresh_provider(provider):
    """Each test starts with the provider saying nothing special."""
    provider.claims, provider.spoil, provider.userinfo = {}, None, {}
    provider.access_tokens.clear()
    provider.codes.clear()
    provider.token_requests.clear()


def make_app(tmp_path: Path, provider: Provider, **config: Any) -> Flask:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "clew.db"
    engine = store.open_engine(str(path))
    store.upgrade(engine)
    with engine.begin() as conn:
        accounts.add_user(conn, "viewer", "a passphrase", "viewer", store.utcnow())
    engine.dispose()
    settings = {
        "DATABASE_URL": str(path),
        "AUTH": True,
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_ROLE_CLAIM": "groups",
        "OIDC_ROLES": ROLES,
        "OIDC_NAME": "Example SSO",
    }
    return create_app(settings | config)


@pytest.fixture
def app(tmp_path, provider) -> Iterator[Flask]:
    made = make_app(tmp_path, provider)
    yield made
    receiver.stop(made)
    store.engine_of(made).dispose()


def sso_login(client: FlaskClient, next_page: str = "/") -> Any:
    """What a browser does: Clew's SSO link, the provider (which sends it back), the callback.
    Returns the callback's response."""
    start = client.get(f"/login/oidc?next={next_page}")
    assert start.status_code == 302, start.get_data(as_text=True)
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/login/oidc/callback"
    return client.get(f"{back.path}?{back.query}")


def users_of(app: Flask) -> dict[str, dict[str, Any]]:
    with store.engine_of(app).begin() as conn:
        return {u["username"]: u for u in accounts.list_users(conn)}


def test_a_login_makes_an_account_with_the_role_its_groups_map_to(app, provider):
    provider.claims = {"sub": "u-1", "preferred_username": "ada", "groups": ["architects"]}
    client = app.test_client()
    done = sso_login(client, "/governance")
    assert done.status_code == 302 and done.headers["Location"] == "/governance"
    assert client.get("/api/graph").status_code == 200
    assert "Logged in as <strong>ada</strong>" in client.get("/login").get_data(as_text=True)
    ada = users_of(app)["ada"]
    assert (ada["role"], ada["oidc_issuer"]) == ("viewer", provider.url)
    assert ada["last_login_at"] is not None
    # The code went back with the client's secret and the PKCE verifier (the provider checked).
    (exchange,) = provider.token_requests
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    # A viewer may not write waivers; the role is enforced as for any account.
    refused = client.post("/api/waivers", json={}, headers={"X-CSRFToken": _csrf(client)})
    assert refused.status_code == 403


def test_the_role_follows_the_provider_at_every_login(app, provider):
    provider.claims = {"sub": "u-2", "preferred_username": "bo", "groups": ["architects"]}
    sso_login(app.test_client())
    # The highest role among the groups wins; unknown groups are ignored.
    provider.claims["groups"] = ["architects", "governance-board", "kitchen"]
    client = app.test_client()
    sso_login(client)
    assert users_of(app)["bo"]["role"] == "governance"
    assert len(users_of(app)) == 2  # the same account (by issuer and subject), not a new one
    provider.claims["groups"] = "clew-admins"  # a single string counts too
    sso_login(app.test_client())
    assert users_of(app)["bo"]["role"] == "admin"


def test_a_nested_claim_and_role_names_without_a_mapping(tmp_path, provider):
    app = make_app(tmp_path, provider, OIDC_ROLE_CLAIM="realm_access.roles", OIDC_ROLES=None)
    provider.claims = {
        "sub": "u-3",
        "preferred_username": "cy",
        "realm_access": {"roles": ["offline_access", "governance"]},
    }
    assert sso_login(app.test_client()).status_code == 302
    assert users_of(app)["cy"]["role"] == "governance"
    store.engine_of(app).dispose()


def test_groups_only_in_userinfo_are_read_from_there(app, provider):
    provider.claims = {"sub": "u-9", "preferred_username": "gus"}  # no groups in the ID token
    provider.userinfo = {"groups": ["governance-board"], "preferred_username": "other"}
    assert sso_login(app.test_client()).status_code == 302
    assert users_of(app)["gus"]["role"] == "governance"  # the ID token's name wins
    # Userinfo about another subject is not believed.
    provider.claims = {"sub": "u-10", "preferred_username": "hal"}
    provider.userinfo = {"sub": "u-9", "groups": ["clew-admins"]}
    refused = sso_login(app.test_client())
    assert refused.status_code == 403 and "hal has no role" in refused.get_data(as_text=True)


def test_no_role_is_refused_unless_a_default_is_set(tmp_path, provider):
    app = make_app(tmp_path, provider)
    provider.claims = {"sub": "u-4", "preferred_username": "dee", "groups": ["kitchen"]}
    client = app.test_client()
    refused = sso_login(client)
    assert refused.status_code == 403
    assert "dee has no role in Clew" in refused.get_data(as_text=True)
    assert client.get("/api/graph").status_code == 401
    assert "dee" not in users_of(app)
    store.engine_of(app).dispose()
    lenient = make_app(tmp_path / "2", provider, OIDC_DEFAULT_ROLE="viewer")
    assert sso_login(lenient.test_client()).status_code == 302
    assert users_of(lenient)["dee"]["role"] == "viewer"
    store.engine_of(lenient).dispose()


def test_a_disabled_account_is_refused_and_loses_its_session(app, provider):
    provider.claims = {"sub": "u-5", "preferred_username": "eve", "groups": ["clew-admins"]}
    client = app.test_client()
    sso_login(client)
    runner = CliRunner()
    db = app.config["DATABASE_URL"]
    assert runner.invoke(main, ["users", "disable", "eve", "--db", db]).exit_code == 0
    assert client.get("/api/graph").status_code == 401
    refused = sso_login(client)
    assert refused.status_code == 403 and "disabled" in refused.get_data(as_text=True)
    assert runner.invoke(main, ["users", "enable", "eve", "--db", db]).exit_code == 0
    assert sso_login(client).status_code == 302
    listed = orjson.loads(runner.invoke(main, ["users", "list", "--json", "--db", db]).output)
    assert {u["username"]: u["oidc_issuer"] for u in listed} == {
        "eve": provider.url,
        "viewer": None,
    }


def test_a_name_a_local_account_holds_is_not_taken_over(app, provider):
    provider.claims = {"sub": "u-6", "preferred_username": "viewer", "groups": ["clew-admins"]}
    client = app.test_client()
    assert sso_login(client).status_code == 302
    found = users_of(app)
    assert found["viewer"]["role"] == "viewer" and found["viewer"]["oidc_issuer"] is None
    assert found["viewer@127.0.0.1"]["role"] == "admin"
    # ... and the local account's password still logs in to the local account alone.
    assert "Logged in as <strong>viewer@127.0.0.1</strong>" in client.get("/login").get_data(
        as_text=True
    )
    with store.engine_of(app).begin() as conn:
        assert accounts.authenticate(conn, "viewer@127.0.0.1", "") is None


@pytest.mark.parametrize(
    "spoil", ["nonce", "audience", "expired", "issuer", "signature", "no id token", "denied"]
)
def test_a_spoilt_answer_from_the_provider_logs_no_one_in(app, provider, spoil, caplog):
    provider.claims = {"sub": "u-7", "preferred_username": "mal", "groups": ["clew-admins"]}
    provider.spoil = spoil
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="clew.oidc"):
        refused = sso_login(client)
    assert refused.status_code == 401
    assert "The single sign-on login failed" in refused.get_data(as_text=True)
    assert client.get("/api/graph").status_code == 401
    assert "mal" not in users_of(app)
    assert "OpenID Connect login refused" in caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_a_callback_without_its_state_or_replayed_logs_no_one_in(app, provider):
    provider.claims = {"sub": "u-8", "preferred_username": "zed", "groups": ["clew-admins"]}
    victim, attacker = app.test_client(), app.test_client()
    start = attacker.get("/login/oidc")
    back = urlsplit(
        requests.get(start.headers["Location"], allow_redirects=False, timeout=10).headers[
            "Location"
        ]
    )
    # The attacker's callback URL, opened in someone else's browser (login CSRF): no state there.
    assert victim.get(f"{back.path}?{back.query}").status_code == 401
    assert victim.get("/api/graph").status_code == 401
    # A made-up state in the attacker's own browser fails too, and the code is not exchanged.
    forged = back.query.replace("state=", "state=x")
    assert attacker.get(f"{back.path}?{forged}").status_code == 401
    assert provider.token_requests == []
    # Once used, the state is gone: the same callback twice logs in once.
    assert sso_login(victim).status_code == 302
    again = parse_qs(back.query)
    assert attacker.get(f"{back.path}?code={again['code'][0]}&state=").status_code == 401


def test_an_unreachable_provider_gets_a_clear_page(tmp_path, provider):
    with socket_closed() as port:
        app = make_app(tmp_path, provider, OIDC_ISSUER=f"http://127.0.0.1:{port}")
        client = app.test_client()
        refused = client.get("/login/oidc")
    assert refused.status_code == 502
    assert "cannot be reached" in refused.get_data(as_text=True)
    store.engine_of(app).dispose()


def test_the_login_page_offers_the_provider_and_the_password_form(app):
    page = app.test_client().get("/login?next=/map").get_data(as_text=True)
    assert 'href="/login/oidc?next=/map"' in page
    assert "Log in with Example SSO" in page
    assert 'name="password"' in page  # local accounts (the first admin) still log in


def test_settings_that_cannot_work_are_refused_at_start_up(tmp_path, provider):
    with pytest.raises(oidc.OIDCConfigError, match="CLEW_OIDC_CLIENT_SECRET is required"):
        make_app(tmp_path / "1", provider, OIDC_CLIENT_SECRET=None)
    with pytest.raises(oidc.OIDCConfigError, match="CLEW_OIDC_ROLES must be a JSON object"):
        make_app(tmp_path / "2", provider, OIDC_ROLES={"clew-admins": "root"})
    with pytest.raises(oidc.OIDCConfigError, match="CLEW_OIDC_DEFAULT_ROLE must be one of"):
        make_app(tmp_path / "3", provider, OIDC_DEFAULT_ROLE="owner")


def test_without_an_issuer_there_is_no_oidc_route(tmp_path, provider):
    app = make_app(tmp_path, provider, OIDC_ISSUER=None)
    client = app.test_client()
    assert "/login/oidc" not in {rule.rule for rule in app.url_map.iter_rules()}
    assert "Log in with" not in client.get("/login").get_data(as_text=True)
    store.engine_of(app).dispose()


def test_role_for_reads_strings_lists_and_nested_claims():
    config = {"OIDC_ROLE_CLAIM": "groups", "OIDC_ROLES": ROLES}
    assert oidc.role_for({"groups": ["architects", "clew-admins"]}, config) == "admin"
    assert oidc.role_for({"groups": "governance-board"}, config) == "governance"
    assert oidc.role_for({"groups": [1, None, {"x": 1}]}, config) is None
    assert oidc.role_for({}, config | {"OIDC_DEFAULT_ROLE": "viewer"}) == "viewer"
    assert oidc.role_for({"a": {"b": ["admin"]}}, {"OIDC_ROLE_CLAIM": "a.b"}) == "admin"
    assert oidc.role_for({"a": "admin"}, {"OIDC_ROLE_CLAIM": "a.b"}) is None
    assert oidc.role_for({"roles": ["root"]}, {}) is None


def _csrf(client: FlaskClient) -> str:
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None
    return cookie.value


class socket_closed:
    """A local port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None
