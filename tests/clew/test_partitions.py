"""Raw tables by day and retention (``clew.store.partitions``, ``clew.store.retention``): rows in
their day's partition on PostgreSQL, whole days removed on both databases alike, the rollups'
tiers kept to their own horizons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from clew import pull_cli
from clew.pipeline import ingest
from clew.records import GatewayRequest
from clew.store import gateway_requests, partitions, queries, retention
from tests.clew.test_rollups import edges_of
from tests.conftest import BACKENDS, engine_of
from tests.otlp import BASE_NS, request, span, write_lines
from tests.stored import stored_spans

DAY_MS = 86_400_000
FIRST_DAY = BASE_NS // partitions.NS_PER_DAY


def _three_days(tmp_path: Path) -> Path:
    """A call from web to orders on each of three days, the last one failing."""
    lines = []
    for day in range(3):
        at = day * DAY_MS + 3_600_000
        client = span(
            day + 1, 1, kind=3, name="GET /orders", start_ms=at, **{"server.address": "orders"}
        )
        server = span(
            day + 1,
            2,
            1,
            kind=2,
            name="GET /orders",
            start_ms=at + 1,
            error=day == 2,
            **{"http.route": "/orders", "http.request.method": "GET"},
        )
        lines.append(request({"web": [client], "orders": [server]}))
    return write_lines(tmp_path / "three-days.jsonl", lines)


@pytest.fixture(params=BACKENDS)
def any_engine(request, engine):
    return engine_of(request, engine)


def test_rows_are_kept_in_their_day_s_partition_on_postgresql(pg_engine, registry, tmp_path):
    ingest(pg_engine, [_three_days(tmp_path)], registry)
    with pg_engine.connect() as conn:
        assert partitions.days(conn, "span_chunks") == [FIRST_DAY, FIRST_DAY + 1, FIRST_DAY + 2]
        placed = conn.execute(
            text("SELECT tableoid::regclass::text, start_ns FROM span_chunks")
        ).all()
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = 'span_chunks'")
        ).scalar_one()
    assert kind == "p"  # partitioned
    assert len(placed) == 3
    for name, start_ns in placed:
        assert name == partitions.partition_name("span_chunks", start_ns // partitions.NS_PER_DAY)


def test_gateway_requests_are_chunked_and_partitioned_by_day(any_engine):
    midnight = (FIRST_DAY + 1) * partitions.NS_PER_DAY
    rows = [
        GatewayRequest(
            at,
            "edge",
            None,
            None,
            "GET",
            None,
            "/orders/1",
            None,
            200,
            5,
            None,
            "orders",
            None,
            None,
            trace,
            None,
        )
        for at, trace in [
            (midnight - 10, "a" * 32),
            (midnight + 10, "b" * 32),
            (midnight + 20, None),
        ]
    ]
    with any_engine.begin() as conn:
        partitions.take_writer_lock(conn)
        assert gateway_requests.write(conn, rows) == 3
    with any_engine.connect() as conn:
        chunks = conn.execute(
            text("SELECT start_ns, end_ns, request_count FROM gateway_request_chunks ORDER BY 1")
        ).all()
        assert chunks == [(midnight - 10, midnight - 10, 1), (midnight + 10, midnight + 20, 2)]
        assert partitions.days(conn, "gateway_request_chunks") == [FIRST_DAY, FIRST_DAY + 1]
        assert partitions.days(conn, "gateway_traces") == [FIRST_DAY, FIRST_DAY + 1]
        window = list(gateway_requests.in_window(conn, midnight - 100, midnight + 100))
    assert [(r.start_ns, r.trace_id, r.consumer) for r in window] == [
        (midnight - 10, "a" * 32, None),
        (midnight + 10, "b" * 32, None),
        (midnight + 20, None, None),
    ]


def test_retention_removes_whole_days_alike_on_sqlite_and_postgresql(
    any_engine, registry, tmp_path
):
    ingest(any_engine, [_three_days(tmp_path)], registry)
    edges_before = edges_of(any_engine)
    # Two hours into the third day, keeping a day: the first day ends before the cut-off.
    now_ns = (FIRST_DAY + 2) * partitions.NS_PER_DAY + 2 * 3_600_000_000_000 + 86_400 * 10**9
    horizons = retention.Horizons(raw_s=2 * 86_400 - 1)
    with any_engine.begin() as conn:
        dry = retention.apply(conn, horizons, now_ns, dry_run=True)
    assert next((d.table, d.days, d.rows) for d in dry.raw) == ("span_chunks", [FIRST_DAY], 1)
    assert len(stored_spans(any_engine)) == 6  # a dry run removes nothing
    with any_engine.begin() as conn:
        done = retention.apply(conn, horizons, now_ns)
    assert done.as_json()["raw"][0] == {
        "table": "span_chunks",
        "days": [partitions.day_text(FIRST_DAY)],
        "rows": 1,
    }
    assert done.raw_from == partitions.day_text(FIRST_DAY + 1)
    assert sorted({s.trace_id for s in stored_spans(any_engine)}) == [f"{2:032x}", f"{3:032x}"]
    assert edges_of(any_engine) == edges_before  # the rollups outlive the raw rows
    with any_engine.begin() as conn:
        again = retention.apply(conn, horizons, now_ns)
        assert partitions.days(conn, "span_chunks") == [FIRST_DAY + 1, FIRST_DAY + 2]
    assert sum(d.rows for d in again.raw) == 0


def test_retention_of_the_minute_tier_keeps_the_hour_blocks(any_engine, registry, tmp_path):
    """Minutes and 10-minute blocks of the first day go; its hour and day blocks stay, until the
    hours' horizon takes them too."""
    ingest(any_engine, [_three_days(tmp_path)], registry)
    now_ns = (FIRST_DAY + 3) * partitions.NS_PER_DAY
    first_day_minutes = (FIRST_DAY * 1440, (FIRST_DAY + 1) * 1440)

    def counted() -> dict[str, int]:
        with any_engine.connect() as conn:
            minutes = conn.execute(
                text("SELECT count(*) FROM edge_rollups WHERE minute >= :a AND minute < :b"),
                dict(zip("ab", first_day_minutes, strict=True)),
            ).scalar_one()
            blocks = dict(
                conn.execute(
                    text(
                        "SELECT block_minutes, count(*) FROM edge_rollup_blocks"
                        " WHERE minute >= :a AND minute < :b GROUP BY block_minutes"
                    ),
                    dict(zip("ab", first_day_minutes, strict=True)),
                ).all()
            )
        return {"minutes": minutes, **{f"b{k}": v for k, v in blocks.items()}}

    def totals(since_day: int, until_day: int) -> list[tuple]:
        window = queries.Window(since_day * 1440, until_day * 1440)
        with any_engine.connect() as conn:
            return [
                (e.client, e.server, e.count, e.errors) for e in queries.edge_totals(conn, window)
            ]

    before = counted()
    assert before["minutes"] and before["b10"] and before["b60"] and before["b1440"]
    whole_days = totals(FIRST_DAY, FIRST_DAY + 3)
    assert sum(count for _, _, count, _ in whole_days) == 3  # a call a day
    with any_engine.begin() as conn:
        report = retention.apply(conn, retention.Horizons(minutes_s=2 * 86_400), now_ns)
    assert report.minute_cells == before["minutes"] and report.ten_minute_blocks == before["b10"]
    assert counted() == {"minutes": 0, "b60": before["b60"], "b1440": before["b1440"]}
    # A window of whole days before the horizon is still read whole, from the day blocks, and
    # an open window still begins with the first day's traffic (its first hour).
    assert totals(FIRST_DAY, FIRST_DAY + 3) == whole_days
    with any_engine.connect() as conn:
        first, last = queries.data_range(conn)
    first_call = (BASE_NS + 3_600_000_000_000) // 60_000_000_000
    assert first == first_call // 60 * 60  # the first call's hour
    assert last == first_call + 2 * 1440  # the last call's minute
    with any_engine.begin() as conn:
        retention.apply(conn, retention.Horizons(hours_s=2 * 86_400), now_ns)
    assert counted() == {"minutes": 0}


def test_clew_retention_reports_what_it_removes(engine, registry, tmp_path):
    ingest(engine, [_three_days(tmp_path)], registry)
    db = str(engine.url.database)
    dry = CliRunner().invoke(
        pull_cli.retention_command, ["--raw", "1d", "--dry-run", "--db", db, "--json"]
    )
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["raw"][0]["rows"] == 3  # the sample days are long past: all of them
    done = CliRunner().invoke(pull_cli.retention_command, ["--raw", "1d", "--db", db])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("retention: removed 3 raw rows over 3 days")
    assert stored_spans(engine) == []
    refused = CliRunner().invoke(pull_cli.retention_command, ["--db", db])
    assert refused.exit_code == 2 and "at least one of --raw" in refused.stderr
