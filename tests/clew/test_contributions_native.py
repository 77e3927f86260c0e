"""The compiled ``Contributions.add_by_id`` (``clew/pipeline/_contributions.c``) gives exactly the
Python code's cells, nodes, endpoints and failing paths, dict orders included, or hands the
call back to it with nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.pipeline import rollups
from clew.pipeline.paths import PathCell
from clew.records import Span, SpanKind, StatusCode
from clew.store import histogram
from clew.store.cells import Cell
from collectors.otlp_json import fast_records
from tests.conftest import examples, require_built

BENCH = Path(__file__).resolve().parents[2] / "bench"
MINUTE = 60_000_000_000
INT64_MAX = 2**63 - 1


def native_module() -> Any:
    """The compiled module, configured; the test is skipped without it, and failed in CI."""
    module = rollups._native if rollups._native is not None else rollups.load_native()
    return require_built(module, "clew.pipeline._contributions")


@pytest.fixture(autouse=True, scope="module")
def _compiled_module():
    """Every test here needs the compiled module (checked once, before hypothesis runs)."""
    native_module()


class Recording:
    """The compiled module, its answers kept: the tests check that it did the calls it was given
    and did not hand them all back to the Python code they are compared with."""

    def __init__(self, module: Any):
        self.module = module
        self.answers: list[bool] = []
        self.gateway_answers: list[bool] = []

    def add_by_id(self, *args: Any) -> bool:
        answer = self.module.add_by_id(*args)
        self.answers.append(answer)
        return answer

    def add_gateway(self, *args: Any) -> bool:
        answer = self.module.add_gateway(*args)
        self.gateway_answers.append(answer)
        return answer


@contextmanager
def compiled(module: Any | None) -> Iterator[None]:
    """``Contributions`` with ``module`` as its compiled add_by_id (None: the Python code)."""
    kept = rollups._native
    rollups._native = module
    try:
        yield
    finally:
        rollups._native = kept


def snapshot(contributions: rollups.Contributions) -> tuple:
    """Everything a Contributions holds, in its dicts' orders."""
    cells = [
        (
            key,
            [getattr(cell, name) for name in Cell.__slots__],
            list(cell.buckets.items()),
            list(cell.lag_buckets.items()),
        )
        for key, cell in contributions.cells.items()
    ]
    paths = [
        (key, [getattr(cell, name) for name in PathCell.__slots__])
        for key, cell in contributions.paths.cells.items()
    ]
    endpoints = [(key, list(seen)) for key, seen in contributions.endpoints.items()]
    return cells, list(contributions.nodes.items()), endpoints, paths


def run_both(
    steps: Callable[[rollups.Contributions], None], root_callers: dict | None = None
) -> tuple[tuple, tuple, list[bool]]:
    """``steps`` on a Contributions by the Python code and on one by the compiled module: both
    snapshots, and the compiled module's answers."""
    python = rollups.Contributions(dict(root_callers or {}))
    with compiled(None):
        steps(python)
    native = rollups.Contributions(dict(root_callers or {}))
    recording = Recording(native_module())
    with compiled(recording):
        steps(native)
    return snapshot(python), snapshot(native), recording.answers


def assert_same(
    steps: Callable[[rollups.Contributions], None], root_callers: dict | None = None
) -> list[bool]:
    python, native, answers = run_both(steps, root_callers)
    assert native == python
    return answers


def by_id_of(rows: list) -> dict:
    by_id: dict = {}
    for row in rows:
        by_id.setdefault((row[0], row[1]), row)
    return by_id


def span(trace: str, span_id: str, parent: str | None, service: str, kind: int, **fields) -> Span:
    values: dict[str, Any] = dict.fromkeys(Span._fields)
    values.update(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        service=service,
        name=f"{service} op",
        kind=kind,
        start_ns=0,
        duration_ns=1_000,
        status=0,
    )
    values.update(fields)
    return Span(**values)


# ---- generated traces ----

TRACES = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736", "t3")
ADDRESSES = (None, "", "kafka", "orders", "db.local", "tax-api", "shop")
#: The choices of each column in Span order (None where a column is set apart or never read).
POOLS = (
    (None,),  # trace id
    (None,),  # span id
    (None,),  # parent
    ("shop", "orders", "billing", ""),
    ("GET /cart", "op", ""),
    (0, 1, 2, 3, 4, 5, 9, SpanKind.CLIENT, SpanKind.SERVER),
    (None,),  # start
    (None,),  # duration
    (0, 1, 2, StatusCode.ERROR),
    (None, "", "boom"),
    (None, "", "GET", "POST"),
    (None, "", "/cart", "/orders/{id}"),
    (None, 0, 200, 404, 499, 500, 503),
    (None,),  # url path
    ADDRESSES,  # server address
    ADDRESSES,  # peer service
    (None, "", "postgresql"),
    (None, "", "kafka"),
    (None, "", "orders"),
    (None, "", "Cart"),
    (None, "", "Get"),
    (None,),  # other attributes
)
ROW_TYPES = (Span._make, tuple, list)
STARTS = st.one_of(
    st.sampled_from(
        [base + d for base in (0, MINUTE, 2 * MINUTE, -MINUTE) for d in (-3, -1, 0, 1, 3)]
    ),
    st.integers(-(2**61), 2**61),
)
DURATIONS = st.one_of(
    st.sampled_from((0, -5, 1, 2, 999, 10**9, 2**53 + 1, 2**61)),
    st.integers(-(10**12), 10**12),
)


@st.composite
def trace_rows(draw: st.DrawFn, trace: str) -> list:
    """Spans of one trace: parents within it, missing, self-referencing or in cycles; every
    column the rollups read drawn from small pools, so that pairs, misses and ties occur."""
    numbers = draw(st.lists(st.integers(0, 40), min_size=1, max_size=7, unique=True))
    # The pools are picked from by a seeded Random: uniform and independent choices, where
    # Hypothesis' own bytes often repeat one value (and tie the columns together), and far
    # quicker to make than a draw per column.
    rng = draw(st.randoms(use_true_random=True))
    rows = []
    for number in numbers:
        values: list[Any] = [rng.choice(pool) for pool in POOLS]
        # Ids made apart: equal ids are different str objects, as parsed ones are.
        values[rollups.TRACE], values[rollups.SPAN] = trace, f"s{number}"
        parent = rng.random()  # mostly a span of the trace (itself at times), else none
        if parent < 0.8:
            values[rollups.PARENT] = f"s{rng.choice(numbers)}"
        elif parent < 0.9:
            values[rollups.PARENT] = "gone"
        values[rollups.START], values[rollups.DURATION] = draw(STARTS), draw(DURATIONS)
        rows.append(rng.choice(ROW_TYPES)(values))
    return rows


@st.composite
def landscapes(draw: st.DrawFn) -> tuple[list, dict]:
    """Rows of one to three traces, in a drawn order, and root callers naming some spans."""
    rows = [row for trace in TRACES[: draw(st.integers(1, 3))] for row in draw(trace_rows(trace))]
    rows = draw(st.permutations(rows))
    named = draw(st.lists(st.sampled_from(rows), max_size=3)) if rows else []
    callers = draw(st.sampled_from((("edge-gw", "gateway"), ("shop", "service"), None)))
    return rows, {(row[0], row[1]): callers for row in named}


EXAMPLES = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@EXAMPLES
@given(landscapes(), st.sampled_from((1, -1, 2, 0)))
def test_one_call_gives_the_python_results(landscape: tuple[list, dict], sign: int):
    rows, root_callers = landscape
    by_id = by_id_of(rows)
    answers = assert_same(lambda c: c.add_by_id(by_id, sign), root_callers)
    assert answers == [True]


@EXAMPLES
@given(landscapes(), st.data())
def test_corrections_give_the_python_results(landscape: tuple[list, dict], data: st.DataObject):
    """A batch's traces continuing stored spans: new added, then ``correct(old, new)``, onto
    cells that already hold sums, maxima and buckets."""
    rows, root_callers = landscape
    stored = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    old = [row for row, kept in zip(rows, stored, strict=True) if kept]
    new = [row for row, kept in zip(rows, stored, strict=True) if not kept]

    def steps(c: rollups.Contributions) -> None:
        c.add(old)
        c.add(new)
        c.correct(old, new)

    answers = assert_same(steps, root_callers)
    assert all(answers) and len(answers) == 5


def test_the_benchmark_landscape_gives_the_python_results(tmp_path: Path, monkeypatch):
    """Traces of the ingest benchmark's generator, read as ingest reads them."""
    monkeypatch.syspath_prepend(str(BENCH))
    import otlp_landscape

    path = tmp_path / "traces.otlp.jsonl"
    otlp_landscape.write_file(path, 5000, 7, otlp_landscape.BASE_NS, 10 * MINUTE)
    by_id = by_id_of(
        [
            record
            for line in path.read_bytes().splitlines()
            for record in fast_records(line) or ()
            if type(record) is Span
        ]
    )
    assert len(by_id) == 5000
    assert any(row[rollups.STATUS] == rollups._ERROR for row in by_id.values())
    half = dict(list(by_id.items())[: len(by_id) // 2])
    answers = assert_same(lambda c: (c.add_by_id(by_id), c.add_by_id(half, -1)))
    assert answers == [True, True]


def test_histogram_buckets_are_the_python_ones_at_every_edge():
    """Durations on each side of every bucket edge, powers of two and the largest int64: one
    root span each, so each lands in the bucket ``histogram.bucket_of`` gives it."""
    durations = {0, 1, 2, INT64_MAX, INT64_MAX - 1, 2**53, 2**53 + 1}
    durations |= {2**k + d for k in range(1, 63) for d in (-1, 0, 1)}
    for index in range(1, 1200):
        edge = histogram.GAMMA**index
        if edge < INT64_MAX:
            durations |= {int(edge) - 1, int(edge), int(edge) + 1}
    rows = [
        span("t", f"s{i}", None, "shop", 2, duration_ns=d, start_ns=i)
        for i, d in enumerate(sorted(durations))
    ]
    by_id = by_id_of(rows)
    assert assert_same(lambda c: c.add_by_id(by_id)) == [True]


def test_sums_beyond_64_bits_are_exact():
    rows = [
        span("t", f"s{i}", None, "shop", 2, duration_ns=INT64_MAX, start_ns=0) for i in range(3)
    ]
    by_id = by_id_of(rows)
    answers = assert_same(lambda c: (c.add_by_id(by_id), c.add_by_id(by_id, -1)))
    assert answers == [True, True]
    c = rollups.Contributions()
    c.add_by_id(by_id)
    (cell,) = c.cells.values()
    assert cell.duration_sum == 3 * INT64_MAX


def test_queue_lag_and_topics_match():
    """A producer without messaging attributes and its consumer that names the topic: the
    producer's publish is drawn from the consumer's attributes, with the lag, and a producer
    that names the topic under a consumer that does not."""
    rows = [
        span("t", "p1", None, "orders", 4, start_ns=10, duration_ns=5),
        span(
            "t", "c1", "p1", "billing", 5, start_ns=40, messaging_system="kafka",
            messaging_destination="orders",
        ),
        span(
            "u", "p1", None, "orders", 4, start_ns=10, duration_ns=50,
            messaging_system="kafka", messaging_destination="orders", peer_service="broker-1",
        ),
        span("u", "c1", "p1", "billing", 5, start_ns=40, http_status=503),
    ]  # fmt: skip
    by_id = by_id_of(rows)
    assert assert_same(lambda c: c.add_by_id(by_id)) == [True]
    c = rollups.Contributions()
    c.add_by_id(by_id)
    assert any(cell.lag_count for cell in c.cells.values())


def test_many_cells_nodes_and_endpoints_in_one_call_match():
    """More cells, buckets, nodes, endpoints and endpoint names than the call's tables are
    first sized for."""
    rows = []
    for i in range(300):
        if i % 2:  # a root without a kind that names its peer: two cells
            rows.append(span("t", f"s{i}", None, "shop", 0, peer_service=f"peer-{i}"))
        else:
            rows.append(span("t", f"s{i}", None, "shop", 2, http_route=f"/r{i}", http_method="GET"))
        rows[-1] = rows[-1]._replace(start_ns=i * MINUTE, duration_ns=i * 1_000_003)
    by_id = by_id_of(rows)
    assert assert_same(lambda c: c.add_by_id(by_id)) == [True]


def test_later_calls_add_to_what_earlier_ones_left():
    """Cells, nodes and endpoints already there: sums added, a longer maximum kept, endpoints
    widened both ways, and buckets taken back to 0 kept."""

    def calls(start: int, duration: int, trace: str) -> dict:
        rows = [
            span(trace, "s1", None, "shop", 2, http_route="/cart", http_method="GET"),
            span(trace, "s2", "s1", "shop", 3, peer_service="tax-api", http_status=404),
            span(trace, "s3", "s1", "shop", 5, messaging_destination="orders"),
        ]
        return by_id_of([r._replace(start_ns=start, duration_ns=duration) for r in rows])

    first, earlier, later = calls(10, 500, "a"), calls(5, 90_000, "b"), calls(20, 7, "c")
    answers = assert_same(
        lambda c: (
            c.add_by_id(first),
            c.add_by_id(earlier),
            c.add_by_id(later),
            c.add_by_id(earlier, -1),
        )
    )
    assert answers == [True] * 4


# ---- what it hands back ----


def declined(by_id: Any, sign: Any = 1, root_callers: Any = None) -> None:
    """The compiled module hands the call back with nothing changed, and ``add_by_id`` then
    gives the Python results."""
    c = rollups.Contributions(root_callers if root_callers is not None else {})
    module = native_module()
    args = (c.root_callers, c.cells, c.nodes, c.endpoints, c.paths.add_chains)
    assert module.add_by_id(by_id, sign, *args) is False
    assert not c
    answers = assert_same(lambda c: c.add_by_id(by_id, sign), root_callers)
    assert answers == [False]


def good_rows() -> list[list]:
    return [
        list(span("t", "s1", None, "shop", 2, status=2, http_route="/cart", http_method="GET")),
        list(span("t", "s2", "s1", "shop", 3, server_address="db", db_system="pg")),
    ]


def test_it_takes_the_good_rows_it_is_compared_on_below():
    assert assert_same(lambda c: c.add_by_id(by_id_of(good_rows()))) == [True]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (rollups.DURATION, 2**70),
        (rollups.START, -(2**64)),
        (rollups.HTTP_STATUS, 2**63),
        (rollups.HTTP_STATUS, True),
        (rollups.HTTP_STATUS, 500.0),
        (rollups.KIND, "3"),
        (rollups.KIND, 3.0),
        (rollups.KIND, None),
        (rollups.KIND, 2**64),
        (rollups.STATUS, None),
        (rollups.METHOD, 5),
        (rollups.SERVICE, None),
        (rollups.SERVICE, type("Name", (str,), {})("shop")),
        (rollups.PARENT, b"s1"),
    ],
)
def test_a_column_it_does_not_read_exactly_hands_the_call_back(column: int, value: Any):
    rows = good_rows()
    rows[1][column] = value
    declined(by_id_of(rows))


def test_rows_of_another_shape_hand_the_call_back():
    short = good_rows()
    short[1] = short[1][:-1]
    declined(by_id_of(short))
    as_tuple = [tuple(row) for row in good_rows()]
    declined({("t", "s1"): as_tuple[0], ("t", "other"): as_tuple[1]})  # key not its ids
    declined({("t", "s1", "x"): as_tuple[0]})
    declined(MappingProxyType(by_id_of(as_tuple)))


def test_a_sign_beyond_32_bits_hands_the_call_back():
    declined(by_id_of(good_rows()), sign=2**40)


def test_a_lag_beyond_64_bits_hands_the_call_back():
    rows = [
        span("t", "p", None, "orders", 4, start_ns=-(2**63), duration_ns=-1),
        span("t", "c", "p", "billing", 5, start_ns=INT64_MAX, messaging_system="kafka"),
    ]
    declined(by_id_of(rows))


def test_a_root_caller_of_another_shape_hands_the_call_back():
    declined(by_id_of(good_rows()), root_callers={("t", "s1"): ["edge-gw", "gateway"]})
    declined(by_id_of(good_rows()), root_callers={("t", "s1"): (5, "gateway")})


def test_an_error_in_the_failing_paths_changes_nothing_as_in_python():
    """orjson cannot write a lone surrogate, so naming the path fails: the Python code fails
    before it pairs anything, and so does the compiled one."""
    rows = [span("t", "s1", None, "\ud800", 2, status=2)]
    for module in (None, Recording(native_module())):
        c = rollups.Contributions()
        with compiled(module), pytest.raises(orjson.JSONEncodeError):
            c.add_by_id(by_id_of(rows))
        assert not c


def test_an_empty_call_changes_nothing():
    c = rollups.Contributions()
    assert native_module().add_by_id({}, 1, {}, c.cells, c.nodes, c.endpoints, None) is True
    assert not c


@pytest.mark.parametrize(("setting", "native"), [("1", False), ("yes", False), ("0", True)])
def test_clew_no_native_makes_rollups_pair_in_python(setting: str, native: bool):
    code = "from clew.pipeline import rollups; print(rollups._native is not None)"
    env = {**os.environ, "CLEW_NO_NATIVE": setting}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(native)
