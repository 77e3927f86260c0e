"""The store: engine creation, schema migration and the per-app database handle.

Nothing connects at import time. ``open_engine`` is called by the composition root (a CLI command,
``create_app``, a test) which then owns the transactions.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, make_url

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_DATABASE = "clew.db"

#: The project root: migrations/ and sample_data/ live beside the packages (Clew is deployed from
#: its checkout, Django-style).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def utcnow() -> datetime:
    """The current time, timezone-aware (what every ``created_at`` column holds)."""
    return datetime.now(UTC)


def database_url(value: str | None = None) -> str:
    """The database URL from ``--db`` (URL or path), else ``CLEW_DATABASE_URL``, else ./clew.db."""
    value = value or os.environ.get("CLEW_DATABASE_URL") or DEFAULT_DATABASE
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the console read while an ingest writes; NORMAL sync is safe with WAL.
    cursor = dbapi_connection.cursor()
    # 16 KiB pages (a new database only; an existing one keeps its own): a trace's chunk of spans
    # is some 5 KB, which 4 KiB pages split over overflow pages. Bulk ingest spent a third less
    # time in the kernel with them.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 32 MiB of pages: bulk ingest measured no faster with more, and memory stays bounded.
    cursor.execute("PRAGMA cache_size=-32768")
    # Checkpoint when the WAL holds 4,096 pages (64 MiB of 16 KiB pages), not 1,000: a batch of
    # spans writes some 8 MiB, and a checkpoint (two fsyncs, and pages written again) after every
    # batch cost bulk ingest about a twentieth of its time.
    cursor.execute("PRAGMA wal_autocheckpoint=4096")
    cursor.close()


def _bind_none_directly() -> None:
    """Let ``sqlite3`` bind None without its adapter search.

    The module binds int, float and str as they are, but looks every None up in its adapter
    registry and probes it for ``__adapt__`` and ``__conform__`` first: about 0.2 µs a value,
    and a span row carries nine or ten of them (a third of ``executemany``'s time for spans). A
    registered adapter is found at once; ``{}.get`` is a C callable that returns None, bound as
    NULL as before. The registration is process-wide and changes no value stored.
    """
    sqlite3.register_adapter(type(None), {}.get)


def open_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (see ``database_url``); SQLite tuned for one writer, many readers."""
    resolved = make_url(database_url(url))
    if resolved.drivername.startswith("sqlite"):
        _bind_none_directly()
        if resolved.database and resolved.database != ":memory:":
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        # A pooled connection may serve the pipeline's writer thread and, later, another thread;
        # the pool hands each connection to one thread at a time.
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(resolved, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if resolved.drivername in ("postgresql", "postgres"):
        resolved = resolved.set(drivername="postgresql+psycopg")
    engine = create_engine(resolved, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _text_without_nul)
    return engine


def _text_without_nul(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL's text holds no NUL character, which input may carry (a span name, a binary
    file's excerpt in quarantine): every string a PostgreSQL connection sends, bound or copied,
    has its NULs replaced by U+FFFD, where PostgreSQL would refuse the whole write. SQLite keeps
    them as they are."""
    adapters = dbapi_connection.adapters
    for base in _string_dumpers():
        adapters.register_dumper(str, base)


def _string_dumpers() -> list[type]:
    """psycopg's dumpers of ``str``, each made to replace NUL, in the order psycopg registers
    them (the last of each format is that format's default)."""
    global _NUL_FREE_DUMPERS
    if _NUL_FREE_DUMPERS is None:
        # psycopg's own Python ones: its compiled ones cannot be subclassed.
        from psycopg.types import string as dumpers

        _NUL_FREE_DUMPERS = [_nul_free(getattr(dumpers, name)) for name in _STRING_DUMPERS]
    return _NUL_FREE_DUMPERS


_STRING_DUMPERS = (
    "StrBinaryDumperName",
    "StrBinaryDumperVarchar",
    "StrBinaryDumper",
    "StrDumperName",
    "StrDumperVarchar",
    "StrDumper",
    "StrDumperUnknown",
)
_NUL_FREE_DUMPERS: list[type] | None = None


def _nul_free(base: type) -> type:
    def dump(self: Any, obj: str) -> Any:
        if "\x00" in obj:
            obj = obj.replace("\x00", "\ufffd")
        return base.dump(self, obj)

    return type(f"NulFree{base.__name__}", (base,), {"dump": dump})


def alembic_config(engine: Engine):
    """An Alembic config bound to ``engine``, reading ``[tool.alembic]`` from pyproject.toml."""
    from alembic.config import Config

    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (Alembic)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


#: The newest migration in ``migrations/versions``. A database stamped with it is opened without
#: loading Alembic at all, and a new one is created from the models in one step; a test keeps the
#: two in step with Alembic's own head.
SCHEMA_HEAD = "0021"


#: The PostgreSQL advisory lock held while the schema is created or upgraded.
SCHEMA_LOCK = int.from_bytes(b"clew-ddl", "big")


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the store's schema lock: one process at a time creates or upgrades the schema.

    On PostgreSQL an advisory lock held by a connection of its own; on SQLite an exclusive
    ``flock`` on ``<database>.lock`` beside the file (never on the database file itself, whose
    POSIX locks SQLite holds and a second descriptor's close would drop); nothing for an
    in-memory database.
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
                conn.commit()
        return
    database = engine.url.database
    if dialect != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the flock


def ensure_schema(engine: Engine) -> None:
    """Bring the database to ``SCHEMA_HEAD``, under the schema lock (``schema_lock``) so that
    processes starting together on a new database make it once; cheap on every start.

    A database already there is left as it is. An empty SQLite one (or one migrated down to
    nothing) is created from the models and stamped, as Alembic's cookbook builds a database from
    scratch: running every migration in turn took 20 times as long (a third of a second, and
    Alembic's import besides) for the same schema, which a test compares table by table.
    Anything else, and any new PostgreSQL database (whose raw tables the migrations partition),
    is upgraded by Alembic.
    """
    with schema_lock(engine):
        _ensure_schema(engine)


def _ensure_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        stamped = []
        if "alembic_version" in tables:
            stamped = conn.scalars(text("SELECT version_num FROM alembic_version")).all()
    if stamped == [SCHEMA_HEAD]:
        return
    if stamped or tables - {"alembic_version"} or engine.dialect.name != "sqlite":
        # PostgreSQL's raw tables are partitioned by the migrations, which the models do not say.
        upgrade(engine)
        return
    from clew.store.models import metadata

    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # sqlite3 runs DDL outside any transaction unless one is begun: a process killed
            # midway would leave some tables and no stamp, a database every later start fails on.
            conn.exec_driver_sql("BEGIN")
        metadata.create_all(conn)
        # Alembic's own version table, as Alembic makes it: one row, the revision.
        Table(
            "alembic_version",
            MetaData(),
            Column("version_num", String(32), nullable=False),
            PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
        ).create(conn, checkfirst=True)  # left empty by a downgrade to base
        conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": SCHEMA_HEAD}
        )


def init_app(app: Flask) -> None:
    """Open the app's engine and keep it in ``app.extensions['clew']``."""
    engine = open_engine(app.config.get("DATABASE_URL"))
    app.extensions.setdefault("clew", {})["engine"] = engine


def engine_of(app: Flask) -> Engine:
    """The engine ``init_app`` opened for ``app``."""
    return app.extensions["clew"]["engine"]


def placeholders(conn: Connection, count: int) -> str:
    """``count`` positional placeholders in the driver's own parameter style."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def insert_ignoring_duplicates(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Bulk-insert ``rows``, skipping rows whose key already exists; returns how many went in.

    Runs through the DBAPI's ``executemany`` with bound parameters: the per-row hot path never
    touches the ORM.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    cols = ", ".join(columns)
    marks = placeholders(conn, len(columns))
    if conn.dialect.name == "sqlite":
        sql = f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({marks})"
    else:
        sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    return executemany(conn, sql, rows)


def executemany(conn: Connection, sql: str, rows: list[Sequence[Any]]) -> int:
    """Run ``sql`` once per positional row on the connection's DBAPI cursor; returns the rows it
    changed. ``?`` placeholders become the driver's own.

    For hot write paths: SQLAlchemy's ``text`` builds and binds a parameter dict per row, which
    costs more than the statements themselves.
    """
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, rows)
        return cursor.rowcount
    finally:
        cursor.close()


def append(
    conn: Connection, table: str, columns: Sequence[str], types: Sequence[str], rows: list
) -> int:
    """Append positional rows to ``table``; returns how many. On PostgreSQL through ``COPY … FROM
    STDIN`` in binary (``types`` names each column's PostgreSQL type, as binary COPY needs), which
    routes rows into partitions as inserts do; elsewhere through ``executemany``.

    For tables rows are only appended to: COPY knows no ``ON CONFLICT``.
    """
    if not rows:
        return 0
    if conn.dialect.name != "postgresql":
        marks = placeholders(conn, len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        return executemany(conn, sql, rows)
    cursor = conn.connection.driver_connection.cursor()
    try:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    finally:
        cursor.close()
    return len(rows)
