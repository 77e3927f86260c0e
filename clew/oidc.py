"""Log in through an OpenID Connect provider (Keycloak, Entra ID, Okta, Dex, Google, ...).

Configured by ``OIDC_ISSUER``, ``OIDC_CLIENT_ID`` and ``OIDC_CLIENT_SECRET`` (``CLEW_OIDC_*``);
unset, nothing here is added. The flow is the authorization code flow with PKCE (S256), a
``state`` and a ``nonce`` kept in the session, done by authlib's Flask client: ``/login/oidc``
sends the browser to the provider, ``/login/oidc/callback`` takes the code back, exchanges it
for tokens at the provider's token endpoint and checks the ID token (signature by the provider's
published keys, issuer, audience, expiry, nonce).

Roles come from one claim of the ID token (``OIDC_ROLE_CLAIM``, ``roles`` by default; a dotted
path such as ``realm_access.roles`` reaches into an object), a string or a list of strings. With
``OIDC_ROLES`` (a JSON object such as ``{"clew-admins": "admin", "architects": "viewer"}``) each
value is mapped to a Clew role; without it, values that are Clew role names count as such. The
highest role found wins; with none, ``OIDC_DEFAULT_ROLE`` is given, or the login is refused.
When the ID token lacks the claim, the provider's userinfo endpoint is asked for it.

Each person gets an account in the ``users`` table, keyed by issuer and subject, made at their
first login and given the claim's role at every login: so ``clew users list`` shows them and
``clew users disable`` shuts them out even while the provider would let them in. Nothing is
fetched from the provider until someone logs in (its discovery document, then its keys).
"""

from __future__ import annotations

import logging
from functools import reduce
from typing import Any

from flask import Flask, current_app, redirect, request, session, url_for

from clew import auth, store
from clew.store import accounts

log = logging.getLogger(__name__)

#: The name the provider is registered under with authlib (its state keys in the session).
CLIENT_NAME = "clew_oidc"
#: Seconds to wait for the provider's discovery document, keys and token endpoint.
TIMEOUT = 10
#: Where the page to return to after the provider's round trip is kept in the session.
NEXT_KEY = "oidc_next"


class OIDCConfigError(ValueError):
    """An OpenID Connect setting that cannot be used; its text names the setting."""


def configured(app: Flask) -> bool:
    """Whether ``app`` has an OpenID Connect provider configured."""
    return bool(app.config.get("OIDC_ISSUER"))


def init_app(app: Flask) -> None:
    """Add ``/login/oidc`` and ``/login/oidc/callback`` when a provider is configured."""
    if not configured(app):
        return
    from authlib.integrations.flask_client import OAuth

    config = app.config
    issuer = str(config["OIDC_ISSUER"]).rstrip("/")
    for key in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if not config.get(key):
            raise OIDCConfigError(f"CLEW_{key} is required when CLEW_OIDC_ISSUER is set")
    role_map(config)  # refuse a bad mapping at start-up, not at the first login
    default = config.get("OIDC_DEFAULT_ROLE")
    if default and default not in accounts.ROLES:
        raise OIDCConfigError(
            f"CLEW_OIDC_DEFAULT_ROLE must be one of {', '.join(accounts.ROLES)}, not {default!r}"
        )
    oauth = OAuth(app)
    oauth.register(
        CLIENT_NAME,
        client_id=str(config["OIDC_CLIENT_ID"]),
        client_secret=str(config["OIDC_CLIENT_SECRET"]),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": config.get("OIDC_SCOPES") or "openid profile email",
            "code_challenge_method": "S256",
            "default_timeout": TIMEOUT,
        },
    )
    app.extensions["clew_oidc"] = {"client": oauth.create_client(CLIENT_NAME), "issuer": issuer}
    app.add_url_rule("/login/oidc", "oidc_login", _start)
    app.add_url_rule("/login/oidc/callback", "oidc_callback", _callback)


def role_map(config: Any) -> dict[str, str] | None:
    """``OIDC_ROLES`` checked: claim value → Clew role, or None when unset."""
    mapping = config.get("OIDC_ROLES")
    if not mapping:
        return None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and v in accounts.ROLES for k, v in mapping.items()
    ):
        raise OIDCConfigError(
            "CLEW_OIDC_ROLES must be a JSON object mapping claim values to "
            + ", ".join(accounts.ROLES)
        )
    return mapping


def claim_values(claims: dict[str, Any], path: str) -> list[str]:
    """The strings at ``path`` (dots step into objects) in ``claims``; [] when absent."""
    found = reduce(
        lambda value, key: value.get(key) if isinstance(value, dict) else None,
        path.split("."),
        claims,
    )
    if isinstance(found, str):
        return [found]
    if isinstance(found, list):
        return [value for value in found if isinstance(value, str)]
    return []


def role_for(claims: dict[str, Any], config: Any) -> str | None:
    """The Clew role ``claims`` give (the highest one mapped), else ``OIDC_DEFAULT_ROLE``."""
    values = claim_values(claims, config.get("OIDC_ROLE_CLAIM") or "roles")
    mapping = role_map(config)
    roles = [mapping.get(v) for v in values] if mapping is not None else values
    known = [role for role in roles if role in accounts.ROLES]
    if known:
        return max(known, key=accounts.ROLES.index)
    return config.get("OIDC_DEFAULT_ROLE") or None


def _client():
    return current_app.extensions["clew_oidc"]["client"]


def _redirect_uri() -> str:
    # Behind a proxy, TRUSTED_PROXY_HOPS lets url_for see the public scheme and host; the
    # setting is for when even that cannot (a path prefix, say).
    return current_app.config.get("OIDC_REDIRECT_URI") or url_for("oidc_callback", _external=True)


def _start():
    """``GET /login/oidc``: off to the provider (with state, nonce and a PKCE challenge)."""
    if not auth.enabled():
        return redirect("/")
    session[NEXT_KEY] = auth.safe_next(request.args.get("next"))
    from requests import RequestException

    try:
        return _client().authorize_redirect(_redirect_uri())
    except (RequestException, ValueError, KeyError) as error:
        # The provider cannot be reached, or its discovery document is not JSON or lacks the
        # authorization endpoint.
        log.warning("OpenID Connect: the provider's discovery failed: %s", _describe(error))
        return auth.login_page(502, error="The single sign-on provider cannot be reached.")


def _callback():
    """``GET /login/oidc/callback``: the provider's answer; on success, a session."""
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError
    from requests import RequestException

    target = auth.safe_next(session.pop(NEXT_KEY, None))
    try:
        token = _client().authorize_access_token()
    except (AuthlibBaseError, JoseError) as error:
        # The provider's error, a missing or wrong state, a code it refused, an ID token whose
        # signature, issuer, audience, expiry or nonce is wrong.
        log.info("OpenID Connect login refused: %s", _describe(error))
        return auth.login_page(401, error="The single sign-on login failed; try again.")
    except (RequestException, ValueError) as error:
        # The token endpoint or the keys cannot be reached, or answer what is not JSON.
        log.warning("OpenID Connect: the provider failed: %s", _describe(error))
        return auth.login_page(502, error="The single sign-on provider cannot be reached.")
    claims = token.get("userinfo")
    if not claims:  # no ID token came: nothing says who this is
        log.info("OpenID Connect login refused: the token response held no ID token")
        return auth.login_page(401, error="The single sign-on login failed; try again.")
    config = current_app.config
    issuer = current_app.extensions["clew_oidc"]["issuer"]
    if str(claims.get("iss", "")).rstrip("/") != issuer:
        log.info("OpenID Connect login refused: issuer %r is not %r", claims.get("iss"), issuer)
        return auth.login_page(401, error="The single sign-on login failed; try again.")
    try:
        claims = _with_userinfo(token, dict(claims), config)
    except (RequestException, ValueError) as error:
        log.warning("OpenID Connect: the provider's userinfo failed: %s", _describe(error))
        return auth.login_page(502, error="The single sign-on provider cannot be reached.")
    role = role_for(claims, config)
    name = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
    if role is None:
        log.info("OpenID Connect login refused: %r has no Clew role in its claims", name)
        return auth.login_page(
            403, error=f"{name} has no role in Clew: ask an administrator for one."
        )
    with store.engine_of(current_app).begin() as conn:
        user = accounts.oidc_login(conn, issuer, str(claims["sub"]), name, role, store.utcnow())
    if user is None:
        return auth.login_page(403, error=f"The account {name} is disabled.")
    auth.begin_session(user)
    return redirect(target)


def _with_userinfo(token: dict[str, Any], claims: dict[str, Any], config: Any) -> dict[str, Any]:
    """The ID token's claims, with the provider's userinfo endpoint's added when the ID token
    lacks the role claim (many providers put groups there only). The ID token's own claims win,
    and userinfo about another subject is ignored, as OpenID Connect Core 5.3.2 says."""
    path = config.get("OIDC_ROLE_CLAIM") or "roles"
    metadata = _client().load_server_metadata()
    if claim_values(claims, path) or not metadata.get("userinfo_endpoint"):
        return claims
    extra = _client().userinfo(token=token)
    if extra.get("sub") != claims.get("sub"):
        log.info("OpenID Connect: userinfo names another subject; its claims are ignored")
        return claims
    return {**extra, **claims}


def _describe(error: Exception) -> str:
    """An error's kind and text, for the log (never a token: authlib's errors carry none)."""
    return f"{type(error).__name__}: {error}"
