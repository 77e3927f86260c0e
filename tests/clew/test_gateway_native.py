"""The compiled ``Contributions.add_gateway`` and ``routes.template_of``
(``clew/pipeline/_contributions.c``, ``_route_template.c``) give exactly the Python code's results,
or hand the call (or the path) back to it."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clew import routes
from clew.pipeline import rollups
from clew.records import GatewayRequest
from collectors import CollectorError, Source, load_registry
from tests.clew.test_contributions_native import Recording, compiled, native_module, snapshot
from tests.clew.test_routes import _SEGMENTS
from tests.conftest import corpus, examples

MINUTE = 60_000_000_000
INT64_MAX = 2**63 - 1


@pytest.fixture(autouse=True, scope="module")
def _compiled_module():
    native_module()


def both_templates(path: str) -> tuple[str | None, str]:
    return native_module().template_of(path), routes.template_of(path)


# Segments of every form the heuristics tell apart, near their borders, in ASCII.
_ASCII_SEGMENTS = st.one_of(
    _SEGMENTS.filter(lambda s: s.isascii()),
    st.sampled_from(
        [
            "API",
            "Api",
            "v1.2",
            "V3",
            "v1beta2",
            "1.2.3",
            "1.",
            "2024-02-30",
            "1999-12-31T23:59",
            "2026-12-06T10:00:00.123Z",
            "2026-12-06T10:00:00+01:00",
            "2026-12-06T10:00+0100",
            "2026-12-06T10:00:0",
            "2026-12-06T10:00:00.",
            "550e8400-e29b-41d4-a716-446655440000",
            "550E8400E29B41D4A716446655440000",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01arz3ndektsv4rrffq69g5fai",
            "SMa0b1c2d3e4f5a6b7c8",
            "ABCDE0123456789abcdef",
            "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "a_b_c_d_12345678",
            "abcdefghi_12345678",
            "cus_abcdefgh",
            "ann@example.org",
            "a@b.c",
            "a@@b.com",
            "x@y.z1",
            "@example.com",
            "AbCdEfGhIjKlMnOp1234",
            "abcdefghijklmnopqrst",
            "report.json",
            "8812.json",
            "v2.pdf",
            "2024.tar.gz",
            "x.toolong",
            "{id}.json",
            "{}",
            "{a{b}",
            "..",
            "e@x.io",
            "\x1c1",
            "1 2",
        ]
    ),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"[0-9A-Za-z._@{}=+-]{1,28}", fullmatch=True),
    st.text(alphabet=string.printable, max_size=14),
)
_ASCII_PATHS = st.lists(_ASCII_SEGMENTS, max_size=8).map(lambda segments: "/".join(segments))


@settings(max_examples=examples(300), deadline=None)
@given(_ASCII_PATHS, st.sampled_from(["", "?q=1", "#top", "?a=b#c", "?"]))
def test_the_compiled_template_of_gives_the_python_template(path: str, query: str):
    compiled_template, python_template = both_templates(path + query)
    if "%" in path + query:
        assert compiled_template is None  # unquote: the Python function's
    else:
        assert compiled_template == python_template


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_SEGMENTS, max_size=6).map("/".join)))
def test_paths_it_cannot_read_exactly_are_handed_back(path: str):
    compiled_template, python_template = both_templates(path)
    if path.isascii() and "%" not in path:
        assert compiled_template == python_template
    else:
        assert compiled_template is None


def test_the_route_examples_give_the_python_templates():
    from tests.clew import test_routes

    examples = [
        case[0]
        for test in vars(test_routes).values()
        for mark in getattr(test, "pytestmark", [])
        if mark.name == "parametrize" and mark.args[0][:2] in (("path", "template"), "path")
        for case in mark.args[1]
        if isinstance(case, (tuple, str))
    ]
    examples = [case if isinstance(case, str) else case[0] for case in examples]
    assert len(examples) > 30
    examples += ["", "/", "//", "/2024/01/31/report", "/archive/2024/13/x", "/archive/2024/12"]
    examples += ["/api/2/orders", "/api/22/orders", "/1/orders", "/api/v1/files/8812.json?x=1"]
    for path in examples:
        if path.isascii() and "%" not in path:
            assert both_templates(path)[0] == routes.template_of(path), path


_TEXT = st.one_of(st.none(), st.sampled_from(["", "edge", "partner-a", "GET", "POST", "api"]))
_INT = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=700),
    st.integers(min_value=0, max_value=10**12),
)


@st.composite
def request_rows(draw: st.DrawFn) -> tuple:
    path = draw(st.one_of(st.none(), _ASCII_PATHS, st.text(max_size=20)))
    return (
        draw(st.integers(min_value=-3 * MINUTE, max_value=3 * MINUTE)),  # start
        draw(st.sampled_from(["edge", "kong", "gw"])),
        draw(_TEXT),  # consumer
        draw(_TEXT),  # client
        draw(st.one_of(st.none(), st.sampled_from(["GET", "POST", "", "get"]))),
        None,
        path,
        draw(st.one_of(st.none(), st.sampled_from(["", "/orders/{id}", "/x"]))),  # route
        draw(_INT),  # status
        draw(_INT),  # duration
        draw(_INT),  # upstream duration
        draw(st.one_of(st.none(), st.sampled_from(["orders", "", "10.0.0.5:8080"]))),
        None,
        None,
        None,
        None,
    )


def add_rows(rows: list, sign: int):
    def steps(contributions: rollups.Contributions) -> None:
        contributions.add_gateway(rows, sign)

    return steps


def run_both(steps) -> tuple[tuple, tuple, list[bool]]:
    python = rollups.Contributions()
    with compiled(None):
        steps(python)
    native = rollups.Contributions()
    recording = Recording(native_module())
    with compiled(recording):
        steps(native)
    return snapshot(python), snapshot(native), recording.gateway_answers


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(request_rows(), max_size=30), st.sampled_from([1, -1, 2]))
def test_one_call_gives_the_python_results(rows: list, sign: int):
    python, native, answers = run_both(add_rows(rows, sign))
    assert native == python
    assert answers == [True]


def test_later_calls_and_corrections_add_to_what_earlier_ones_left():
    first = [
        (MINUTE + i, "edge", "p", None, "GET", None, f"/orders/{i}", None, 200 + i, 5, 3, "orders")
        + (None,) * 4
        for i in range(400)
    ]

    def steps(contributions: rollups.Contributions) -> None:
        contributions.add_gateway(first)
        contributions.add_gateway(first[:100], -1)
        contributions.add_gateway([GatewayRequest(*row) for row in first[:3]])

    python, native, answers = run_both(steps)
    assert native == python
    assert answers == [True, True, True]


def test_rows_it_does_not_read_exactly_are_handed_back_with_nothing_changed():
    good = (MINUTE, "edge", "p", None, "GET", None, "/a/1", None, 200, 5, 3, "orders") + (None,) * 4
    beyond = (*good[:9], 2**64, *good[10:])
    overhead_overflow = (*good[:9], INT64_MAX, -2, *good[11:])
    short = good[:15]
    for bad in (beyond, overhead_overflow, short, list(good), (*good[:1], b"edge", *good[2:])):
        python, native, answers = run_both(add_rows([good, bad], 1))
        assert native == python
        assert answers == [False], bad
    python, native, answers = run_both(lambda c: c.add_gateway(iter([good])))
    assert native == python and answers == []  # not a list: the Python code, not asked


def test_every_corpus_access_log_gives_the_python_results():
    registry = load_registry()
    names = ("nginx", "kong", "envoy", "haproxy", "traefik", "aws_apigateway")
    rows: list[tuple] = []
    for path in sorted(corpus().rglob("*")):
        if not path.is_file():
            continue
        collector = registry.detect(path)
        if collector is None or collector.name not in names:
            continue
        try:
            records = list(collector.collect(Source(Path(path), 0)))
        except CollectorError:
            continue  # an NGINX error log: refused whole
        rows += [tuple(r) for r in records if type(r) is GatewayRequest]
    assert len(rows) > 100
    python, native, answers = run_both(add_rows(rows, 1))
    assert native == python
    assert answers == [True]
