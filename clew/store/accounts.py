"""Local accounts and API tokens at rest: argon2 password hashes, tokens kept as their SHA-256.

A token's text (``clew_`` and 43 URL-safe characters from ``secrets.token_urlsafe(32)``) is
returned once, by ``create_token``; the store keeps only its hash, so a database leak gives no
usable token. Every statement binds its values.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from math import ceil
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from clew.store.findings import aware

ROLES = ("viewer", "governance", "admin")
SCOPES = ("ingest", "read", "admin")
TOKEN_PREFIX = "clew_"
#: How often a token's ``last_used_at`` is written at most.
USE_RESOLUTION = timedelta(minutes=1)
#: The most a username may hold (the column's length).
MAX_USERNAME = 255


class AccountError(ValueError):
    """A username, role, scope or password that cannot be used, or an account that does not
    exist; its text says which."""


class NoSuchAccount(AccountError):
    """The account named does not exist."""


class LockoutRefused(AccountError):
    """A change refused because it would shut the admins out: the last enabled admin demoted
    or disabled, or an admin's own account changed from the web."""


def _hasher():
    # argon2id with the library's defaults (RFC 9106's low-memory profile); imported on first use
    # so that the CLI's other commands do not load it.
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (a PHC string holding its salt and parameters)."""
    if not password:
        raise AccountError("the password must not be empty")
    return _hasher().hash(password)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def _check_username(username: str) -> None:
    if not username or username != username.strip() or len(username) > MAX_USERNAME:
        raise AccountError(f"a username is 1 to {MAX_USERNAME} characters without spaces around it")
    if any(not c.isprintable() for c in username):
        raise AccountError("a username holds printable characters only")


def add_user(conn: Connection, username: str, password: str, role: str, now: datetime) -> int:
    """Add an account; returns its id. AccountError when the name is taken or a value is bad."""
    _check_username(username)
    _check_role(role)
    password_hash = hash_password(password)
    try:
        with conn.begin_nested():
            return conn.execute(
                text(
                    "INSERT INTO users (username, password_hash, role, created_at)"
                    " VALUES (:username, :hash, :role, :now) RETURNING id"
                ),
                {"username": username, "hash": password_hash, "role": role, "now": now},
            ).scalar_one()
    except IntegrityError:
        raise AccountError(f"a user named {username!r} exists already") from None


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every account (without its hash), by username; ``oidc_issuer`` is set for an account made
    at an OpenID Connect login."""
    rows = conn.execute(
        text(
            "SELECT id, username, role, created_at, disabled_at, last_login_at, oidc_issuer"
            " FROM users ORDER BY username"
        )
    ).mappings()
    return [_times(row, "created_at", "disabled_at", "last_login_at") for row in rows]


def _times(row: Any, *keys: str) -> dict[str, Any]:
    found = dict(row)
    for key in keys:
        found[key] = aware(found[key])
    return found


def get_user(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The enabled account ``user_id`` (id, username, role), or None."""
    row = (
        conn.execute(
            text("SELECT id, username, role FROM users WHERE id = :id AND disabled_at IS NULL"),
            {"id": user_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def remove_user(conn: Connection, username: str) -> bool:
    """Delete an account; False when there is none of that name."""
    result = conn.execute(text("DELETE FROM users WHERE username = :u"), {"u": username})
    return bool(result.rowcount)


def set_role(conn: Connection, username: str, role: str) -> bool:
    """Give an account another role; False when there is none of that name."""
    _check_role(role)
    result = conn.execute(
        text("UPDATE users SET role = :role WHERE username = :u"), {"role": role, "u": username}
    )
    return bool(result.rowcount)


def set_disabled(conn: Connection, username: str, now: datetime | None) -> bool:
    """Disable an account at ``now`` (its sessions end at their next request and it cannot log
    in), or enable it again with ``now=None``; False when there is none of that name."""
    result = conn.execute(
        text("UPDATE users SET disabled_at = :now WHERE username = :u"), {"now": now, "u": username}
    )
    return bool(result.rowcount)


def leaves_an_admin(
    conn: Connection, username: str, *, role: str | None = None, disable: bool = False
) -> bool:
    """Whether an enabled admin would remain if ``username`` were given ``role`` or disabled
    (or removed: ``disable=True``): the web app refuses a change that would lock every admin out
    (the command line can still make one)."""
    others = conn.execute(
        text(
            "SELECT COUNT(*) FROM users"
            " WHERE role = 'admin' AND disabled_at IS NULL AND username <> :u"
        ),
        {"u": username},
    ).scalar_one()
    if others:
        return True
    user = (
        conn.execute(
            text("SELECT role, disabled_at FROM users WHERE username = :u"), {"u": username}
        )
        .mappings()
        .first()
    )
    if user is None or user["disabled_at"] is not None or disable:
        return False
    return (role or user["role"]) == "admin"


def count_admins(conn: Connection) -> int:
    """How many enabled accounts have the admin role."""
    return conn.execute(
        text("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL")
    ).scalar_one()


def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any] | None:
    """The enabled account (id, username, role) whose password is ``password``, or None.

    An unknown name costs a hash as a wrong password does, so timing does not tell which names
    exist. A hash made with older parameters is replaced by one made with the current ones.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    row = (
        conn.execute(
            text(
                "SELECT id, username, role, password_hash FROM users"
                " WHERE username = :u AND disabled_at IS NULL"
            ),
            {"u": username},
        )
        .mappings()
        .first()
    )
    hasher = _hasher()
    if row is None or row["password_hash"] is None:  # no such account, or an OIDC-only one
        hasher.hash(password or "-")
        return None
    try:
        hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(row["password_hash"]):
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE id = :id"),
            {"h": hasher.hash(password), "id": row["id"]},
        )
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


def record_login(conn: Connection, user_id: int, now: datetime) -> None:
    """Note that account ``user_id`` logged in at ``now``."""
    conn.execute(
        text("UPDATE users SET last_login_at = :now WHERE id = :id"), {"now": now, "id": user_id}
    )


def oidc_login(
    conn: Connection, issuer: str, subject: str, name: str, role: str, now: datetime
) -> dict[str, Any] | None:
    """The account of OpenID Connect subject ``subject`` at ``issuer`` (id, username, role),
    made at its first login and given ``role`` at each one, which the provider's claims decide;
    None when the account is disabled.

    A new account is called ``name`` (the provider's ``preferred_username`` or e-mail), or
    ``name@issuer's host`` when a local account has that name already: an OIDC login never
    takes over another account by its name.
    """
    _check_role(role)
    params = {"iss": issuer, "sub": subject}
    row = (
        conn.execute(
            text(
                "SELECT id, username, disabled_at FROM users"
                " WHERE oidc_issuer = :iss AND oidc_subject = :sub"
            ),
            params,
        )
        .mappings()
        .first()
    )
    if row is not None:
        if row["disabled_at"] is not None:
            return None
        conn.execute(
            text("UPDATE users SET role = :role, last_login_at = :now WHERE id = :id"),
            {"role": role, "now": now, "id": row["id"]},
        )
        return {"id": row["id"], "username": row["username"], "role": role}
    host = urlsplit(issuer).hostname or "oidc"
    clean = "".join(c for c in name.strip() if c.isprintable())[: MAX_USERNAME - len(host) - 1]
    for candidate in dict.fromkeys([clean or subject[:128], f"{clean or subject[:128]}@{host}"]):
        try:
            with conn.begin_nested():
                user_id = conn.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, created_at,"
                        " last_login_at, oidc_issuer, oidc_subject)"
                        " VALUES (:u, NULL, :role, :now, :now, :iss, :sub) RETURNING id"
                    ),
                    {"u": candidate, "role": role, "now": now, **params},
                ).scalar_one()
        except IntegrityError:
            continue
        return {"id": user_id, "username": candidate, "role": role}
    raise AccountError(
        f"no free username for {name!r} from {issuer}: rename the local account that holds it"
    )


def login_retry_after(
    conn: Connection,
    username: str,
    address: str,
    now: datetime,
    *,
    per_name: int,
    per_address: int,
    window: timedelta,
) -> int | None:
    """Seconds until a password login for ``username`` from ``address`` may be tried again, or
    None when it may be tried now: refused while the name has ``per_name`` failures in the last
    ``window`` (from any address), or the address has ``per_address`` (for any names), until the
    oldest of those leaves the window."""
    since = now - window
    waits = []
    for column, value, limit in (
        ("username", username, per_name),
        ("address", address, per_address),
    ):
        # The limit-th newest failure in the window: when it leaves, the count drops below limit.
        oldest_counted = conn.execute(
            text(
                f"SELECT at FROM login_failures WHERE {column} = :v AND at > :since"
                " ORDER BY at DESC LIMIT 1 OFFSET :skip"
            ),
            {"v": value, "since": since, "skip": limit - 1},
        ).scalar()
        if oldest_counted is not None:
            waits.append((aware(oldest_counted) + window - now).total_seconds())
    return max(1, ceil(max(waits))) if waits else None


def record_login_failure(
    conn: Connection, username: str, address: str, now: datetime, window: timedelta
) -> None:
    """Note a failed password login (and forget failures older than ``window``)."""
    conn.execute(text("DELETE FROM login_failures WHERE at <= :old"), {"old": now - window})
    conn.execute(
        text("INSERT INTO login_failures (username, address, at) VALUES (:u, :a, :now)"),
        {"u": username[:MAX_USERNAME], "a": address[:64], "now": now},
    )


def clear_login_failures(conn: Connection, username: str) -> int:
    """Forget the failed logins of ``username`` (at a successful one, or ``clew users unlock``);
    returns how many there were."""
    return conn.execute(
        text("DELETE FROM login_failures WHERE username = :u"), {"u": username}
    ).rowcount


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token's text: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(conn: Connection, name: str, scope: str, now: datetime) -> tuple[int, str]:
    """Make a token; returns its id and its text, which is never stored and cannot be shown
    again."""
    if scope not in SCOPES:
        raise AccountError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if not name or not name.strip() or len(name) > 255:
        raise AccountError("a token's name is 1 to 255 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        text(
            "INSERT INTO api_tokens (name, token_sha256, scope, created_at)"
            " VALUES (:name, :digest, :scope, :now) RETURNING id"
        ),
        {"name": name, "digest": token_digest(token), "scope": scope, "now": now},
    ).scalar_one()
    return token_id, token


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    """Every token (never its text or hash), newest first."""
    rows = conn.execute(
        text(
            "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM api_tokens"
            " ORDER BY id DESC"
        )
    ).mappings()
    return [_times(row, "created_at", "last_used_at", "revoked_at") for row in rows]


def revoke_token(conn: Connection, token_id: int, now: datetime) -> bool:
    """Revoke a token; False when there is no such token in force."""
    result = conn.execute(
        text("UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
        {"id": token_id, "now": now},
    )
    return bool(result.rowcount)


def use_token(conn: Connection, token: str, now: datetime) -> dict[str, Any] | None:
    """The token in force whose text is ``token`` (id, name, scope), its ``last_used_at`` brought
    to ``now`` (to the minute: a receiver taking many requests a second writes once a minute);
    None for an unknown, malformed or revoked one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    digest = token_digest(token)
    row = (
        conn.execute(
            text(
                "SELECT id, name, scope, token_sha256, last_used_at FROM api_tokens"
                " WHERE token_sha256 = :digest AND revoked_at IS NULL"
            ),
            {"digest": digest},
        )
        .mappings()
        .first()
    )
    # The lookup is by an index on the hash; comparing again in constant time costs nothing.
    if row is None or not hmac.compare_digest(row["token_sha256"], digest):
        return None
    last = aware(row["last_used_at"])
    if last is None or now - last >= USE_RESOLUTION:
        conn.execute(
            text("UPDATE api_tokens SET last_used_at = :now WHERE id = :id"),
            {"now": now, "id": row["id"]},
        )
    return {"id": row["id"], "name": row["name"], "scope": row["scope"]}


def setting(conn: Connection, name: str, make: Any, now: datetime) -> str:
    """The stored value ``name``; made by ``make()`` and stored the first time. Two processes
    asking at once get the same value (the second insert loses and reads the first's)."""
    found = conn.execute(text("SELECT value FROM settings WHERE name = :n"), {"n": name}).scalar()
    if found is not None:
        return found
    try:
        with conn.begin_nested():
            conn.execute(
                text("INSERT INTO settings (name, value, created_at) VALUES (:n, :v, :now)"),
                {"n": name, "v": make(), "now": now},
            )
    except IntegrityError:
        pass
    return conn.execute(
        text("SELECT value FROM settings WHERE name = :n"), {"n": name}
    ).scalar_one()
