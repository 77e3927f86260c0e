"""The hook that names a root span's caller from other evidence (a gateway's log of the request)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from clew.pipeline import ingest, rollups
from tests import otlp
from tests.clew.test_rollups import (
    edges_of,
    kinds_of,
    landscape,
    rollup_table,
    single_span_requests,
)


def gateway_named(conn, candidates: list[tuple]) -> dict:
    """A stand-in for the gateway-log join: even traces came in through the gateway ``edge-gw``."""
    assert conn.execute(text("SELECT 1")).scalar_one() == 1  # called inside the transaction
    return {
        (row[0], row[1]): ("edge-gw", "gateway")
        for row in candidates
        if row[2] is None and int(row[0], 16) % 2 == 0
    }


def test_named_root_callers_replace_the_unknown_client(engine, registry, tmp_path: Path):
    path = otlp.write_lines(tmp_path / "t.jsonl", landscape(range(1, 7)))
    result = ingest(engine, [path], registry, root_callers=gateway_named)
    assert result.inserted == 42
    edges = edges_of(engine)
    assert edges[("edge-gw", "shop", "direct")]["count"] == 3
    assert edges[("client", "shop", "virtual_node")]["count"] == 3
    assert kinds_of(engine)["edge-gw"] == "gateway"


def test_named_root_callers_hold_whatever_order_the_spans_arrive_in(
    engine, registry, tmp_path: Path
):
    # the root spans arrive last, one by one, after their traces' other spans
    singles = single_span_requests(landscape(range(1, 7)))
    roots = [
        r
        for r in singles
        if r["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"] == ""
    ]
    rest = [r for r in singles if r not in roots]
    ingest(
        engine, [otlp.write_lines(tmp_path / "a.jsonl", rest)], registry, root_callers=gateway_named
    )
    ingest(
        engine,
        [otlp.write_lines(tmp_path / "b.jsonl", roots)],
        registry,
        batch_spans=1,
        root_callers=gateway_named,
    )
    late = rollup_table(engine)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    from clew import store

    clean = store.open_engine(str(clean_dir / "c.db"))
    store.upgrade(clean)
    path = otlp.write_lines(clean_dir / "all.jsonl", landscape(range(1, 7)))
    ingest(clean, [path], registry, root_callers=gateway_named)
    assert late == rollup_table(clean)
    assert ("edge-gw", "shop", "direct") in edges_of(engine)
    rollups.rebuild(engine, root_callers=gateway_named)
    assert rollup_table(engine) == rollup_table(clean)
    # without the hook, a rebuild draws every root from the unknown client again
    rollups.rebuild(engine)
    assert ("edge-gw", "shop", "direct") not in edges_of(engine)
    assert edges_of(engine)[("client", "shop", "virtual_node")]["count"] == 6
