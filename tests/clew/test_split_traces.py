"""Where a trace is split across writes (a batch's end, a run resumed from its checkpoint) changes
nothing stored: the edge cells, their blocks, the failing paths, endpoints and nodes are those of
one write of whole traces, maxima and first failures included, on SQLite and on PostgreSQL
(``bench/crash_safety.py`` found a failing path's first failure kept from a trace's first part)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from clew import store
from clew.pipeline import ingest
from clew.store.models import metadata
from collectors import load_registry
from tests import crash_trials, otlp
from tests.clew.test_rollups import CLIENT, SERVER, rollup_table

MS = 1_000_000
INTERNAL = 1
#: The sample landscape's traces: some 1,400 spans, a few dozen of them failing.
TRACES = 150
#: Spans per batch when traces are cut often.
SMALL_BATCH = 40
#: The tables compared, as ``tests.crash_trials`` compares a crashed store with a clean one.
DERIVED = ("edge_rollups", "edge_rollup_blocks", "failing_paths", "endpoints", "services")


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Contracts, the catalog, the gateways' logs and the traces in one file (the last path)."""
    folder = tmp_path_factory.mktemp("split")
    return crash_trials.make_input(folder, traces=TRACES, pieces=1)


def _derived(engine: Engine) -> dict:
    snapshot = crash_trials.snapshot(engine)
    engine.dispose()
    return {name: snapshot[name] for name in DERIVED}


def _stored_three_ways(
    landscape: list[Path], folder: Path, fresh: Callable[[str], Engine]
) -> list[dict]:
    """The derived tables after ingesting ``landscape`` in one batch a file, in batches of
    ``SMALL_BATCH`` spans, and with the traces file read by two runs (the first seeing half its
    lines, the second resuming from its checkpoint once the rest is written), each into the
    store ``fresh(name)`` gives."""
    registry = load_registry()
    *others, traces = landscape
    found = []
    for batch_spans in (1_000_000, SMALL_BATCH):
        engine = fresh(f"batches-{batch_spans}")
        ingest(engine, landscape, registry, batch_spans=batch_spans, worker=False)
        found.append(_derived(engine))
    engine = fresh("resumed")
    lines = traces.read_bytes().splitlines(keepends=True)
    growing = folder / traces.name
    growing.write_bytes(b"".join(lines[: len(lines) // 2]))
    ingest(engine, [*others, growing], registry, worker=False)
    with growing.open("ab") as handle:
        handle.write(b"".join(lines[len(lines) // 2 :]))
    assert ingest(engine, [growing], registry, worker=False).inserted > 0
    found.append(_derived(engine))
    return found


def _assert_alike(found: list[dict]) -> None:
    whole, *split = found
    assert whole["failing_paths"] and whole["edge_rollup_blocks"]
    for other in split:
        for name in DERIVED:
            lost, extra = whole[name] - other[name], other[name] - whole[name]
            assert not lost and not extra, (name, sorted(lost)[:3], sorted(extra)[:3])


def test_traces_split_across_writes_store_what_whole_traces_store_on_sqlite(
    landscape: list[Path], tmp_path: Path
):
    def fresh(name: str) -> Engine:
        engine = store.open_engine(str(tmp_path / f"{name}.db"))
        store.upgrade(engine)
        return engine

    _assert_alike(_stored_three_ways(landscape, tmp_path, fresh))


@pytest.mark.postgres
def test_traces_split_across_writes_store_what_whole_traces_store_on_postgresql(
    landscape: list[Path], tmp_path: Path, postgres_url: str
):
    engine = store.open_engine(postgres_url)
    store.upgrade(engine)

    def fresh(_: str) -> Engine:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        return engine

    try:
        _assert_alike(_stored_three_ways(landscape, tmp_path, fresh))
    finally:
        fresh("emptied for the next test")
        engine.dispose()


def _first_parts_and_the_rest() -> tuple[list[dict], list[dict]]:
    """Three traces of shop, each a first part and what completes it: shop's slow call to
    orders (500 ms, unanswered at first, answered later), a fast one never answered (100 ms), and
    a failing request whose failure turns out to begin in a child (shop's own, so the path is the
    same) that starts 3 ms later."""
    call = {"server.address": "orders"}
    first = {
        "shop": [
            otlp.span(1, 1, kind=SERVER, name="GET /cart", duration_ms=600),
            otlp.span(1, 2, 1, kind=CLIENT, name="GET", start_ms=1, duration_ms=500, **call),
            otlp.span(2, 1, kind=SERVER, name="GET /cart", start_ms=2, duration_ms=150),
            otlp.span(2, 2, 1, kind=CLIENT, name="GET", start_ms=3, duration_ms=100, **call),
            otlp.span(3, 1, kind=SERVER, name="POST /pay", start_ms=4, duration_ms=20, error=True),
        ]
    }
    rest = {
        "orders": [otlp.span(1, 3, 2, kind=SERVER, name="GET /o", start_ms=2, duration_ms=490)],
        "shop": [
            otlp.span(3, 2, 1, kind=INTERNAL, name="charge", start_ms=7, duration_ms=5, error=True)
        ],
    }
    return [otlp.request(first)], [otlp.request(rest)]


def test_a_maximum_and_a_first_failure_a_trace_s_first_part_held_go_with_it(
    engine: Engine, registry, tmp_path: Path
):
    first, rest = _first_parts_and_the_rest()
    ingest(engine, [otlp.write_lines(tmp_path / "first.jsonl", first)], registry)
    ingest(engine, [otlp.write_lines(tmp_path / "rest.jsonl", rest)], registry)
    whole = store.open_engine(str(tmp_path / "whole.db"))
    store.upgrade(whole)
    ingest(whole, [otlp.write_lines(tmp_path / "whole.jsonl", first + rest)], registry)
    cells = rollup_table(engine)
    unanswered = [
        cell for key, cell in cells.items() if key[2] == "orders" and key[3] == "virtual_node"
    ]
    assert [(cell["sums"][0], cell["max"]) for cell in unanswered] == [(1, 100 * MS)]
    assert cells == rollup_table(whole)
    assert _derived(engine) == _derived(whole)
    with engine.connect() as conn:
        (first_seen,) = conn.execute(text("SELECT first_seen_ns FROM failing_paths")).one()
    assert first_seen == otlp.BASE_NS + 7 * MS
