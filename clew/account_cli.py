"""``clew users`` (local accounts and their roles) and ``clew tokens`` (API tokens for the JSON
API and the OTLP receiver).

The commands are added to ``clew.cli``'s group there; this module does not import ``clew.cli``
(which imports it): its shared options come from ``clew.cli_options``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from clew.cli_options import db_option, json_option
from clew.cli_options import open_db as _open
from clew.store import accounts


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dump(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.group()
def users() -> None:
    """Local accounts: viewer (reads everything), governance (also waivers and reports) and
    admin (also users, tokens and sources)."""


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(accounts.ROLES))
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of a prompt.",
)
@db_option
def users_add(username: str, role: str, password_stdin: bool, db: str | None) -> None:
    """Add the account USERNAME with a role; the password is asked for twice (or read from
    standard input)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.BadParameter("the password must not be empty", param_hint="password")
    try:
        with _open(db).begin() as conn:
            accounts.add_user(conn, username, password, role, datetime.now(UTC))
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {username} added as {role}")


@users.command("list")
@db_option
@json_option
def users_list(db: str | None, as_json: bool) -> None:
    """Every account with its role."""
    with _open(db).begin() as conn:
        found = [
            {
                "username": u["username"],
                "role": u["role"],
                "created_at": _iso(u["created_at"]),
                "last_login_at": _iso(u["last_login_at"]),
                "disabled_at": _iso(u["disabled_at"]),
                "oidc_issuer": u["oidc_issuer"],
            }
            for u in accounts.list_users(conn)
        ]
    if as_json:
        _dump(found)
        return
    if not found:
        click.echo("no users (add the first admin: clew users add NAME --role admin)")
        return
    for u in found:
        last = f"last login {u['last_login_at'][:16]}" if u["last_login_at"] else "never logged in"
        via = f"  via {u['oidc_issuer']}" if u["oidc_issuer"] else ""
        disabled = "  DISABLED" if u["disabled_at"] else ""
        click.echo(
            f"{u['username']}  {u['role']}  since {u['created_at'][:10]}, {last}{via}{disabled}"
        )


@users.command("remove")
@click.argument("username")
@db_option
def users_remove(username: str, db: str | None) -> None:
    """Delete the account USERNAME."""
    with _open(db).begin() as conn:
        if not accounts.remove_user(conn, username):
            raise click.ClickException(f"no user named {username!r}")
    click.echo(f"user {username} removed")


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(accounts.ROLES))
@db_option
def users_set_role(username: str, role: str, db: str | None) -> None:
    """Give the account USERNAME the role ROLE."""
    with _open(db).begin() as conn:
        if not accounts.set_role(conn, username, role):
            raise click.ClickException(f"no user named {username!r}")
    click.echo(f"user {username} is now {role}")


@users.command("disable")
@click.argument("username")
@db_option
def users_disable(username: str, db: str | None) -> None:
    """Shut the account USERNAME out, keeping it: it cannot log in (by password or single
    sign-on) and its sessions end at their next request. `clew users enable` lets it in again."""
    with _open(db).begin() as conn:
        if not accounts.set_disabled(conn, username, datetime.now(UTC)):
            raise click.ClickException(f"no user named {username!r}")
    click.echo(f"user {username} disabled")


@users.command("enable")
@click.argument("username")
@db_option
def users_enable(username: str, db: str | None) -> None:
    """Let the disabled account USERNAME log in again."""
    with _open(db).begin() as conn:
        if not accounts.set_disabled(conn, username, None):
            raise click.ClickException(f"no user named {username!r}")
    click.echo(f"user {username} enabled")


@users.command("unlock")
@click.argument("username")
@db_option
def users_unlock(username: str, db: str | None) -> None:
    """Forget USERNAME's failed logins, so that its password logins are no longer held back
    (after too many failures they are refused for a while; see the README's Security)."""
    with _open(db).begin() as conn:
        forgotten = accounts.clear_login_failures(conn, username)
    click.echo(f"{forgotten} failed login{'s' if forgotten != 1 else ''} of {username} forgotten")


@click.group()
def tokens() -> None:
    """API tokens (sent as ``Authorization: Bearer clew_...``): scope ingest (the OTLP
    receiver), read (the JSON API) or admin (both, and what admins may do)."""


@tokens.command("create")
@click.option("--scope", required=True, type=click.Choice(accounts.SCOPES))
@click.option("--name", required=True, help="What the token is for (shown by tokens list).")
@db_option
@json_option
def tokens_create(scope: str, name: str, db: str | None, as_json: bool) -> None:
    """Make a token and print it once: only its hash is kept, so it cannot be shown again."""
    try:
        with _open(db).begin() as conn:
            token_id, token = accounts.create_token(conn, name, scope, datetime.now(UTC))
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _dump({"id": token_id, "name": name, "scope": scope, "token": token})
        return
    click.echo(f"token {token_id} ({scope}) for {name}; copy it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
@db_option
@json_option
def tokens_list(db: str | None, as_json: bool) -> None:
    """Every token with its scope and when it was last used (never the token itself)."""
    with _open(db).begin() as conn:
        found = [
            {
                "id": t["id"],
                "name": t["name"],
                "scope": t["scope"],
                "created_at": _iso(t["created_at"]),
                "last_used_at": _iso(t["last_used_at"]),
                "revoked_at": _iso(t["revoked_at"]),
            }
            for t in accounts.list_tokens(conn)
        ]
    if as_json:
        _dump(found)
        return
    if not found:
        click.echo("no tokens")
        return
    for t in found:
        state = "revoked" if t["revoked_at"] else "active"
        used = t["last_used_at"][:19] if t["last_used_at"] else "never"
        click.echo(f"{t['id']:>4}  {state:<7}  {t['scope']:<6}  {t['name']}  last used {used}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@db_option
def tokens_revoke(token_id: int, db: str | None) -> None:
    """Revoke the token ID: requests carrying it are refused from now on."""
    with _open(db).begin() as conn:
        if not accounts.revoke_token(conn, token_id, datetime.now(UTC)):
            raise click.ClickException(f"no token {token_id} in force")
    click.echo(f"token {token_id} revoked")
