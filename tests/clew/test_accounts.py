"""Accounts and API tokens at rest (argon2 hashes, tokens as SHA-256) and `clew users`/`tokens`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from clew import store
from clew.cli import main
from clew.store import accounts

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request):
    """The SQLite database, and the PostgreSQL one when CLEW_TEST_POSTGRES_URL is set."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def test_a_password_is_kept_as_an_argon2id_hash_and_checked(any_engine):
    with any_engine.begin() as conn:
        user_id = accounts.add_user(conn, "ada", "correct horse", "governance", NOW)
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    with any_engine.begin() as conn:
        assert accounts.authenticate(conn, "ada", "correct horse") == {
            "id": user_id,
            "username": "ada",
            "role": "governance",
        }
        assert accounts.authenticate(conn, "ada", "correct horsE") is None
        assert accounts.authenticate(conn, "nobody", "correct horse") is None
        assert accounts.get_user(conn, user_id) == {
            "id": user_id,
            "username": "ada",
            "role": "governance",
        }


def test_a_taken_name_a_bad_role_and_an_empty_password_are_refused(any_engine):
    with any_engine.begin() as conn:
        accounts.add_user(conn, "ada", "pw", "viewer", NOW)
        with pytest.raises(accounts.AccountError, match="exists already"):
            accounts.add_user(conn, "ada", "other", "admin", NOW)
        with pytest.raises(accounts.AccountError, match="role must be one of"):
            accounts.add_user(conn, "bob", "pw", "root", NOW)
        with pytest.raises(accounts.AccountError, match="must not be empty"):
            accounts.add_user(conn, "bob", "", "viewer", NOW)
        with pytest.raises(accounts.AccountError, match="without spaces"):
            accounts.add_user(conn, " bob", "pw", "viewer", NOW)
        # The failed insert left the transaction usable and the first account as it was.
        assert [(u["username"], u["role"]) for u in accounts.list_users(conn)] == [
            ("ada", "viewer")
        ]


def test_a_disabled_account_cannot_log_in(any_engine):
    with any_engine.begin() as conn:
        user_id = accounts.add_user(conn, "ada", "pw", "admin", NOW)
        assert accounts.count_admins(conn) == 1
        conn.execute(
            text("UPDATE users SET disabled_at = :now WHERE id = :id"), {"now": NOW, "id": user_id}
        )
        assert accounts.authenticate(conn, "ada", "pw") is None
        assert accounts.get_user(conn, user_id) is None
        assert accounts.count_admins(conn) == 0


def test_a_token_is_shown_once_kept_as_its_sha256_and_used_until_revoked(any_engine):
    with any_engine.begin() as conn:
        token_id, token = accounts.create_token(conn, "collector", "ingest", NOW)
        stored = conn.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    assert token.startswith("clew_") and len(token) == len("clew_") + 43
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    later = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    with any_engine.begin() as conn:
        assert accounts.use_token(conn, token, later) == {
            "id": token_id,
            "name": "collector",
            "scope": "ingest",
        }
        assert accounts.use_token(conn, token[:-1], later) is None
        assert accounts.use_token(conn, "not-a-clew-token", later) is None
        (listed,) = accounts.list_tokens(conn)
    assert listed["last_used_at"] == later
    with any_engine.begin() as conn:  # kept to the minute: a use within it writes nothing
        accounts.use_token(conn, token, later + timedelta(seconds=59))
        assert accounts.list_tokens(conn)[0]["last_used_at"] == later
        accounts.use_token(conn, token, later + timedelta(seconds=60))
        assert accounts.list_tokens(conn)[0]["last_used_at"] == later + timedelta(seconds=60)
    assert "token_sha256" not in listed
    with any_engine.begin() as conn:
        assert accounts.revoke_token(conn, token_id, later)
        assert not accounts.revoke_token(conn, token_id, later)
        assert accounts.use_token(conn, token, later) is None


def test_two_tokens_differ_and_a_bad_scope_is_refused(any_engine):
    with any_engine.begin() as conn:
        first = accounts.create_token(conn, "a", "read", NOW)[1]
        second = accounts.create_token(conn, "b", "read", NOW)[1]
        with pytest.raises(accounts.AccountError, match="scope must be one of"):
            accounts.create_token(conn, "c", "write", NOW)
    assert first != second


def test_a_setting_is_made_once_and_kept(any_engine):
    made = iter(["first", "second"])
    with any_engine.begin() as conn:
        assert accounts.setting(conn, "secret_key", lambda: next(made), NOW) == "first"
    with any_engine.begin() as conn:
        assert accounts.setting(conn, "secret_key", lambda: next(made), NOW) == "first"


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_users_commands_add_list_set_role_and_remove(tmp_path):
    db = str(tmp_path / "c.db")
    added = _run("users", "add", "ada", "--role", "admin", "--db", db, input="s3cret\ns3cret\n")
    assert added.exit_code == 0, added.output
    assert "user ada added as admin" in added.output
    piped = _run("users", "add", "bob", "--role", "viewer", "--password-stdin", "--db", db,
                 input="hunter2\n")  # fmt: skip
    assert piped.exit_code == 0, piped.output
    listed = orjson.loads(_run("users", "list", "--json", "--db", db).output)
    assert [(u["username"], u["role"], u["disabled_at"]) for u in listed] == [
        ("ada", "admin", None),
        ("bob", "viewer", None),
    ]
    assert _run("users", "set-role", "bob", "governance", "--db", db).exit_code == 0
    engine = store.open_engine(db)
    with engine.begin() as conn:
        assert accounts.authenticate(conn, "bob", "hunter2")["role"] == "governance"
        assert accounts.authenticate(conn, "ada", "s3cret")["role"] == "admin"
    assert _run("users", "remove", "bob", "--db", db).exit_code == 0
    assert "bob" not in _run("users", "list", "--db", db).output
    engine.dispose()


def test_users_commands_refuse_what_they_cannot_do(tmp_path):
    db = str(tmp_path / "c.db")
    mismatch = _run("users", "add", "ada", "--role", "admin", "--db", db, input="a\nb\na\na\n")
    assert mismatch.exit_code == 0  # the prompt asked again until the two agreed
    assert "do not match" in mismatch.output
    taken = _run("users", "add", "ada", "--role", "viewer", "--password-stdin", "--db", db,
                 input="x\n")  # fmt: skip
    assert taken.exit_code == 1 and "exists already" in taken.output
    empty = _run("users", "add", "eve", "--role", "viewer", "--password-stdin", "--db", db,
                 input="\n")  # fmt: skip
    assert empty.exit_code == 2 and "must not be empty" in empty.output
    bad_role = _run("users", "add", "eve", "--role", "root", "--password-stdin", "--db", db)
    assert bad_role.exit_code == 2
    assert _run("users", "remove", "eve", "--db", db).exit_code == 1
    assert _run("users", "set-role", "eve", "admin", "--db", db).exit_code == 1
    assert [
        u["username"] for u in orjson.loads(_run("users", "list", "--json", "--db", db).output)
    ] == ["ada"]


def test_tokens_commands_create_list_and_revoke(tmp_path):
    db = str(tmp_path / "c.db")
    made = orjson.loads(
        _run("tokens", "create", "--scope", "ingest", "--name", "otel", "--json", "--db", db).output
    )
    assert made["scope"] == "ingest" and made["name"] == "otel"
    assert made["token"].startswith("clew_")
    text_out = _run("tokens", "create", "--scope", "read", "--name", "grafana", "--db", db).output
    token = text_out.splitlines()[-1]
    assert token.startswith("clew_") and "not shown again" in text_out
    listed = orjson.loads(_run("tokens", "list", "--json", "--db", db).output)
    assert [(t["name"], t["scope"], t["revoked_at"]) for t in listed] == [
        ("grafana", "read", None),
        ("otel", "ingest", None),
    ]
    assert made["token"] not in _run("tokens", "list", "--db", db).output
    assert _run("tokens", "revoke", str(made["id"]), "--db", db).exit_code == 0
    again = _run("tokens", "revoke", str(made["id"]), "--db", db)
    assert again.exit_code == 1 and "no token" in again.output
    engine = store.open_engine(db)
    with engine.begin() as conn:
        assert accounts.use_token(conn, made["token"], NOW) is None
        assert accounts.use_token(conn, token, NOW)["scope"] == "read"
    engine.dispose()
    bad = _run("tokens", "create", "--scope", "write", "--name", "x", "--db", db)
    assert bad.exit_code == 2
