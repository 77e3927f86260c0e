"""The writers keep the planner's statistics of their tables fresh on PostgreSQL
(``clew.store.statistics``): a day partition filled by one bulk load is analyzed as it grows, so
the lookup of a batch's traces by id reads the trace-id index instead of the whole partition."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from clew.store import partitions, spans, statistics
from tests.otlp import BASE_NS

pytestmark = pytest.mark.postgres

DAY = BASE_NS // partitions.NS_PER_DAY
PARTITION = partitions.partition_name("span_chunks", DAY)
ROWS = 100_000


def _fill(engine, traces: int) -> None:
    rows = [(f"{n:032x}", BASE_NS + n, 1, b"\x91\x90") for n in range(traces)]
    with engine.begin() as conn:
        partitions.take_writer_lock(conn)
        partitions.ensure(conn, "span_chunks", [BASE_NS])
        spans.append(conn, "span_chunks", spans._COLUMNS, spans._TYPES, rows)
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counted at the commit


def _lookup_plan(engine) -> str:
    ids = ", ".join(f"'{n:032x}'" for n in range(0, ROWS, ROWS // 500))  # as a batch asks
    with engine.connect() as conn:
        # Its own partition: others on this database are not this test's to judge.
        query = f'EXPLAIN SELECT spans FROM "{PARTITION}" WHERE trace_id IN ({ids})'
        lines = conn.execute(text(query))
        return "\n".join(lines.scalars())


def _stale_soon(engine) -> list[str]:
    """What ``analyze_stale`` analyzes, once the server has counted the last commit's rows in
    the partition (other tests' tables on this database may come along)."""
    deadline = time.monotonic() + 15
    analyzed: list[str] = []
    while PARTITION not in analyzed and time.monotonic() < deadline:
        with engine.begin() as conn:
            analyzed += statistics.analyze_stale(conn)
        time.sleep(0.2)
    return analyzed


def test_a_partition_filled_in_bulk_is_analyzed_and_its_lookups_use_the_index(pg_engine):
    _fill(pg_engine, ROWS)
    assert "Seq Scan" in _lookup_plan(pg_engine)  # what the planner does knowing nothing
    assert PARTITION in _stale_soon(pg_engine)  # (and other tests' tables, maybe)
    plan = _lookup_plan(pg_engine)
    assert "Seq Scan" not in plan and "Index" in plan, plan
    with pg_engine.begin() as conn:  # nothing changed since: nothing to do
        assert PARTITION not in statistics.analyze_stale(conn)


def test_a_table_is_analyzed_again_only_once_a_share_of_it_has_changed(pg_engine):
    _fill(pg_engine, ROWS)
    assert PARTITION in _stale_soon(pg_engine)
    with pg_engine.begin() as conn:  # 1,000 + a fifth of 100,000 rows: 21,000 more wait
        rows = [(f"{n:032x}", BASE_NS + n, 1, b"\x90") for n in range(ROWS, ROWS + 20_000)]
        spans.append(conn, "span_chunks", spans._COLUMNS, spans._TYPES, rows)
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    time.sleep(1)
    with pg_engine.begin() as conn:
        assert PARTITION not in statistics.analyze_stale(conn)
    _fill_more = [
        (f"{n:032x}", BASE_NS + n, 1, b"\x90") for n in range(ROWS + 20_000, ROWS + 22_000)
    ]
    with pg_engine.begin() as conn:
        spans.append(conn, "span_chunks", spans._COLUMNS, spans._TYPES, _fill_more)
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    assert PARTITION in _stale_soon(pg_engine)


def test_a_writer_looks_every_so_many_batches(pg_engine, monkeypatch):
    looked = []
    monkeypatch.setattr(statistics, "analyze_stale", lambda conn: looked.append(1) or [])
    writer = statistics.Freshness()
    with pg_engine.begin() as conn:
        for _ in range(2 * statistics.CHECK_EVERY + 1):
            writer.after_batch(conn)
    assert len(looked) == 3  # the first batch, then every CHECK_EVERY
