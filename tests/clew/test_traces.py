"""A trace as on-call reads it: waterfall order and depth, the failing span, the critical path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clew import traces
from tests.clew.test_paths import row

SERVER, CLIENT, INTERNAL = 2, 3, 1


def timed(span_id, parent, service, kind, start, duration, **fields):
    values = list(row(span_id, parent, service, kind, start_ns=start, **fields))
    values[7] = duration
    return tuple(values)


def parallel_trace() -> list[tuple]:
    """root 0–100 calls A 10–50 and B 20–90 at once, C 0–5 before them, and D 60–70 inside B's
    time; B's own child E runs 30–80."""
    return [
        timed("r", None, "shop", SERVER, 0, 100, name="GET /"),
        timed("a", "r", "shop", CLIENT, 10, 40),
        timed("b", "r", "shop", CLIENT, 20, 70),
        timed("c", "r", "shop", INTERNAL, 0, 5),
        timed("d", "r", "shop", INTERNAL, 60, 10),
        timed("e", "b", "orders", SERVER, 30, 50, error=True),
    ]


def test_the_critical_path_follows_the_last_finishing_child_backwards():
    # B ends last (90) → on the path, and inside it E; before B started (20) A was running
    # (10–50, clipped to 20) → on the path; before A (10), C (0–5). D ran while B did: off.
    assert traces.critical_path(parallel_trace()) == ["c", "r", "a", "b", "e"]


def test_the_waterfall_puts_children_under_parents_in_start_order():
    order = [(r[1], depth) for r, depth in traces.waterfall(parallel_trace())]
    assert order == [("r", 0), ("c", 1), ("a", 1), ("b", 1), ("e", 2), ("d", 1)]


def test_the_trace_document_marks_the_failing_span_and_the_critical_path():
    doc = traces.trace_document(parallel_trace())
    assert doc["failing_span_id"] == "e" and doc["duration_ns"] == 100
    assert doc["critical_path"] == ["r", "c", "a", "b", "e"]  # waterfall order
    marks = {s["span_id"]: (s["failing"], s["critical"], s["error"]) for s in doc["spans"]}
    assert marks["e"] == (True, True, True)
    assert marks["d"] == (False, False, False)
    assert doc["services"] == ["orders", "shop"]
    assert traces.trace_document([]) is None


def test_orphans_and_parent_loops_keep_every_span():
    rows = [
        timed("x", "y", "a", SERVER, 0, 10),
        timed("y", "x", "b", SERVER, 5, 10),
        timed("z", "missing", "c", SERVER, 2, 10),
    ]
    placed = [r[1] for r, _ in traces.waterfall(rows)]
    assert sorted(placed) == ["x", "y", "z"] and placed[0] == "z"
    assert traces.critical_path(rows) == ["z"]


spans = st.lists(
    st.tuples(
        st.integers(0, 8),  # span id
        st.one_of(st.none(), st.integers(0, 8)),  # parent id
        st.integers(0, 100),  # start
        st.integers(0, 100),  # duration
        st.booleans(),  # error
    ),
    max_size=12,
    unique_by=lambda t: t[0],
)


@given(spans)
def test_any_trace_gives_a_whole_waterfall_and_a_critical_path_inside_it(items):
    rows = [
        timed(str(s), None if p is None else str(p), "svc", SERVER, start, d, error=err)
        for s, p, start, d, err in items
    ]
    placed = [r[1] for r, _ in traces.waterfall(rows)]
    assert sorted(placed) == sorted(r[1] for r in rows)
    path = traces.critical_path(rows)
    assert len(set(path)) == len(path) and set(path) <= set(placed)
    assert bool(path) == bool(rows)
    failing = traces.failing_span(rows)
    assert (failing is None) == (not any(err for *_, err in items))


def test_a_trace_that_is_only_a_parent_loop_still_has_a_critical_path():
    rows = [timed("0", "1", "a", SERVER, 0, 5), timed("1", "0", "b", SERVER, 0, 9)]
    # the longer span leads, and its loop-child ran inside it
    assert traces.critical_path(rows) == ["0", "1"]


def test_a_loop_of_erring_spans_still_names_a_failing_span():
    rows = [
        timed("x", "y", "a", SERVER, 3, 10, error=True),
        timed("y", "x", "b", SERVER, 1, 9, error=True),
    ]
    assert traces.failing_span(rows)[1] == "y"
