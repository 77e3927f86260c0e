"""The same landscape gives the same answers on SQLite and on PostgreSQL: ``clew graph --json``,
``clew endpoints --json`` and ``clew check --format json`` over the full sample, loaded into each
by ``clew demo``'s loader (which ingests, records a policy run and applies its waivers)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner

from clew import store
from clew.cli import main
from tests.conftest import SAMPLE_END_NS

pytestmark = pytest.mark.postgres
open_store = store.open_engine

_END = datetime.fromtimestamp(SAMPLE_END_NS / 1e9, UTC)
_WINDOW = [
    "--since",
    f"{_END.replace(hour=0, minute=0):%Y-%m-%dT%H:%M:%SZ}",
    "--until",
    f"{_END:%Y-%m-%dT%H:%M:%SZ}",
]


def _answer(db: str, *args: str) -> object:
    """The command's JSON, its engine closed afterwards (a process would end instead)."""
    opened = []

    def open_engine(url, **kwargs):
        opened.append(open_store(url, **kwargs))
        return opened[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "open_engine", open_engine)
        result = CliRunner().invoke(main, [*args, "--db", db])
    for engine in opened:
        engine.dispose()
    assert result.exit_code in (0, 1), result.output  # check exits 1 on findings at its level
    return orjson.loads(result.stdout)


@pytest.mark.parametrize(
    "command",
    [
        ["graph", "--json", *_WINDOW],
        ["graph", "--json"],
        ["endpoints", "--json", *_WINDOW],
        ["endpoints", "--json", "--status", "shadow", "--status", "zombie", *_WINDOW],
        ["check", "--format", "json", "--no-record", *_WINDOW],
    ],
    ids=["graph", "graph-all", "endpoints", "endpoints-shadow-zombie", "check"],
)
def test_sqlite_and_postgresql_answer_alike(command, full_sample_db, full_sample_postgres):
    on_sqlite = _answer(full_sample_db, *command)
    on_postgres = _answer(full_sample_postgres, *command)
    assert on_sqlite, "an empty answer compares equal to anything"
    assert on_postgres == on_sqlite
