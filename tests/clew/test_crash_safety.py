"""Crash safety: ``clew ingest`` killed with SIGKILL at random moments and run again stores what
a clean run stores, row for row, on SQLite and PostgreSQL (``tests/crash_trials.py``;
``bench/crash_safety.py`` runs many more trials, on larger input).

Each file here is one batch; the bench's input is read in several, and a rerun resumes mid-file,
splitting traces elsewhere than the clean run: what is stored does not depend on where
(``tests/clew/test_split_traces.py``), maxima and failing paths' first failures included.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from clew import store
from clew.store.models import metadata
from tests import crash_trials

#: Trials per backend, one kill each (``bench/crash_safety.py`` kills up to three times a trial).
TRIALS = 3
#: A small landscape: a clean run is a couple of seconds, most of it the CLI starting.
TRACES = 100
PIECES = 3
#: Tables the sample's ingest must fill, so that comparing them proves something.
FILLED = (
    "services",
    "span_chunks",
    "gateway_request_chunks",
    "gateway_traces",
    "span_links",
    "edge_rollups",
    "edge_rollup_blocks",
    "failing_paths",
    "endpoints",
    "route_aliases",
    "contracts",
    "contract_versions",
    "operations",
    "catalog_entities",
    "declared_dependencies",
    "api_definitions",
    "ingest_checkpoints",
    "quarantine",
)


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return crash_trials.make_input(tmp_path_factory.mktemp("crash"), traces=TRACES, pieces=PIECES)


@pytest.fixture(scope="module")
def startup() -> float:
    return crash_trials.startup_time(crash_trials.ingest_command("unused.db", []))


def _trials(
    database: str, engine: Engine, reset: Callable[[], None], paths: list[Path], startup: float
) -> None:
    command = crash_trials.ingest_command(database, paths)
    reset()
    duration = crash_trials.run_clean(command)
    clean = crash_trials.snapshot(engine)
    engine.dispose()
    empty = [name for name in FILLED if not clean[name]]
    assert empty == [], f"the clean run left these tables empty: {empty}"
    window = (startup, duration)
    # New seeds every run, so runs add up to many kill moments; each is in the message, and
    # the bench replays it (the delays are drawn alike, the moment each lands in can differ).
    seeds = [random.SystemRandom().randrange(1 << 32) for _ in range(TRIALS)]
    trials = []
    for seed in seeds:
        trials.append(
            crash_trials.run_trial(seed, command, window, engine, clean, reset, max_kills=1)
        )
        window = trials[-1].window
    backend = "sqlite" if engine.dialect.name == "sqlite" else "postgres"
    replay = (
        f"replay: .venv/bin/python bench/crash_safety.py --backend {backend} --traces {TRACES}"
        f" --pieces {PIECES} --max-kills 1 --seeds {','.join(map(str, seeds))}"
    )
    report = "\n".join([*(trial.describe() for trial in trials), replay])
    assert [(t.difference.lost, t.difference.extra) for t in trials] == [(0, 0)] * TRIALS, report
    # Every trial killed at least one run before it finished (``run_trial`` draws again).
    assert all(any(k is not None for k in t.kills) for t in trials), report


@pytest.mark.slow
def test_ingest_killed_at_random_moments_stores_what_a_clean_run_stores_on_sqlite(
    tmp_path: Path, landscape: list[Path], startup: float
):
    database = tmp_path / "clew.db"
    engine = store.open_engine(str(database))
    _trials(str(database), engine, lambda: crash_trials.remove_sqlite(database), landscape, startup)


@pytest.mark.slow
@pytest.mark.postgres
def test_ingest_killed_at_random_moments_stores_what_a_clean_run_stores_on_postgresql(
    postgres_url: str, landscape: list[Path], startup: float
):
    engine = store.open_engine(postgres_url)
    try:
        _trials(postgres_url, engine, lambda: crash_trials.drop_store(engine), landscape, startup)
    finally:
        # The database is the session's: other tests on this worker expect it empty, at head.
        crash_trials.drop_store(engine)
        store.ensure_schema(engine)
        engine.dispose()


_KILLED_WHILE_CREATING = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from clew import store
    engine = store.open_engine(sys.argv[1])
    created = []

    # The sixth table made, from the models (SQLite) or by the migrations (PostgreSQL).
    def kill(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            created.append(statement)
            if len(created) == 6:
                os.kill(os.getpid(), signal.SIGKILL)

    event.listen(engine, "after_cursor_execute", kill)
    store.ensure_schema(engine)
    """
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_start_killed_while_creating_the_schema_leaves_a_database_the_next_start_completes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """Regression: on SQLite the tables were created outside a transaction, so a kill midway left
    some tables and no Alembic stamp, and every later start failed ("table … already exists")."""
    if backend == "sqlite":
        database = str(tmp_path / "clew.db")
        engine = store.open_engine(database)
    else:
        database = request.getfixturevalue("postgres_url")
        engine = store.open_engine(database)
        crash_trials.drop_store(engine)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_CREATING, database], capture_output=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert inspect(engine).get_table_names() == []
    store.ensure_schema(engine)
    assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}
    engine.dispose()
