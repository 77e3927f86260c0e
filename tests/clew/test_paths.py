"""Failing integration paths: where a failure began, the way to it, and the same counts whatever
order the spans arrive in."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from clew import metrics
from clew.pipeline import ingest, rollups
from clew.pipeline.paths import trace_paths
from clew.records import Span
from clew.store import queries
from tests import otlp
from tests.clew.test_rollups import clean_pass, ingest_shuffled, landscape

SERVER, CLIENT, INTERNAL = 2, 3, 1

PATH_COLUMNS = (
    "minute, path_id, entry_service, entry_endpoint, path, failing_client, failing_server, count,"
    " first_seen_ns, last_seen_ns, exemplar_trace_id, exemplar_span_id, error"
)


def path_table(engine) -> set[tuple]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(text(f"SELECT {PATH_COLUMNS} FROM failing_paths"))}


def row(span_id: str, parent: str | None, service: str, kind: int, **fields) -> tuple:
    """A span row of trace ``t`` with the fields a path reads."""
    values = dict.fromkeys(Span._fields)
    values.update(
        trace_id="t",
        span_id=span_id,
        parent_span_id=parent,
        service=service,
        name=fields.pop("name", f"{service} op"),
        kind=kind,
        start_ns=fields.pop("start_ns", 0),
        duration_ns=10,
        status=2 if fields.pop("error", False) else 0,
    )
    values.update(fields)
    return tuple(Span(**values))


def paths_of(rows: list[tuple]) -> set[tuple]:
    by_id = {(r[0], r[1]): r for r in rows}
    children: dict = {}
    for r in rows:
        if r[2] is not None:
            children.setdefault((r[0], r[2]), []).append(r)
    return {
        (entry, nodes, edge, failing[1], error)
        for (_, entry, nodes, edge), (failing, _, error) in trace_paths(by_id, children).items()
    }


def test_the_failure_begins_at_the_deepest_erroring_span_and_callers_echoing_it_do_not_count():
    rows = [
        row("1", None, "shop", SERVER, name="GET /cart", http_status=502),
        row("2", "1", "shop", CLIENT, error=True),
        row("3", "2", "orders", SERVER, error=True, status_message="pool exhausted"),
        row("4", "3", "orders", INTERNAL, name="validate"),
    ]
    assert paths_of(rows) == {
        (("shop", "GET /cart"), ("shop", "orders"), ("shop", "orders"), "3", "pool exhausted")
    }


def test_a_failing_call_that_nothing_answered_ends_at_the_peer_it_called():
    rows = [
        row("1", None, "orders", SERVER, http_method="POST", http_route="/orders"),
        row("2", "1", "orders", CLIENT, error=True, db_system="postgresql", server_address="db"),
    ]
    assert paths_of(rows) == {
        (("orders", "POST /orders"), ("orders", "db"), ("orders", "db"), "2", "status ERROR")
    }


def test_a_failure_in_the_entry_service_itself_fails_the_edge_from_its_caller():
    rows = [
        row("1", None, "shop", SERVER, name="GET /", http_status=500),
        row("2", "1", "shop", CLIENT),
        row("3", "2", "orders", SERVER),
    ]
    assert paths_of(rows) == {(("shop", "GET /"), ("shop",), ("client", "shop"), "1", "HTTP 500")}


def test_two_failures_along_one_path_count_once_and_different_paths_count_apart():
    rows = [
        row("1", None, "shop", SERVER, name="GET /"),
        row("2", "1", "shop", CLIENT),
        row("3", "2", "orders", SERVER, error=True, start_ns=5),
        row("4", "1", "shop", CLIENT),
        row("5", "4", "orders", SERVER, error=True, start_ns=3),
        row("6", "1", "shop", CLIENT, error=True, peer_service="tax-api"),
    ]
    assert paths_of(rows) == {
        (("shop", "GET /"), ("shop", "orders"), ("shop", "orders"), "5", "status ERROR"),
        (("shop", "GET /"), ("shop", "tax-api"), ("shop", "tax-api"), "6", "status ERROR"),
    }


def test_a_trace_whose_top_is_missing_starts_at_its_highest_known_span_and_loops_end():
    rows = [
        row("2", "gone", "hub", CLIENT, name="POST"),
        row("3", "2", "stock", SERVER, error=True, parent_span_id="2"),
    ]
    assert paths_of(rows) == {
        (("hub", "POST"), ("hub", "stock"), ("hub", "stock"), "3", "status ERROR")
    }
    looped = [row("a", "b", "x", SERVER, error=True), row("b", "a", "y", CLIENT)]
    assert len(paths_of(looped)) == 1  # a parent loop ends where it closes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spans_in_any_order_and_batching_give_the_paths_of_one_clean_pass(
    engine, registry, tmp_path: Path, seed: int
):
    traces = landscape(range(1, 13), spread_ms=25_000)
    ingest_shuffled(engine, registry, tmp_path, traces, seed)
    late = path_table(engine)
    want = path_table(clean_pass(tmp_path / "clean", traces, registry))
    # traces 3, 6, 9 and 12 fail in orders' server span
    assert sum(r[7] for r in want) == 4
    assert {(r[2], r[3], r[4], r[5], r[6]) for r in want} == {
        ("shop", "GET /cart", '["shop","orders"]', "shop", "orders")
    }
    assert late == want
    rollups.rebuild(engine)
    assert path_table(engine) == want


def test_failing_paths_over_a_window_sum_minutes_and_keep_the_latest_exemplar(
    engine, registry, tmp_path
):
    traces = landscape(range(1, 13), spread_ms=25_000)
    ingest(engine, [otlp.write_lines(tmp_path / "all.jsonl", traces)], registry)
    with engine.connect() as conn:
        found = metrics.failing_paths(conn, queries.Window())
        assert len(found) == 1
        (only,) = found
        assert only["count"] == 4 and only["path"] == ["shop", "orders"]
        assert only["failing_edge"] == {"client": "shop", "server": "orders"}
        assert only["entry"] == {"service": "shop", "endpoint": "GET /cart"}
        assert only["exemplar"] == {"trace_id": f"{12:032x}", "span_id": f"{3:016x}"}
        assert only["first_seen_ns"] == otlp.BASE_NS + (3 * 25_000 + 2) * 1_000_000
        assert only["last_seen_ns"] == otlp.BASE_NS + (12 * 25_000 + 2) * 1_000_000
        # a window holding only the first failing minute counts that trace alone
        minute = only["first_seen_ns"] // 60_000_000_000
        first = metrics.failing_paths(conn, queries.Window(minute, minute + 1))
        assert [p["count"] for p in first] == [1]
        assert first[0]["exemplar"]["trace_id"] == f"{3:032x}"
        assert metrics.failing_paths(conn, queries.Window(0, 1)) == []


def test_a_failing_entry_blames_its_named_caller_when_one_is_known():
    rows = [row("1", None, "shop", SERVER, name="GET /", http_status=500)]
    by_id = {(r[0], r[1]): r for r in rows}
    named = trace_paths(by_id, {}, {("t", "1"): ("edge-gw", "gateway")})
    assert [edge for (_, _, _, edge) in named] == [("edge-gw", "shop")]
    assert [edge for (_, _, _, edge) in trace_paths(by_id, {})] == [("client", "shop")]
