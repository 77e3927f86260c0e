"""The compiled reader of NGINX ``combined`` lines (``collectors/_access_nginx.c``) gives exactly
the Python path's records and checkpoints, or hands the lines back to it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.records import Checkpoint, GatewayRequest
from collectors import CollectorError, Source, lines, native
from collectors.access_logs import Settings
from collectors.access_logs.nginx import collector
from tests.collectors.strategies import mutated_lines
from tests.collectors.test_nginx import NGINX_FILES
from tests.conftest import corpus, examples, require_built

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ingest_nginx  # bench/ is no package

COMPILED = native.reader if native.reader is not None else native.load()

# The variants the compiled reader reads, and neighbours of them it hands back.
SAMPLES = [
    '10.1.2.3 - - [01/May/2024:10:00:00 +0000] "GET /api/orders?id=7 HTTP/1.1" 200 512',
    '10.1.2.3 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8.0"',
    '10.1.2.3:5555 - alice [29/Feb/2024:23:59:59 -0130] "POST /pay#x HTTP/2.0" 201 - '
    '"https://shop.example/cart?step=2" "Mozilla/5.0 (X11)"',
    'example.com 10.1.2.3 - - [01/May/2024:10:00:00 +0200] "GET / HTTP/1.1" 304 0 "" ""',
    'www.example.com:80 fd00::1 - bob smith [01/Jan/1999:00:00:00 +0000] "HEAD /x HTTP/1.0" 404 '
    '12 "-" "-" "203.0.113.9, 10.0.0.1" "api.example.com" 0.057 0.010, 0.020',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET http://h.example/p/q?x=1 HTTP/1.1" 200 1 '
    '"-" "ua" "-" 1.500 - ',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET https://host HTTP/1.1" 200 1 "-" "ua" '
    "0.120 0.100 : 0.002",
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "PURGE - HTTP/1.1" 200 1 "r" "ua" "x" "not host"',
    '10.0.0.1 - "q" [01/May/2024:10:00:00 +0000] "GET /?a HTTP/1.1" 200 1 "?q" "u\\"a"',
    '10.0.0.1 - a"b c [01/May/2024:10:00:00 +0000] "GET /?a HTTP/1.1" 200 1 "?q" "x"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua" rt=0.1 ua="x"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua" 0.1 "x"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua" -, - 0.001',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua" 9999999.999',
    '10.0.0.1 - - [31/Apr/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1',
    '10.0.0.1 - - [01/May/2262:10:00:00 +0000] "GET /a HTTP/1.1" 200 1',
    '10.0.0.1 - - [01/May/2024:10:00:00.123 +0000] "GET /a HTTP/1.1" 200 1',
    '10.0.0.1 - - [01/May/2024:10:00:00] "GET /a HTTP/1.1" 200 1',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "" 400 0 "-" "-"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.1, 10.0.0.2 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',
    '"10.9.9.9" 10.0.0.2 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',
    '[::1]:80 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua" 1 "R" "U" 12ms',
    "10.0.0.1 - - [01/May/2024:10:00:00 +0000] "
    '"GET /a HTTP/1.1" 200 1 "-" "-" 45 0.005 [ns-svc-80] [] 10.0.0.5:80 12 0.004 200 abc',
    '2021/09/30 09:23:53 [error] 1#1: *17 open() "/x" failed',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 2000 1 "-" "-"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "get /a HTTP/1.1" 200 1 "-" "-"',
    "   ",
    "",
    '2024-05-01T10:00:00.1Z stdout F 10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" '
    "200 1",
    '2024-05-01T10:00:00.1Z stdout P 10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" ',
    '<13>May  1 10:00:00 web nginx: 10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" '
    "200 1",
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /\u00e9 HTTP/1.1" 200 1 "-" "\u00e9"',
    '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua"\r',
]


def _compiled():
    return require_built(COMPILED, "collectors._otlp_native")


def collected(path: Path, compiled: bool, monkeypatch, **options) -> list:
    """The records of the NGINX collector (with ``options`` as its settings), or the error."""
    with monkeypatch.context() as patch:
        patch.setattr(native, "reader", _compiled() if compiled else None)
        try:
            return list(collector().configured(Settings(**options)).collect(Source(path)))
        except CollectorError as error:
            return [str(error)]


def assert_same(path: Path, monkeypatch, **options) -> list:
    fast = collected(path, True, monkeypatch, **options)
    assert fast == collected(path, False, monkeypatch, **options)
    return fast


def test_the_compiled_module_is_built_and_reads_combined_lines():
    reader = _compiled()
    data = (SAMPLES[1] + "\n").encode()
    records, position, count = reader.nginx_block(data, 0, len(data), 10, "nginx", False)
    assert (position, count) == (len(data), 1)
    assert type(records[0]) is GatewayRequest
    assert records[0].attributes == '{"protocol":"HTTP/1.1","user_agent":"curl/8.0"}'


@pytest.mark.parametrize("name", NGINX_FILES)
def test_the_corpus_reads_alike(name, monkeypatch):
    assert_same(corpus("nginx", name), monkeypatch)


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "access.log"
    ingest_nginx.generate(path, 20_000, 42)
    return path


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"consumer": "client", "gateway": "edge"},
        {"consumer": "header:x-user"},
        {"hash_clients": True, "hash_key": "k"},
    ],
)
def test_the_bench_log_reads_alike(bench_log, options, monkeypatch):
    records = assert_same(bench_log, monkeypatch, **options)
    assert sum(type(r) is GatewayRequest for r in records) == 20_000


def test_the_variants_read_alike_at_any_block_boundary(tmp_path, monkeypatch):
    path = tmp_path / "access.log"
    path.write_text("\n".join(SAMPLES * 3), encoding="utf-8")  # no newline at the end
    expected = assert_same(path, monkeypatch, consumer="client")
    monkeypatch.setattr("collectors.access_logs.CHECKPOINT_LINES", 7)
    for size in (1, 2, 3, 50, 97, 256, 1000):
        monkeypatch.setattr(lines, "READ_BYTES", size)
        assert_same(path, monkeypatch)
        assert collected(path, True, monkeypatch, consumer="client")[-1] == expected[-1]
    growing = Source(path, growing=True)
    with monkeypatch.context() as patch:
        patch.setattr(native, "reader", None)
        slow = list(collector().collect(growing))
    assert list(collector().collect(growing)) == slow


def test_resuming_from_a_checkpoint_reads_alike(bench_log, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(native, "reader", None)
        checkpoints = [r for r in collector().collect(Source(bench_log)) if type(r) is Checkpoint]
    offset = checkpoints[7].offset
    resumed = Source(bench_log, offset=offset)
    fast = list(collector().collect(resumed))
    monkeypatch.setattr(native, "reader", None)
    assert fast == list(collector().collect(resumed))


_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_TOKEN = st.sampled_from(["-", "", "a", "10.0.0.1", "x:1", "0.057", "0.010, 0.020", '"', "?", " "])
_PART = st.one_of(_TEXT, _TOKEN)


@st.composite
def combined_lines(draw: st.DrawFn) -> str:
    """Lines of combined's shape, each part drawn (well-formed, or not)."""
    day = draw(st.sampled_from(["01", "31", "29", "00", "1x"]))
    month = draw(st.sampled_from(["May", "Feb", "Apr", "may"]))
    year = draw(st.sampled_from(["2024", "2023", "1677", "2261", "2262"]))
    clock = draw(st.sampled_from(["10:00:00", "23:59:59", "24:00:00", "00:00:60"]))
    offset = draw(st.sampled_from([" +0000", " -0130", " +9999", "", ".5 +0000"]))
    head = draw(st.sampled_from(["10.0.0.1", "host 10.0.0.1:80", "h a b", "::1", "a,b", "x"]))
    user = draw(st.sampled_from(["-", "", "alice", "a - b", '"q"']))
    method = draw(st.sampled_from(["GET", "POST", "M_-", "get", ""]))
    target = draw(st.one_of(st.sampled_from(["/", "-", "/a?b#c", "ftp://x/y", "//:///"]), _TEXT))
    protocol = draw(st.sampled_from([" HTTP/1.1", "", " HTTP/", " HTTP/2 x"]))
    status = draw(st.sampled_from(["200", "404", "20", "-", "abc"]))
    size = draw(st.sampled_from(["0", "-", "123", "1" * 19, "x"]))
    tail = ""
    if draw(st.booleans()):
        tail = f' "{draw(_PART)}" "{draw(_PART)}"'
        tail += "".join(
            draw(st.sampled_from([" ", "  ", ""])) + (f'"{part}"' if quoted else part)
            for quoted, part in draw(st.lists(st.tuples(st.booleans(), _PART), max_size=4))
        )
    return (
        f"{head} - {user} [{day}/{month}/{year}:{clock}{offset}] "
        f'"{method} {target}{protocol}" {status} {size}{tail}'
    )


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.one_of(combined_lines(), mutated_lines(SAMPLES), st.sampled_from(SAMPLES)),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([{}, {"consumer": "client"}, {"gateway": "gw"}]),
)
def test_random_and_mutated_lines_read_alike(tmp_path, monkeypatch, texts, options):
    path = tmp_path / "random.log"
    path.write_bytes("\n".join(texts).encode("utf-8", errors="surrogateescape"))
    assert_same(path, monkeypatch, **options)
