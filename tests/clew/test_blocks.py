"""Rollup blocks: a window is covered once by whole blocks and ragged minutes, every block is the
sum of its minute cells whatever order the spans arrive in, and edge totals read through blocks
equal a merge of every minute."""

from __future__ import annotations

import itertools
import random
import shutil
from pathlib import Path

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from clew import store
from clew.pipeline import ingest, rollups
from clew.store import blocks, histogram, queries
from tests import otlp
from tests.clew.test_rollups import more_traces, single_span_requests

_bounds = st.one_of(st.none(), st.integers(-10_000, 10_000))


@given(_bounds, _bounds)
def test_a_window_is_covered_once_by_aligned_blocks_and_at_most_18_ragged_minutes(since, until):
    parts = blocks.plan(since, until)
    if since is not None and until is not None and since >= until:
        assert parts == []
        return
    assert parts[0][1] == since and parts[-1][2] == until
    for (_, _, end), (_, start, _) in itertools.pairwise(parts):
        assert end == start is not None  # contiguous, left to right
    for length, start, end in parts:
        assert length in (1, *blocks.BLOCK_MINUTES)
        assert start is None or end is None or start < end
        for bound in (start, end):
            assert bound is None or bound % length == 0
    assert sum(e - s for length, s, e in parts if length == 1) <= 18


BLOCK_COLUMNS = (
    "block_minutes, minute, client, server, connection_type, endpoint, source, count, errors,"
    " client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count, lag_sum_ns,"
    " lag_histogram"
)


def block_table(engine) -> dict[tuple, dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {BLOCK_COLUMNS} FROM edge_rollup_blocks")).all()
    return {
        tuple(r[:7]): {
            "sums": tuple(r[7:11]),
            "max": r[11],
            "histogram": histogram.loads(r[12]),
            "lag": (r[13], r[14], histogram.loads(r[15])),
        }
        for r in rows
    }


def blocks_of_minutes(engine) -> dict[tuple, dict]:
    """The blocks as the minute cells add up, each with the largest of its minutes' maxima."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT minute, client, server, connection_type, endpoint, source, count, errors,"
                " client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count,"
                " lag_sum_ns, lag_histogram FROM edge_rollups"
            )
        ).all()
    want: dict[tuple, dict] = {}
    for minute, *key, n, err, cerr, dsum, dmax, hist, lag_n, lag_sum, lag_hist in rows:
        for length in blocks.BLOCK_MINUTES:
            block = want.setdefault(
                (length, minute - minute % length, *key),
                {"sums": (0, 0, 0, 0), "max": 0, "histogram": {}, "lag": (0, 0, {})},
            )
            block["sums"] = tuple(
                a + b for a, b in zip(block["sums"], (n, err, cerr, dsum), strict=True)
            )
            block["max"] = max(block["max"], dmax)
            block["histogram"] = histogram.merge([block["histogram"], histogram.loads(hist)])
            count, total, buckets = block["lag"]
            block["lag"] = (
                count + lag_n,
                total + lag_sum,
                histogram.merge([buckets, histogram.loads(lag_hist)]),
            )
    return want


def assert_blocks_add_up(engine) -> None:
    """Every block holds the sums of its minutes and the largest of their maxima."""
    got, want = block_table(engine), blocks_of_minutes(engine)
    assert got.keys() == want.keys()
    for key, block in want.items():
        assert got[key] == block, key


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_hold_the_sums_of_their_minutes_whatever_order_spans_arrive_in(
    engine, registry, tmp_path: Path, seed: int
):
    shuffled = single_span_requests(more_traces())
    rng = random.Random(seed)
    rng.shuffle(shuffled)
    cut = sorted(rng.sample(range(1, len(shuffled)), 4))
    for part, (start, end) in enumerate(zip([0, *cut], [*cut, len(shuffled)], strict=True)):
        path = otlp.write_lines(tmp_path / f"part{part}.jsonl", shuffled[start:end])
        ingest(engine, [path], registry, batch_spans=rng.randint(1, 6))
    assert block_table(engine)
    assert_blocks_add_up(engine)
    rollups.rebuild(engine)
    assert_blocks_add_up(engine)
    assert {key[0] for key in block_table(engine)} == set(blocks.BLOCK_MINUTES)


def _merged_minutes(conn, window: queries.Window) -> dict[tuple, dict]:
    """Edge totals the plain way: every minute cell of the window merged, per evidence family;
    an edge that both traces and a gateway's log saw is counted by the family that saw more of
    its requests, the gateway's on a tie (as ``queries.one_family`` counts it)."""
    where, params = window.clause()
    rows = conn.execute(
        text(
            "SELECT client, server, connection_type, source, count, errors, client_errors,"
            " duration_sum_ns, duration_max_ns, histogram, minute, lag_count, lag_sum_ns,"
            f" lag_histogram FROM edge_rollups WHERE {where}"
        ),
        params,
    ).all()
    by_family: dict[tuple, dict] = {}
    for c, s, ctype, source, n, err, cerr, dsum, dmax, hist, minute, lag_n, lag_sum, lag_h in rows:
        edge = by_family.setdefault(
            (c, s, ctype, queries.family(source)),
            {"sources": set(), "sums": (0, 0, 0, 0), "max": 0, "histogram": {}, "minutes": []},
        )
        edge["sources"].add(source)
        edge["sums"] = tuple(a + b for a, b in zip(edge["sums"], (n, err, cerr, dsum), strict=True))
        edge["max"] = max(edge["max"], dmax)
        edge["histogram"] = histogram.merge([edge["histogram"], histogram.loads(hist)])
        edge["minutes"].append(minute)
        edge.setdefault("lag", [0, 0, {}])
        edge["lag"][0] += lag_n
        edge["lag"][1] += lag_sum
        edge["lag"][2] = histogram.merge([edge["lag"][2], histogram.loads(lag_h)])
    edges: dict[tuple, dict] = {}
    for (c, s, ctype, _), edge in sorted(by_family.items()):
        seen = edges.get((c, s, ctype))
        if seen is None:
            edges[(c, s, ctype)] = edge
            continue
        gateway, trace = (seen, edge) if "gateway" in seen["sources"] else (edge, seen)
        chosen = gateway if gateway["sums"][0] >= trace["sums"][0] else trace
        chosen["sources"] = gateway["sources"] | trace["sources"]
        if chosen is trace and gateway["lag"][0]:  # the gateway's overhead: only it knows
            chosen["lag"] = gateway["lag"]
        edges[(c, s, ctype)] = chosen
    return edges


def test_edge_totals_read_through_blocks_equal_a_merge_of_every_minute(sample_db):
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        first, last = queries.data_range(conn)
        rng = random.Random(7)
        windows = [queries.Window(), queries.Window(first, None), queries.Window(None, last - 3)]
        for _ in range(12):
            since = rng.randint(first - 30, last)
            windows.append(queries.Window(since, since + rng.choice((1, 9, 15, 61, 200, 1500))))
        for window in windows:
            want = _merged_minutes(conn, window)
            got = {
                (e.client, e.server, e.connection_type): e
                for e in queries.edge_totals(conn, window)
            }
            assert got.keys() == want.keys(), window
            for key, edge in want.items():
                mine = got[key]
                assert mine.sources == edge["sources"], (window, key)
                sums = (mine.count, mine.errors, mine.client_errors, mine.duration_sum_ns)
                assert sums == edge["sums"], (window, key)
                assert mine.histogram == edge["histogram"], (window, key)
                assert mine.duration_max_ns == edge["max"], (window, key)
                lag = [mine.lag_count, mine.lag_sum_ns, mine.lag_histogram]
                assert lag == edge["lag"], (window, key)
    engine.dispose()


def test_the_migration_computes_the_blocks_of_cells_stored_before_it(sample_db, tmp_path):
    path = tmp_path / "copy.db"
    shutil.copy(sample_db, path)
    engine = store.open_engine(str(path))
    kept = block_table(engine)
    assert kept
    command.downgrade(store.alembic_config(engine), "0004")
    store.upgrade(engine)
    assert block_table(engine).keys() == kept.keys()
    assert_blocks_add_up(engine)
    engine.dispose()


@pytest.mark.postgres
def test_blocks_hold_the_sums_of_their_minutes_on_postgresql(pg_engine, registry, tmp_path: Path):
    shuffled = single_span_requests(more_traces())
    random.Random(5).shuffle(shuffled)
    for part in range(3):
        path = otlp.write_lines(tmp_path / f"part{part}.jsonl", shuffled[part::3])
        ingest(pg_engine, [path], registry, batch_spans=4)
    assert_blocks_add_up(pg_engine)
    with pg_engine.connect() as conn:
        read = sum(e.count for e in queries.edge_totals(conn, queries.Window()))  # a day block
        stored = conn.execute(text("SELECT sum(count) FROM edge_rollups")).scalar_one()
    assert read == stored == 12 * 6
