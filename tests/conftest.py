"""Shared fixtures: fresh databases (SQLite always, PostgreSQL when configured) and the demo."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from clew import store
from collectors import load_registry

CORPUS = Path(
    os.environ.get("CLEW_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)
#: The sample landscape used by tests ends at a fixed time so every run sees the same data.
SAMPLE_END_NS = 1_795_000_000_000_000_000 // 60_000_000_000 * 60_000_000_000
SAMPLE_TRACES = 800


#: How many of each property test's examples the run tries (``CLEW_HYPOTHESIS_SCALE``): half by
#: default, so the default run stays short; ``bench/fuzz.py`` is the place for long budgets, and
#: ``CLEW_HYPOTHESIS_SCALE=1`` (or more) runs every property test at its full count.
EXAMPLE_SCALE = float(os.environ.get("CLEW_HYPOTHESIS_SCALE", "0.5"))


def examples(count: int) -> int:
    """``count`` examples at the run's scale (at least 10)."""
    return max(10, round(count * EXAMPLE_SCALE))


def corpus(*parts: str) -> Path:
    """A file or folder of the shared third-party corpus (``../shared/corpus`` or CLEW_CORPUS).

    A checkout without the corpus beside it skips these tests; in CI (``CI`` set) it fails them.
    """
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing: the corpus lives in ../shared/corpus (or set CLEW_CORPUS)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def registry():
    return load_registry()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite database."""
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the CLEW_TEST_POSTGRES_URL server, dropped afterwards.

    Skipped only when the variable is unset; when it is set, an unreachable server fails the test.
    """
    server = os.environ.get("CLEW_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("CLEW_TEST_POSTGRES_URL is not set")
    from tests.scratch_postgres import scratch_database

    with scratch_database(server) as url:
        yield url


def interruptible() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: a child that a test stops with SIGINT (as Ctrl-C)
    takes it as Ctrl-C even when the tests run as a shell's background job, whose children start
    with SIGINT ignored (and Python keeps an ignored SIGINT ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: A fixture's params for tests that run on both stores; PostgreSQL's need CLEW_TEST_POSTGRES_URL.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def engine_of(request: pytest.FixtureRequest, sqlite: Engine) -> Engine:
    """The engine of the store a test parametrized by ``BACKENDS`` runs on: ``sqlite``, or a
    migrated scratch PostgreSQL database (``pg_engine``). A module whose tests all run on both
    overrides ``engine`` with it::

        @pytest.fixture(params=BACKENDS)
        def engine(request, engine):
            return engine_of(request, engine)
    """
    return sqlite if request.param == "sqlite" else request.getfixturevalue("pg_engine")


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database; emptied after each test."""
    engine = store.open_engine(postgres_url)
    store.upgrade(engine)
    yield engine
    with engine.begin() as conn:
        from clew.store import partitions
        from clew.store.models import metadata

        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for table in partitions.RAW_TABLES:  # and the raw tables' day partitions
            for day in partitions.days(conn, table):
                conn.execute(text(f'DROP TABLE "{partitions.partition_name(table, day)}"'))
    engine.dispose()


def _built_once(factory: pytest.TempPathFactory, name: str, build: Any) -> str:
    """The database ``build(path)`` makes, made once for the whole run: with xdist, the first
    worker to ask builds it under a lock in the run's shared temporary folder, and the others
    wait for it and read the same file (tests copy it before writing)."""
    import fcntl

    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's folder sits in the run's
    folder = root / name
    path = folder / "clew.db"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "built").exists():
            folder.mkdir(exist_ok=True)
            build(path)
            (folder / "built").touch()
    return str(path)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding the sample landscape (SAMPLE_TRACES traces ending SAMPLE_END_NS).

    Read-only for tests: copy it before writing.
    """
    from clew.demo import load_sample

    def build(path: Path) -> None:
        engine = store.open_engine(str(path))
        store.upgrade(engine)
        loaded = load_sample(engine, now_ns=SAMPLE_END_NS, traces=SAMPLE_TRACES)
        assert loaded["loaded"] and loaded["inserted"] > 0
        engine.dispose()

    return _built_once(tmp_path_factory, "sample", build)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        help="Write the golden files (tests/**/data/*.golden.json) from this run, then fail.",
    )


@pytest.fixture(scope="session")
def full_sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample landscape at the size ``clew demo`` loads (4000 traces), ending SAMPLE_END_NS,
    with the demo's policy run recorded. Read-only for tests: copy it before writing."""
    from clew.demo import load_sample

    def build(path: Path) -> None:
        engine = store.open_engine(str(path))
        store.upgrade(engine)
        loaded = load_sample(engine, now_ns=SAMPLE_END_NS)
        assert loaded["loaded"] and loaded["policies"]["findings"] > 0
        engine.dispose()

    return _built_once(tmp_path_factory, "full-sample", build)


@pytest.fixture(scope="session")
def full_sample_postgres(full_sample_db: str) -> Iterator[str]:
    """The full sample landscape in a PostgreSQL database of its own on the
    CLEW_TEST_POSTGRES_URL server (skipped when that is unset): the very files ``full_sample_db``
    was loaded from, ingested and evaluated as ``clew demo`` does. Read-only for tests."""
    server = os.environ.get("CLEW_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("CLEW_TEST_POSTGRES_URL is not set")
    from clew import demo
    from tests.scratch_postgres import scratch_database

    sqlite = store.open_engine(full_sample_db)
    (folder,) = demo.sample_dir(sqlite).glob("sample-*")
    sqlite.dispose()
    with scratch_database(server, prefix="clew_sample") as url:
        engine = store.open_engine(url)
        store.upgrade(engine)
        demo.ingest_sample(engine, folder)
        assert demo.evaluate_sample(engine, folder, SAMPLE_END_NS).summary.findings > 0
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sample_folder(sample_db) -> Path:
    """The generated files the sample database was loaded from."""
    from clew import demo

    engine = store.open_engine(sample_db)
    (folder,) = demo.sample_dir(engine).glob("sample-*")
    engine.dispose()
    return folder


@pytest.fixture(scope="session")
def manifest(sample_folder) -> dict:
    """The sample's manifest: what it plants, and what its gateway logs hold."""
    import orjson

    return orjson.loads((sample_folder / "manifest.json").read_bytes())


def require_built(module: Any, name: str) -> Any:
    """A compiled module that a test needs: skips the test when it is not built (installing
    Clew without a C compiler), and fails it in CI, where it must be."""
    if module is None:
        message = f"{name} is not built (installing Clew needs a C compiler)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return module
