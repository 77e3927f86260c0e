"""Schema and migrations: Alembic head matches the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import msgspec
import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from clew import store
from clew.pipeline import ingest
from clew.records import Span
from clew.store import histogram, spans
from tests.clew.test_rollups import edges_of
from tests.conftest import corpus
from tests.stored import stored_spans

TABLES = {
    "services",
    "span_chunks",
    "span_links",
    "edge_rollups",
    "endpoints",
    "ingest_checkpoints",
    "quarantine",
    "alembic_version",
}


def _upgrade_then_check(engine) -> None:
    store.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    command.check(store.alembic_config(engine))  # raises if models and migrations drift


def test_sqlite_upgrade_head_matches_the_models(tmp_path):
    engine = store.open_engine(str(tmp_path / "fresh.db"))
    _upgrade_then_check(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


@pytest.mark.postgres
def test_postgres_upgrade_head_matches_the_models(postgres_url):
    engine = store.open_engine(postgres_url)
    try:
        _upgrade_then_check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_ingest_gives_the_same_graph_as_sqlite(pg_engine, engine, registry):
    for target in (pg_engine, engine):
        first = ingest(target, [corpus("otlp_json")], registry)
        assert (first.inserted, first.quarantined) == (38, 1)
        again = ingest(target, [corpus("otlp_json")], registry)
        assert (again.inserted, again.quarantined) == (0, 0)
    assert edges_of(pg_engine) == edges_of(engine)


def test_database_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("CLEW_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert store.database_url() == f"sqlite:///{tmp_path / 'clew.db'}"
    assert store.database_url("x/y.db") == f"sqlite:///{tmp_path / 'x' / 'y.db'}"
    monkeypatch.setenv("CLEW_DATABASE_URL", "postgresql://h/db")
    assert store.database_url() == "postgresql://h/db"
    assert store.database_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


@given(st.integers(min_value=1, max_value=10**16))
def test_histogram_buckets_keep_every_value_within_two_percent(value):
    estimate = histogram.bucket_value(histogram.bucket_of(value))
    assert abs(estimate - value) / value <= histogram.ALPHA


def test_histogram_merge_quantile_and_storage():
    assert histogram.bucket_value(histogram.bucket_of(0)) == 0.0
    merged = histogram.merge([{1: 2, 5: 1}, {5: 3, 9: 1}])
    assert merged == {1: 2, 5: 4, 9: 1}
    assert histogram.loads(histogram.dumps(merged)) == merged
    assert histogram.quantile({}, 0.5) is None
    # One histogram, one text, whatever order its buckets were counted in.
    counted = {10: 1, histogram.ZERO_BUCKET: 2, 9: 3}
    assert histogram.dumps(counted) == histogram.dumps(dict(reversed(counted.items())))
    assert histogram.dumps(counted) == '{"-2147483648":2,"10":1,"9":3}'
    # What earlier versions stored (keys in numeric order) reads the same.
    assert histogram.loads('{"-2147483648":2,"9":3,"10":1}') == counted
    assert histogram.loads(None) == histogram.loads("") == {}


def _migrate_down_and_up(engine) -> None:
    """0001 → head → 0001 → head with a span stored: the derived columns 0002 drops come back
    filled on the way down, and the way up again leaves the span as it was. Starts from an empty
    database (the whole way down first: the PostgreSQL database is the session's)."""
    command.downgrade(store.alembic_config(engine), "base")
    store.upgrade(engine, "0001")
    span = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "service": "orders",
        "name": "GET /orders",
        "kind": 2,
        "start_ns": 1_790_000_000_123_456_789,
        "duration_ns": 25_000_000,
        "status": 0,
    }
    columns = ", ".join(span)
    values = ", ".join(f":{name}" for name in span)
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO spans ({columns}, minute, latency_bucket) VALUES ({values}, 0, 0)"),
            span,
        )
    store.upgrade(engine)
    command.downgrade(store.alembic_config(engine), "0001")
    with engine.connect() as conn:
        minute, bucket = conn.execute(text("SELECT minute, latency_bucket FROM spans")).one()
    assert minute == span["start_ns"] // 60_000_000_000
    assert bucket == histogram.bucket_of(span["duration_ns"])
    store.upgrade(engine)
    command.check(store.alembic_config(engine))
    (stored,) = stored_spans(engine)
    assert tuple(getattr(stored, name) for name in span) == tuple(span.values())


def test_sqlite_migrations_go_down_and_up_with_data(tmp_path):
    _migrate_down_and_up(store.open_engine(str(tmp_path / "round.db")))


@pytest.mark.postgres
def test_postgres_migrations_go_down_and_up_with_data(postgres_url):
    engine = store.open_engine(postgres_url)
    try:
        _migrate_down_and_up(engine)
    finally:
        engine.dispose()


def _spans_move_into_chunks_and_back(engine) -> None:
    """0005 → 0006 moves every span row into one chunk per trace, with all 22 columns as they
    were; going back down restores the rows. Starts from an empty database."""
    command.downgrade(store.alembic_config(engine), "base")
    store.upgrade(engine, "0005")
    columns = Span._fields
    rows = [
        Span(
            f"{trace:032x}",
            f"{span:016x}",
            f"{span - 1:016x}" if span > 1 else None,
            f"service-{span % 3}",
            f"op {span} ✓",  # not ASCII
            span % 6,
            1_790_000_000_000_000_000 + trace * 1_000_000 + span,
            span * 1_000,
            span % 3,
            "boom" if span % 3 == 2 else None,
            "GET",
            "/orders/{id}",
            200 + span,
            "/orders/7",
            "db.internal",
            None,
            "postgresql" if span == 2 else None,
            None,
            None,
            None,
            None,
            '{"k": [1, 2.5, true]}',
        )
        for trace in (1, 2, 3)
        for span in range(1, 2 + trace)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO spans ({', '.join(columns)})"
                f" VALUES ({', '.join(':' + c for c in columns)})"
            ),
            [row._asdict() for row in rows],
        )
    store.upgrade(engine, "0006")
    assert stored_spans(engine) == sorted(rows)
    with engine.connect() as conn:
        chunks = conn.execute(
            text("SELECT trace_id, start_ns, span_count FROM span_chunks ORDER BY trace_id")
        ).all()
    assert [tuple(c) for c in chunks] == [
        (f"{t:032x}", 1_790_000_000_000_000_000 + t * 1_000_000 + 1, t + 1) for t in (1, 2, 3)
    ]
    command.downgrade(store.alembic_config(engine), "0005")
    with engine.connect() as conn:
        back = conn.execute(
            text(f"SELECT {', '.join(columns)} FROM spans ORDER BY trace_id, span_id")
        ).all()
    assert [Span(*row) for row in back] == sorted(rows)
    store.upgrade(engine)


def test_sqlite_spans_move_into_chunks_and_back(tmp_path):
    _spans_move_into_chunks_and_back(store.open_engine(str(tmp_path / "chunks.db")))


@pytest.mark.postgres
def test_postgres_spans_move_into_chunks_and_back(postgres_url):
    engine = store.open_engine(postgres_url)
    try:
        _spans_move_into_chunks_and_back(engine)
    finally:
        engine.dispose()


def _wide_chunks_split(engine) -> None:
    """0019 splits a chunk whose spans start more than ``CHUNK_WINDOW_NS`` apart into chunks
    that each start within it, every span kept; a narrow chunk stays as it was. Starts from an
    empty database."""
    command.downgrade(store.alembic_config(engine), "base")
    store.upgrade(engine, "0018")
    base = 1_790_000_000_000_000_000
    window = spans.CHUNK_WINDOW_NS

    def row(trace: int, span: int, start: int) -> list:
        values = [None] * len(Span._fields)
        values[:9] = [f"{trace:032x}", f"{span:016x}", None, "shop", "op", 2, start, 5, 0]
        return values

    wide = [row(1, 3, base + window + 9), row(1, 1, base), row(1, 2, base + window - 1)]
    narrow = [row(2, 1, base), row(2, 2, base + window - 1)]
    with engine.begin() as conn:
        for rows in (wide, narrow):
            conn.execute(
                text(
                    "INSERT INTO span_chunks (trace_id, start_ns, span_count, spans)"
                    " VALUES (:trace_id, :start_ns, :span_count, :spans)"
                ),
                {
                    "trace_id": rows[0][0],
                    "start_ns": min(r[6] for r in rows),
                    "span_count": len(rows),
                    "spans": msgspec.msgpack.encode(rows),
                },
            )
    store.upgrade(engine)
    with engine.connect() as conn:
        chunks = conn.execute(
            text("SELECT trace_id, start_ns, span_count FROM span_chunks ORDER BY 1, 2")
        ).all()
    assert [tuple(c) for c in chunks] == [
        (f"{1:032x}", base, 2),
        (f"{1:032x}", base + window + 9, 1),
        (f"{2:032x}", base, 2),
    ]
    assert stored_spans(engine) == sorted(Span(*r) for r in wide + narrow)


def test_sqlite_migration_splits_chunks_wider_than_their_window(tmp_path):
    _wide_chunks_split(store.open_engine(str(tmp_path / "wide.db")))


@pytest.mark.postgres
def test_postgres_migration_splits_chunks_wider_than_their_window(postgres_url):
    engine = store.open_engine(postgres_url)
    try:
        _wide_chunks_split(engine)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM span_chunks"))
        engine.dispose()


def _schema(engine) -> dict:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    found = {}
    with engine.connect() as conn:
        inspector = inspect(conn)
        for table in sorted(inspector.get_table_names()):
            found[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in inspector.get_columns(table)
                ],
                "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted(
                    (tuple(fk["constrained_columns"]), fk["referred_table"], fk.get("options"))
                    for fk in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                    for ix in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (uc["name"], tuple(uc["column_names"]))
                    for uc in inspector.get_unique_constraints(table)
                ),
                "checks": sorted(ck["sqltext"] for ck in inspector.get_check_constraints(table)),
            }
    return found


def _created_schema_is_the_migrated_one(engine) -> None:
    """A database ``ensure_schema`` creates from the models has the schema every migration in
    turn gives, and is stamped at head: later migrations and downgrades start from it as from a
    migrated one. Starts from an empty database (the whole way down first)."""
    config = store.alembic_config(engine)
    command.downgrade(config, "base")
    store.upgrade(engine)
    migrated = _schema(engine)
    command.downgrade(config, "base")
    store.ensure_schema(engine)
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [
            store.SCHEMA_HEAD
        ]
    assert _schema(engine) == migrated
    command.check(config)
    command.downgrade(config, "0005")  # the migrations work from the created schema
    store.ensure_schema(engine)  # an older revision: upgraded by Alembic
    assert _schema(engine) == migrated


def test_sqlite_created_schema_is_the_migrated_one(tmp_path):
    _created_schema_is_the_migrated_one(store.open_engine(str(tmp_path / "created.db")))


@pytest.mark.postgres
def test_postgres_created_schema_is_the_migrated_one(postgres_url):
    engine = store.open_engine(postgres_url)
    try:
        _created_schema_is_the_migrated_one(engine)
    finally:
        engine.dispose()


def test_schema_head_is_alembics_head(tmp_path):
    from alembic.script import ScriptDirectory

    config = store.alembic_config(store.open_engine(str(tmp_path / "any.db")))
    assert ScriptDirectory.from_config(config).get_current_head() == store.SCHEMA_HEAD


def test_opening_a_database_at_head_loads_no_alembic(tmp_path):
    """Every CLI command opens the store: one at head costs no Alembic import (a tenth of a
    second), and one made new costs no migrations."""
    program = (
        "import sys; from clew import store;"
        f"engine = store.open_engine({str(tmp_path / 'clew.db')!r});"
        "store.ensure_schema(engine); store.ensure_schema(engine);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.postgres
def test_nul_characters_reach_postgresql_as_replacement_characters(pg_engine, registry, tmp_path):
    """PostgreSQL's text holds no NUL: a span naming a service with one, and a binary file's
    excerpt in quarantine, are stored with U+FFFD in its place instead of failing the write."""
    from tests import otlp

    client = otlp.span(1, 1, kind=3, name="GET /a\x00b", **{"server.address": "orders"})
    server = otlp.span(1, 2, 1, kind=2, name="GET /a", **{"http.route": "/a"})
    spans = otlp.write_lines(
        tmp_path / "nul.jsonl", [otlp.request({"we\x00b": [client], "orders": [server]})]
    )
    binary = tmp_path / "binary.log"
    binary.write_bytes(b"\x00\x01not a log\x00\n" * 3)
    result = ingest(pg_engine, [spans, binary], registry)
    assert (result.inserted, result.quarantined, result.problems) == (2, 1, [])
    with pg_engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM services ORDER BY name")).scalars().all()
        excerpt = conn.execute(text("SELECT excerpt FROM quarantine")).scalar_one()
    assert names == ["orders", "we\ufffdb"]
    assert excerpt.startswith("\ufffd\x01not a log\ufffd")
