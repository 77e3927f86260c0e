"""The compiled OTLP/JSON reader gives exactly the typed path's records, or hands the text back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.demo import generator
from clew.records import Quarantined, Resource, Span
from collectors import CollectorError, Source, otlp_json, semconv
from collectors.otlp_json import _KIND_NAMES, _STATUS_NAMES, typed_records
from tests import otlp
from tests.collectors import test_otlp_json
from tests.collectors.test_otlp_native import native_reader
from tests.conftest import SAMPLE_END_NS, corpus, examples

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True, scope="module")
def _compiled_reader():
    """Every test here needs the compiled reader (checked once, before hypothesis runs)."""
    native_reader()


def assert_same(data: bytes) -> list | None:
    """The compiled reader's records of ``data``, checked against the typed path's."""
    fast = native_reader().json_records(data)
    if fast is not None:
        expected = typed_records(data)
        assert expected is not None, "read a request the typed path hands to the dict path"
        assert fast == expected
        assert [type(r) for r in fast] == [type(r) for r in expected]
        # a float's sign and an int's type are not told apart by ==
        assert repr(fast) == repr(expected)
    return fast


def collected(path: Path, native: bool) -> list:
    saved = otlp_json._native
    otlp_json._native = saved if native else None
    try:
        return list(otlp_json.OtlpJsonCollector().collect(Source(path)))
    finally:
        otlp_json._native = saved


# ---- well-formed requests ----

KEYS = sorted(
    {
        *semconv.LEGACY_NAMES,
        *semconv._LEGACY_CLIENT_SIDE,
        *semconv._LEGACY_SERVER_SIDE,
        *semconv.LEGACY_NAMES.values(),
        *semconv.LIFTED_ATTRIBUTES,
        *("http.target", "network.peer.address", "network.peer.port", "service.name"),
        *("service.namespace", "service.version", "deployment.environment"),
        "deployment.environment.name",
    }
)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)


def hex_ids(digits: int) -> st.SearchStrategy[str]:
    """Non-zero hex ids, in lower, upper or mixed case."""

    def spell(value: int, case: str) -> str:
        text = f"{value:0{digits}x}"
        half = digits // 2
        return {"lower": text, "upper": text.upper(), "mixed": text[:half] + text[half:].upper()}[
            case
        ]

    return st.builds(
        spell, st.integers(1, 16**digits - 1), st.sampled_from(["lower", "upper", "mixed"])
    )


any_values = st.deferred(
    lambda: st.one_of(
        st.builds(
            lambda v: {"stringValue": v}, st.text(max_size=8) | st.sampled_from(["200", "x"])
        ),
        st.builds(lambda v: {"intValue": v}, INT64 | st.integers(90, 610)),
        st.builds(lambda v: {"intValue": str(v)}, INT64 | UINT64 | st.integers(90, 610)),
        st.builds(lambda v: {"boolValue": v}, st.booleans()),
        st.builds(
            lambda v: {"doubleValue": v},
            st.floats(allow_nan=False, allow_infinity=False) | INT64 | st.just(-0.0),
        ),
        st.builds(lambda v: {"bytesValue": v}, st.text(max_size=8)),
        st.builds(lambda v: {"arrayValue": {"values": v}}, st.lists(any_values, max_size=3)),
        st.just({"arrayValue": {}}),
        st.builds(lambda v: {"kvlistValue": {"values": v}}, st.lists(key_values, max_size=3)),
        st.just({"kvlistValue": {"values": None}}),
        st.just({}),
    )
)
key_values = st.builds(
    lambda k, v: {"key": k} if v == "absent" else {"key": k, "value": v},
    st.sampled_from(KEYS) | st.text(max_size=6),
    any_values | st.none() | st.just("absent"),
)
attribute_lists = st.lists(key_values, max_size=6) | st.none()
times = UINT64.filter(bool).flatmap(lambda t: st.sampled_from([t, str(t)]))


def optional(fields: dict) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional=fields)


events = optional(
    {
        "timeUnixNano": times | st.none() | st.just("soon"),
        "name": st.text(max_size=5) | st.none(),
        "attributes": attribute_lists,
        "droppedAttributesCount": st.integers(0, 9) | st.none(),
    }
)
links = optional(
    {
        "traceId": hex_ids(32) | st.sampled_from(["", "0" * 32, "xyz"]) | st.none(),
        "spanId": hex_ids(16) | st.none(),
        "traceState": st.text(max_size=5) | st.none(),
        "attributes": attribute_lists,
        "droppedAttributesCount": st.integers(0, 9) | st.none(),
        "flags": st.integers(0, 2**32 - 1) | st.none(),
    }
)
statuses = (
    optional(
        {
            "code": st.integers(0, 2) | st.sampled_from(sorted(_STATUS_NAMES)),
            "message": st.text(max_size=6) | st.none(),
        }
    )
    | st.none()
)
spans = st.builds(
    lambda required, extra: required | extra,
    st.fixed_dictionaries(
        {"traceId": hex_ids(32), "spanId": hex_ids(16), "startTimeUnixNano": times}
    ),
    optional(
        {
            "traceState": st.text(max_size=5) | st.none(),
            "parentSpanId": hex_ids(16) | st.sampled_from(["", None]),
            "flags": st.integers(0, 2**32 - 1) | st.none(),
            "name": st.text(max_size=8) | st.none(),
            "kind": st.integers(0, 5) | st.sampled_from(sorted(_KIND_NAMES)),
            "endTimeUnixNano": times | st.just(0) | st.none(),
            "attributes": attribute_lists,
            "droppedAttributesCount": st.integers(0, 9) | st.none(),
            "events": st.lists(events, max_size=2) | st.none(),
            "droppedEventsCount": st.integers(0, 9) | st.none(),
            "links": st.lists(links, max_size=2) | st.none(),
            "droppedLinksCount": st.integers(0, 9) | st.none(),
            "status": statuses,
        }
    ),
)
scope_spans = st.builds(
    lambda spans, extra: {"spans": spans} | extra,
    st.lists(spans, max_size=3),
    optional(
        {
            "scope": optional(
                {
                    "name": st.text(max_size=5) | st.none(),
                    "version": st.text(max_size=5) | st.none(),
                    "attributes": attribute_lists,
                    "droppedAttributesCount": st.integers(0, 9) | st.none(),
                }
            )
            | st.none(),
            "schemaUrl": st.text(max_size=5) | st.none(),
        }
    ),
)
resource_spans = optional(
    {
        "resource": optional(
            {"attributes": attribute_lists, "droppedAttributesCount": st.integers(0, 9) | st.none()}
        )
        | st.none(),
        "scopeSpans": st.lists(scope_spans, max_size=2) | st.none(),
        "schemaUrl": st.text(max_size=5) | st.none(),
    }
)


@st.composite
def documents(draw) -> bytes:
    """A well-formed request's text: compact (orjson), or pretty with escapes (json, ASCII only);
    members now and then in another order (the resource after its spans)."""
    request = {"resourceSpans": draw(st.lists(resource_spans, max_size=2))}
    if draw(st.booleans()):
        for item in request["resourceSpans"]:
            keys = draw(st.permutations(list(item)))
            item.update({key: item.pop(key) for key in keys})
    if draw(st.booleans()):
        return orjson.dumps(request)
    return json.dumps(request, indent=draw(st.sampled_from([None, 2]))).encode()


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents())
def test_a_well_formed_request_takes_the_fast_path(data):
    fast = assert_same(data)
    assert fast is not None
    assert typed_records(data) is not None


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents(), st.data())
def test_truncated_and_garbled_text_never_crashes_nor_disagrees(data, draw):
    garbled = bytearray(data)
    pieces = [
        b",",
        b"}",
        b"]",
        b'"',
        b"\\",
        b"null",
        b"01",
        b"-",
        b"1e999",
        b"\x00",
        b"\xff",
        b"\xc3",
        b" ",
        b'"\\ud800"',
        b'"x":1,',
        b"\\u00e9",
        b"NaN",
        b"true",
    ]
    for _ in range(draw.draw(st.integers(1, 3))):
        at = draw.draw(st.integers(0, len(garbled)))
        change = draw.draw(st.sampled_from(["cut", "set", "insert", "piece"]))
        if change == "cut":
            del garbled[at:]
        elif change == "set" and at < len(garbled):
            garbled[at] = draw.draw(st.integers(0, 255))
        elif change == "insert":
            garbled[at:at] = bytes([draw.draw(st.integers(0, 255))])
        else:
            garbled[at:at] = draw.draw(st.sampled_from(pieces))
    assert_same(bytes(garbled))


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(test_otlp_json.regular_spans | test_otlp_json.span_fields, max_size=4),
    st.one_of(
        test_otlp_json.json_values,
        st.fixed_dictionaries({"attributes": st.lists(test_otlp_json.key_value)}),
    ),
)
def test_any_request_gives_the_typed_paths_records_or_is_handed_back(spans, resource):
    request = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    try:
        data = orjson.dumps(request)
    except TypeError:  # an integer beyond 64 bits: not JSON orjson writes
        data = json.dumps(request).encode()
    assert_same(data)


# ---- what the fast path reads, and what it hands back ----

SPAN = otlp.span(1, 2, 3, kind=2, http__method="GET", http__target="/a?b")


def request_text(**fields: object) -> bytes:
    """A one-span request, compact (non-ASCII escaped), the span's fields changed."""
    request = otlp.request({"orders": [SPAN | fields]})
    return json.dumps(request, separators=(",", ":")).encode()


def test_kinds_and_codes_by_name_are_typed_records_names():
    for name, kind in _KIND_NAMES.items():
        (_, span) = assert_same(request_text(kind=name))
        assert span.kind == kind
    for name, code in _STATUS_NAMES.items():
        (_, span) = assert_same(request_text(status={"code": name, "message": "m"}))
        assert span.status == code


@pytest.mark.parametrize(
    "text",
    [
        request_text(traceId="AB" * 16, spanId="Cd" * 8, parentSpanId="EF" * 8),
        request_text(startTimeUnixNano=5, endTimeUnixNano="3"),
        request_text(endTimeUnixNano=None, parentSpanId=None, name=None, status=None),
        # float(int("-0")) is 0.0, not the -0.0 the token's text would give
        request_text(attributes=[{"key": "d", "value": {"doubleValue": 7}}]).replace(
            b'"doubleValue":7', b'"doubleValue":-0'
        ),
        request_text(attributes=[{"key": "d", "value": {"doubleValue": -0.0}}]),
        request_text(attributes=[{"key": "i", "value": {"intValue": "-0007"}}]),
        request_text(attributes=[{"key": "i", "value": {"intValue": str(2**64 - 1)}}]),
        request_text(attributes=[{"key": "i", "value": {"intValue": str(-(2**63))}}]),
        request_text(startTimeUnixNano="0" * 30 + str(2**64 - 1)),
        request_text(attributes=[{"key": "e", "value": {"stringValue": "\u00e9\U0001f600\x00"}}]),
        json.dumps(otlp.request({"é": [SPAN | {"name": "\U0001f600\u2028"}]})).encode(),
        b'{"resourceSpans": [{"scopeSpans": [], "resource": {"attributes": null}}]}',
        b'{"resourceSpans": []}',
        b' \n{"resourceSpans":[]}\r\n\t ',
        request_text(
            links=[
                {"traceId": "ab" * 16, "spanId": "0" * 16},
                {"traceId": "AB" * 16, "spanId": "cd" * 8},
            ]
        ),
        request_text().replace(b'"traceId"', b'"trace\\u0049d"'),
    ],
)
def test_what_typed_records_reads_the_fast_path_reads_too(text):
    assert assert_same(text) is not None


HANDED_BACK = {
    "a control character": request_text(name="a\x01b").replace(b"\\u0001", b"\x01"),
    "a bad escape": request_text(name="ab").replace(b'"ab"', b'"a\\xb"'),
    "a lone high surrogate": request_text(name="ab").replace(b'"ab"', b'"\\ud800"'),
    "a lone low surrogate": request_text(name="ab").replace(b'"ab"', b'"\\udc00x"'),
    "invalid UTF-8": request_text(name="ab").replace(b'"ab"', b'"\xc3("'),
    "a trailing comma": request_text().replace(b"}]}]}]}", b"},]}]}]}"),
    "a trailing comma in an object": request_text().replace(b'"kind":2', b'"kind":2,}'),
    "a leading zero": request_text().replace(b'"kind":2', b'"kind":02'),
    "NaN": request_text(attributes=[{"key": "d", "value": {"doubleValue": 1.5}}]).replace(
        b"1.5", b"NaN"
    ),
    "Infinity": request_text(attributes=[{"key": "d", "value": {"doubleValue": 1.5}}]).replace(
        b"1.5", b"1e400"
    ),
    "trailing characters": request_text() + b" x",
    "two documents": request_text() + request_text(),
    "a byte order mark": b"\xef\xbb\xbf" + request_text(),
    "a duplicate key": request_text().replace(b'"kind":2', b'"kind":2,"kind":3'),
    "an unknown field": request_text(futureField=1),
    "a snake_case name": request_text().replace(b'"spanId"', b'"span_id"'),
    "a field's name and more": request_text().replace(b'"spanId"', b'"spanIds"'),
    "a field's name cut short": request_text().replace(b'"spanId"', b'"span"'),
    "a duplicate key, escaped": request_text().replace(b'"kind":2', b'"kind":2,"\\u006bind":3'),
    "a null span": b'{"resourceSpans":[{"scopeSpans":[{"spans":[null]}]}]}',
    "no spans list": b'{"resourceSpans":[{"scopeSpans":[{}]}]}',
    "no resourceSpans": b'{"resourceSpans":null}',
    "kind true": request_text(kind=True),
    "kind 6": request_text(kind=6),
    "an unknown kind name": request_text(kind="SPAN_KIND_SOMETIMES"),
    "status code 3": request_text(status={"code": 3}),
    "a float time": request_text(startTimeUnixNano=1.5),
    "a time with a plus": request_text(startTimeUnixNano="+5"),
    "a time with spaces": request_text(startTimeUnixNano=" 5"),
    "a time beyond 64 bits": request_text(startTimeUnixNano=str(2**64)),
    "a time of 20 nines": request_text(startTimeUnixNano="9" * 20),
    "an intValue string beyond 64 bits": request_text(
        attributes=[{"key": "i", "value": {"intValue": str(2**64)}}]
    ),
    "an intValue string below -2**63": request_text(
        attributes=[{"key": "i", "value": {"intValue": str(-(2**63) - 1)}}]
    ),
    "a trace id with a g": request_text(traceId="g" + "a" * 31),
    "a span id with a G": request_text(spanId="a" * 15 + "G"),
    "no start": request_text(startTimeUnixNano=None),
    "a zero trace id": request_text(traceId="0" * 32),
    "a short span id": request_text(spanId="ab"),
    "a zero parent": request_text(parentSpanId="0" * 16),
    "an intValue with underscores": request_text(
        attributes=[{"key": "i", "value": {"intValue": "1_000"}}]
    ),
    "an intValue that is not a number": request_text(
        attributes=[{"key": "i", "value": {"intValue": "many"}}]
    ),
    "an intValue beyond 64 bits": request_text(
        attributes=[{"key": "i", "value": {"intValue": 2**64}}]
    ),
    "two values in one AnyValue": request_text(
        attributes=[{"key": "k", "value": {"intValue": "1", "stringValue": "a"}}]
    ),
    "a null stringValue": request_text(attributes=[{"key": "k", "value": {"stringValue": None}}]),
    "a KeyValue without a key": request_text(attributes=[{"value": {"stringValue": "a"}}]),
    "deep nesting": request_text(
        attributes=[
            {"key": "k", "value": json.loads('{"arrayValue":{"values":[' * 30 + "{}" + "]}}" * 30)}
        ]
    ),
}


@pytest.mark.parametrize("change", sorted(HANDED_BACK))
def test_what_the_fast_path_cannot_vouch_for_goes_to_the_python_path(change, tmp_path):
    data = HANDED_BACK[change]
    assert native_reader().json_records(data) is None
    # ... and the collector then gives what the Python paths give, quarantine included.
    path = tmp_path / "one.jsonl"
    path.write_bytes(data + b"\n")
    assert collected(path, native=True) == collected(path, native=False)


def test_any_buffer_is_read_as_its_bytes():
    reader = native_reader()
    data = request_text()
    expected = reader.json_records(data)
    assert expected is not None
    assert reader.json_records(bytearray(data)) == expected
    assert reader.json_records(memoryview(b"xx" + data)[2:]) == expected
    with pytest.raises(TypeError):
        reader.json_records("not a buffer")


def cache_texts() -> list[str]:
    """Texts the text caches could mix up: sharing long prefixes, one byte apart anywhere (in
    the first, a middle or the last of their eight-byte words), on both sides of the cached
    length (48 bytes), not ASCII, and far more of them than either cache has slots (1024 keys,
    4096 values), so that slots are shared and texts evicted and read again."""
    texts = []
    for length in range(1, 60):
        for fill in ("k", "\u00e9"):
            base = fill * length
            texts += [base, *(base[:at] + "x" + base[at + 1 :] for at in range(length))]
    return texts + [f"attribute.value.{i:05d}" for i in range(6000)]


def test_the_text_caches_never_give_one_text_for_another():
    texts = cache_texts()
    # Build_span's names among them, their kinds (lifted, renamed) read again after evictions.
    for at, key in enumerate(KEYS):
        texts.insert(at * len(texts) // len(KEYS), key)
    for order in (texts, texts[::-1], texts[::7] + texts[3::5]):
        spans = [
            SPAN
            | {
                "spanId": f"{n + 1:016x}",
                "attributes": [
                    {"key": key, "value": {"stringValue": value}}
                    for key, value in zip(chunk, chunk[1:] + chunk[:1], strict=True)
                ],
            }
            for n, chunk in enumerate(order[i : i + 40] for i in range(0, len(order), 40))
        ]
        data = orjson.dumps(otlp.request({"orders": spans}))
        assert assert_same(data) is not None


def test_strings_read_with_what_ends_or_escapes_them_at_every_place_in_a_word():
    for length in range(20):
        for at in range(length):
            for special in ('"', "\\", "\n", "/", "\u00e9", "\u2028", "\U0001f600", "\x7f"):
                name = "n" * at + special + "n" * (length - at)
                for text in (orjson.dumps(name), json.dumps(name).encode()):
                    data = request_text(name="NAME").replace(b'"NAME"', text)
                    (_, span) = assert_same(data)
                    assert span.name == name
            raw_control = request_text(name="NAME").replace(b"NAME", b"n" * at + b"\x1f")
            assert native_reader().json_records(raw_control) is None


# ---- the collector and the receiver with and without it ----


def test_the_collector_gives_the_same_records_with_and_without_it(tmp_path):
    lines = [request_text(), HANDED_BACK["a zero trace id"], b"", b"{broken", request_text()]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with_native = collected(path, native=True)
    assert with_native == collected(path, native=False)
    assert any(type(r) is Quarantined for r in with_native)
    # a resumed read counts the lines before its offset
    offset = len(lines[0]) + 1
    resumed = list(otlp_json.OtlpJsonCollector().collect(Source(path, offset)))
    assert next(r for r in resumed if type(r) is Quarantined).position.startswith("line 2: ")
    pretty = tmp_path / "one.json"
    pretty.write_bytes(json.dumps(orjson.loads(request_text()), indent=2).encode())
    assert collected(pretty, native=True) == collected(pretty, native=False)


def test_the_receivers_body_reader_gives_the_same_records_and_errors():
    saved = otlp_json._native
    fast = otlp_json.records_of_body(request_text())
    otlp_json._native = None
    try:
        assert fast == otlp_json.records_of_body(request_text())
        with pytest.raises(CollectorError) as python_error:
            otlp_json.records_of_body(b'{"resourceSpans": [')
    finally:
        otlp_json._native = saved
    with pytest.raises(CollectorError) as error:
        otlp_json.records_of_body(b'{"resourceSpans": [')
    assert str(error.value) == str(python_error.value)


@pytest.mark.parametrize(("setting", "native"), [("1", False), ("0", True), ("", True)])
def test_clew_no_native_turns_the_fast_path_off(setting, native):
    code = "from collectors import otlp_json; print(otlp_json._native is not None)"
    environment = {**os.environ, "CLEW_NO_NATIVE": setting}
    run = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True)
    assert run.stdout.decode().strip() == str(native), run.stderr.decode()


# ---- real data ----


def test_the_corpus_reads_the_same_and_all_through_the_fast_path():
    taken = 0
    for path in sorted(corpus("otlp_json").glob("*.json")):
        data = path.read_bytes()
        if b'"resourceSpans"' not in data:
            continue  # a manifest beside a capture
        fast = assert_same(data)
        assert fast is not None, path.name
        taken += 1
    assert taken >= 5


def test_the_sample_landscape_reads_the_same_and_all_through_the_fast_path(tmp_path):
    generator().generate(tmp_path, end_ns=SAMPLE_END_NS, traces=100)
    path = tmp_path / "traces.otlp.jsonl"
    lines = [line for line in path.read_bytes().splitlines() if line]
    assert lines
    assert all(assert_same(line) is not None for line in lines)
    assert collected(path, native=True) == collected(path, native=False)


def test_the_benchmark_landscape_reads_the_same_and_all_through_the_fast_path(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(BENCH))
    import otlp_landscape

    path = tmp_path / "traces.otlp.jsonl"
    otlp_landscape.write_file(path, 3000, 7, otlp_landscape.BASE_NS, 60_000_000_000)
    spans = 0
    for line in path.read_bytes().splitlines():
        fast = assert_same(line)
        assert fast is not None
        spans += sum(type(r) is Span for r in fast)
        assert type(fast[0]) is Resource
    assert spans == 3000
    assert collected(path, native=True) == collected(path, native=False)
