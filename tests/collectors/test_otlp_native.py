"""The compiled OTLP/protobuf reader gives exactly the Python path's records, or hands it back."""

from __future__ import annotations

import base64
import mmap
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from clew.records import Quarantined
from collectors import CollectorError, Source, native, otlp_proto, semconv
from tests.collectors import wire
from tests.collectors.test_otlp_proto import framed, sdk_request
from tests.conftest import corpus, examples, require_built

BENCH = Path(__file__).resolve().parents[2] / "bench"


def native_reader():
    """The compiled reader, configured; the test is skipped without it, and failed in CI."""
    reader = otlp_proto._native if otlp_proto._native is not None else native.load()
    return require_built(reader, "collectors._otlp_native")


@pytest.fixture(autouse=True, scope="module")
def _compiled_reader():
    """Every test here needs the compiled reader (checked once, before hypothesis runs)."""
    native_reader()


def python_records(data: bytes) -> list | None:
    """What the Python path gives for one message; None when it quarantines the whole message."""
    try:
        message = ExportTraceServiceRequest.FromString(bytes(data))
    except DecodeError:
        return None
    return list(otlp_proto.records_of_message(message, "")) if message.resource_spans else None


def assert_same(data: bytes) -> list | None:
    """The compiled reader's records of ``data``, checked against the Python path's."""
    fast = native_reader().records(data)
    if fast is not None:
        expected = python_records(data)
        assert expected is not None, "read a message protobuf rejects"
        assert fast == expected  # so no span the Python path quarantines was read either
        assert [type(r) for r in fast] == [type(r) for r in expected]
    return fast


# ---- requests written field by field ----

KEYS = sorted(
    {
        *semconv.LEGACY_NAMES,
        *semconv._LEGACY_CLIENT_SIDE,
        *semconv._LEGACY_SERVER_SIDE,
        *semconv.LEGACY_NAMES.values(),
        *semconv.LIFTED_ATTRIBUTES,
        "http.target",
        "network.peer.address",
        "network.peer.port",
        "service.name",
        "service.namespace",
        "service.version",
        "deployment.environment",
        "deployment.environment.name",
    }
)


def rarely(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` mostly, ``odd`` about one time in forty."""
    return st.integers(0, 39).flatmap(lambda n: odd if n == 7 else usual)


@cache
def texts(clean: bool) -> st.SearchStrategy[bytes]:
    """String fields' bytes: valid UTF-8 when ``clean``, else now and then not."""
    valid = st.one_of(
        st.text(max_size=10).map(str.encode),
        st.sampled_from([b"", b"200", b"503", b" 404 ", b"99", b"1_0_0", b"/a/b?c=d", b"svc"]),
    )
    return valid if clean else rarely(valid, st.binary(max_size=4))


@cache
def keys(clean: bool) -> st.SearchStrategy[bytes]:
    names = st.sampled_from(KEYS).map(str.encode)
    return st.one_of(names, names, st.text(max_size=6).map(str.encode), texts(clean))


@cache
def unknown(clean: bool) -> st.SearchStrategy[bytes]:
    """A field no message of OTLP has (a group, which protobuf also skips, unless ``clean``)."""
    fields = st.one_of(
        st.builds(wire.scalar, st.integers(17, 40), st.integers(0, 2**64 - 1)),
        st.builds(wire.fixed64, st.integers(17, 40), st.integers(0, 2**64 - 1)),
        st.builds(wire.fixed32, st.integers(17, 40), st.integers(0, 2**32 - 1)),
        st.builds(wire.delimited, st.integers(17, 2**29 - 1), st.binary(max_size=6)),
    )
    group = st.integers(17, 40).map(
        lambda n: wire.tag(n, wire.START_GROUP) + wire.tag(n, wire.END_GROUP)
    )
    return fields if clean else fields | group


def noisy(body: st.SearchStrategy[bytes], clean: bool) -> st.SearchStrategy[bytes]:
    """A message's bytes, now and then with an unknown field, and unless ``clean`` now and then
    written twice over (every singular field repeated: protobuf merges those)."""
    return st.tuples(body, st.lists(unknown(clean), max_size=1), st.integers(0, 5)).map(
        lambda t: (t[0] + b"".join(t[1])) * (2 if t[2] == 0 and not clean else 1)
    )


def key_value(key: bytes, value: bytes) -> bytes:
    return wire.delimited(1, key) + wire.delimited(2, value)


@cache
def any_values(clean: bool) -> st.SearchStrategy[bytes]:
    """AnyValue messages of every kind, arrays and lists of them nested; unless ``clean`` also
    string_value_strindex (which only the Python path reads)."""
    scalars = [
        st.just(b""),  # no value at all
        texts(clean).map(lambda v: wire.delimited(1, v)),
        st.integers(0, 2).map(lambda v: wire.scalar(2, v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: wire.scalar(3, v)),
        st.integers(90, 610).map(lambda v: wire.scalar(3, v)),
        st.floats().map(lambda v: wire.double(4, v)),
        st.binary(max_size=7).map(lambda v: wire.delimited(7, v)),
    ]
    if not clean:
        scalars.append(st.integers(0, 3).map(lambda v: wire.scalar(8, v)))
    return st.recursive(
        st.one_of(scalars),
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(
                lambda vs: wire.delimited(5, b"".join(wire.delimited(1, v) for v in vs))
            ),
            st.lists(st.tuples(keys(clean), children), max_size=3).map(
                lambda kvs: wire.delimited(
                    6, b"".join(wire.delimited(1, key_value(k, v)) for k, v in kvs)
                )
            ),
        ),
        max_leaves=4,
    )


@cache
def key_values(clean: bool) -> st.SearchStrategy[bytes]:
    """KeyValue messages: with a value, without one, with a key_strindex, a key given twice."""
    values = noisy(any_values(clean), clean)
    return noisy(
        st.one_of(
            st.builds(key_value, keys(clean), values),
            st.builds(key_value, keys(clean), values),
            keys(clean).map(lambda k: wire.delimited(1, k)),
            st.builds(lambda k, v: key_value(k, v) + wire.scalar(3, 1), keys(clean), values),
            st.builds(lambda k, v: wire.delimited(1, b"x") + key_value(k, v), keys(clean), values),
        ),
        clean,
    )


@cache
def attributes(number: int, clean: bool, most: int = 5) -> st.SearchStrategy[list[bytes]]:
    return st.lists(key_values(clean).map(lambda kv: wire.delimited(number, kv)), max_size=most)


@cache
def ids(size: int) -> st.SearchStrategy[bytes]:
    """Ids of ``size`` bytes; rarely zero or another size."""
    good = st.binary(min_size=size, max_size=size)
    return rarely(good, st.just(bytes(size)) | st.binary(max_size=size + 1))


PARENTS = st.none() | ids(8) | st.just(bytes(8))
KINDS = rarely(st.integers(0, 5), st.sampled_from([6, 2**32 + 2, 2**31, -1]))
STARTS = rarely(st.integers(1, 2**64 - 1), st.just(0))


@cache
def statuses(clean: bool) -> st.SearchStrategy[bytes]:
    """Status messages; rarely with a code the Python path quarantines."""
    return noisy(
        st.builds(
            lambda message, code: wire.delimited(2, message) + wire.scalar(3, code),
            texts(clean),
            rarely(st.integers(0, 2), st.just(3)),
        ),
        clean,
    )


@st.composite
def spans(draw, clean: bool) -> bytes:
    """Span messages with every field, some ids or kinds or status codes the Python path
    quarantines; a scalar field given twice, and (unless ``clean``) any field twice."""
    text = texts(clean)
    fields = [wire.delimited(1, draw(ids(16))), wire.delimited(2, draw(ids(8)))]
    parent = draw(PARENTS)
    if parent is not None:
        fields.append(wire.delimited(4, parent))
    fields.append(wire.delimited(5, draw(text)))
    fields.append(wire.scalar(6, draw(KINDS)))
    fields.append(wire.fixed64(7, draw(STARTS)))
    fields.append(wire.fixed64(8, draw(st.integers(0, 2**64 - 1))))
    fields += draw(attributes(9, clean))
    optional = [
        wire.delimited(3, draw(text)),  # trace_state
        wire.scalar(10, draw(st.integers(0, 9))),
        wire.scalar(12, draw(st.integers(0, 9))),
        wire.scalar(14, draw(st.integers(0, 9))),
        wire.fixed32(16, draw(st.integers(0, 2**32 - 1))),
        wire.delimited(
            11,  # an event
            wire.fixed64(1, 5)
            + wire.delimited(2, draw(text))
            + b"".join(draw(attributes(3, clean, 2))),
        ),
        wire.delimited(
            13,  # a link
            wire.delimited(1, draw(ids(16)))
            + wire.delimited(2, draw(ids(8)))
            + wire.delimited(3, draw(text))
            + b"".join(draw(attributes(4, clean, 2)))
            + wire.fixed32(6, 1),
        ),
        wire.delimited(15, draw(statuses(clean))),
    ]
    fields += [field for field in optional if draw(st.booleans())]
    fields += draw(st.lists(unknown(clean), max_size=1))
    if draw(st.integers(0, 4)) == 0:
        # A field twice: the last one counts, or the two are merged (then left to protobuf).
        fields.append(draw(st.sampled_from(fields[:4] if clean else fields)))
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    return b"".join(fields)


@cache
def requests(clean: bool) -> st.SearchStrategy[bytes]:
    """ExportTraceServiceRequest messages with every field of every part, fields out of order;
    ``clean`` ones are well formed (protobuf decodes them, the same way at every reading)."""
    text = texts(clean)
    scope = noisy(
        st.builds(
            lambda name, version, attrs: (
                wire.delimited(1, name) + wire.delimited(2, version) + b"".join(attrs)
            ),
            text,
            text,
            attributes(3, clean, 2),
        ),
        clean,
    )
    scope_spans = noisy(
        st.builds(
            lambda scope, spans, url: (
                b"".join(wire.delimited(1, s) for s in scope)
                + b"".join(wire.delimited(2, s) for s in spans)
                + b"".join(wire.delimited(3, u) for u in url)
            ),
            st.lists(scope, max_size=1),
            st.lists(spans(clean), min_size=int(clean), max_size=3),
            st.lists(text, max_size=1),
        ),
        clean,
    )
    entity_ref = st.lists(text, max_size=4).map(
        lambda parts: b"".join(wire.delimited(n, part) for n, part in enumerate(parts, 1))
    )
    resource = noisy(
        st.builds(
            lambda attrs, dropped, refs: (
                b"".join(attrs)
                + b"".join(wire.scalar(2, d) for d in dropped)
                + b"".join(wire.delimited(3, r) for r in refs)
            ),
            attributes(1, clean),
            st.lists(st.integers(0, 9), max_size=1),
            st.lists(entity_ref, max_size=1),
        ),
        clean,
    )
    resource_spans = noisy(
        st.builds(
            lambda resource, scopes, url, first: (
                (b"".join(scopes + resource) if first else b"".join(resource + scopes))
                + b"".join(wire.delimited(3, u) for u in url)
            ),
            st.lists(resource.map(lambda r: wire.delimited(1, r)), max_size=1),
            st.lists(scope_spans.map(lambda s: wire.delimited(2, s)), min_size=1, max_size=2),
            st.lists(text, max_size=1),
            st.booleans(),  # the resource after its spans
        ),
        clean,
    )
    return noisy(
        st.lists(
            resource_spans.map(lambda r: wire.delimited(1, r)), min_size=int(clean), max_size=2
        ).map(b"".join),
        clean,
    )


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(requests(clean=True))
def test_a_well_formed_request_takes_the_fast_path_unless_a_span_is_quarantined(data):
    fast = assert_same(data)
    expected = python_records(data)
    assert expected is not None
    assert (fast is None) == any(type(r) is Quarantined for r in expected)


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(requests(clean=False))
def test_any_request_gives_the_python_paths_records_or_is_handed_back(data):
    assert_same(data)


@settings(max_examples=examples(100), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(requests(clean=True), st.data())
def test_truncated_and_garbled_requests_never_crash(data, draw):
    garbled = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        at = draw.draw(st.integers(0, len(garbled)))
        change = draw.draw(st.sampled_from(["cut", "set", "insert"]))
        if change == "cut":
            del garbled[at:]
        elif change == "set" and at < len(garbled):
            garbled[at] = draw.draw(st.integers(0, 255))
        else:
            garbled[at:at] = bytes([draw.draw(st.integers(0, 255))])
    assert_same(bytes(garbled))


# ---- what the fast path reads, and what it hands back ----


def test_the_sdks_requests_take_the_fast_path_with_every_value_kind():
    data = sdk_request("orders", traces=3)
    fast = assert_same(data)
    assert fast is not None
    request = ExportTraceServiceRequest.FromString(data)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for key, value in [
        ("tags", {"array_value": {"values": [{"string_value": "a"}, {"int_value": -7}]}}),
        ("nested", {"kvlist_value": {"values": [{"key": "k", "value": {"bytes_value": "AAE="}}]}}),
        ("raw", {"bytes_value": base64.b64encode(b"\x00\xff\x10").decode()}),
        ("ratio", {"double_value": 0.25}),
        ("empty", {}),
    ]:
        json_format.ParseDict({"key": key, "value": value}, span.attributes.add())
    assert assert_same(request.SerializeToString()) is not None


def test_legacy_names_are_renamed_as_build_span_renames_them():
    def request(kind: int, attrs: list[tuple[str, object]]) -> bytes:
        values = {str: "string_value", int: "int_value", float: "double_value"}
        span = {
            "traceId": base64.b64encode(b"\x01" * 16).decode(),
            "spanId": base64.b64encode(b"\x02" * 8).decode(),
            "name": "op",
            "kind": kind,
            "startTimeUnixNano": "1",
            "attributes": [{"key": k, "value": {values[type(v)]: v}} for k, v in attrs],
        }
        doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        return json_format.ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()

    cases = [
        (3, [("http.method", "GET"), ("net.peer.name", "db"), ("http.target", "/a?b")]),
        (2, [("net.peer.name", "web"), ("net.host.name", "api"), ("net.host.port", 80)]),
        (3, [("net.sock.peer.addr", "10.0.0.1"), ("net.sock.peer.port", 5432)]),
        (4, [("net.peer.ip", "10.0.0.2"), ("net.sock.peer.addr", "10.0.0.3")]),
        (3, [("http.status_code", "503"), ("http.response.status_code", 200)]),
        (2, [("http.status_code", 7.5), ("db.system", "redis"), ("http.target", "/x")]),
        (1, [("url.path", "/kept"), ("http.target", "/dropped?q"), ("peer.service", 3)]),
    ]
    for kind, attrs in cases:
        fast = assert_same(request(kind, attrs))
        assert fast is not None, attrs


def sdk_span() -> bytes:
    """The first span of ``sdk_request("orders", 1)``, serialised."""
    request = ExportTraceServiceRequest.FromString(sdk_request("orders", 1))
    return request.resource_spans[0].scope_spans[0].spans[0].SerializeToString()


def with_span(data: bytes, span: bytes) -> bytes:
    """``data`` with one more resource spans holding a span of these bytes."""
    return data + wire.delimited(1, wire.delimited(2, wire.delimited(2, span)))


#: A regular request changed so that the fast path hands it back (what it does not reproduce).
HANDED_BACK = {
    "short trace id": lambda data: with_span(data, sdk_span() + wire.delimited(1, b"\x01\x02")),
    "zero span id": lambda data: with_span(data, sdk_span() + wire.delimited(2, bytes(8))),
    "short parent": lambda data: with_span(data, sdk_span() + wire.delimited(4, b"\x05")),
    "no start": lambda data: with_span(data, sdk_span() + wire.fixed64(7, 0)),
    "bad kind": lambda data: with_span(data, sdk_span() + wire.scalar(6, 6)),
    "bad status code": lambda data: with_span(
        data, sdk_span() + wire.delimited(15, wire.scalar(3, 3))
    ),
    "status twice": lambda data: with_span(
        data, sdk_span() + wire.delimited(15, wire.scalar(3, 1)) * 2
    ),
    "resource twice": lambda data: data + wire.delimited(1, wire.delimited(1, b"") * 2),
    "two values in one AnyValue": lambda data: with_span(
        data,
        sdk_span()
        + wire.delimited(9, key_value(b"k", wire.delimited(1, b"a") + wire.scalar(3, 1))),
    ),
    "string_value_strindex": lambda data: with_span(
        data, sdk_span() + wire.delimited(9, key_value(b"k", wire.scalar(8, 1)))
    ),
    "invalid UTF-8 in an event": lambda data: with_span(
        data, sdk_span() + wire.delimited(11, wire.delimited(2, b"\xff"))
    ),
    "invalid UTF-8 in a name": lambda data: with_span(
        data, sdk_span() + wire.delimited(5, b"\xc0")
    ),
    "a group": lambda data: data + wire.tag(20, wire.START_GROUP) + wire.tag(20, wire.END_GROUP),
    "kind as a length-delimited field": lambda data: with_span(
        data, sdk_span() + wire.delimited(6, b"\x01")
    ),
    "no resource_spans": lambda data: wire.scalar(2, 1),
    "a truncated field": lambda data: data[:-1],
}


@pytest.mark.parametrize("change", sorted(HANDED_BACK))
def test_what_the_fast_path_does_not_reproduce_goes_to_the_python_path(change, tmp_path):
    data = HANDED_BACK[change](sdk_request("orders", 1))
    assert native_reader().records(data) is None
    # ... and the collector then gives what the Python path gives, quarantine included.
    path = tmp_path / "one.binpb"
    path.write_bytes(data)
    assert collected(path, native=True) == collected(path, native=False)
    if change in ("short trace id", "zero span id", "short parent", "no start", "bad kind"):
        assert any(type(r) is Quarantined for r in collected(path, native=False))


def padded(value: int, size: int) -> bytes:
    """``value`` as a varint of exactly ``size`` bytes (zero groups after the value's own)."""
    out = bytearray()
    for i in range(size):
        out.append(value & 0x7F | (0x80 if i < size - 1 else 0))
        value >>= 7
    return bytes(out)


@pytest.mark.parametrize("size", range(1, 12))
def test_over_long_varints_are_read_as_protobuf_reads_them(size):
    # Protobuf reads a tag or a length in at most five bytes, and any other varint in ten.
    data = sdk_request("orders", 1)
    resource_spans = ExportTraceServiceRequest.FromString(data).resource_spans[0]
    body = resource_spans.SerializeToString()
    long_tag = padded(1 << 3 | wire.LEN, size) + wire.varint(len(body)) + body
    long_length = wire.tag(1, wire.LEN) + padded(len(body), size + 1) + body
    long_kind = with_span(data, sdk_span() + wire.tag(6, wire.VARINT) + padded(3, size))
    for changed, readable in [
        (long_tag, size <= 5),
        (long_length, size < 5),
        (long_kind, size <= 10),
    ]:
        assert (python_records(changed) is not None) == readable
        assert (assert_same(changed) is not None) == readable


def test_any_buffer_is_read_as_its_bytes(tmp_path):
    reader = native_reader()
    data = sdk_request("orders")
    expected = reader.records(data)
    assert expected is not None
    assert reader.records(bytearray(data)) == expected
    assert reader.records(memoryview(b"xx" + data)[2:]) == expected
    path = tmp_path / "one.binpb"
    path.write_bytes(b"\x00" * 4 + data)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)[4:]
        assert reader.records(view) == expected
        view.release()
    with pytest.raises(TypeError):
        reader.records("not a buffer")


# ---- the collector and the receiver with and without it ----


def collected(path: Path, native: bool) -> list:
    saved = otlp_proto._native
    otlp_proto._native = saved if native else None
    try:
        return list(otlp_proto.OtlpProtoCollector().collect(Source(path)))
    finally:
        otlp_proto._native = saved


@pytest.mark.parametrize("layout", ["single", "collector", "delimited"])
def test_the_collector_gives_the_same_records_with_and_without_the_fast_path(tmp_path, layout):
    native_reader()
    good = sdk_request("orders")
    request = ExportTraceServiceRequest.FromString(sdk_request("billing"))
    request.resource_spans[0].scope_spans[0].spans[0].kind = 9  # quarantined
    quarantining = request.SerializeToString()
    garbage = b"\x0a\xff\xff\xff\x0f" + bytes(20)
    path = tmp_path / "traces.pb"
    if layout == "single":
        path.write_bytes(good)
    else:
        path.write_bytes(framed([good, quarantining, garbage, good], layout == "delimited"))
    with_native = collected(path, native=True)
    assert with_native == collected(path, native=False)
    assert [type(r) for r in with_native] == [type(r) for r in collected(path, native=False)]


def test_the_receivers_body_reader_gives_the_same_records_and_errors():
    native_reader()
    saved = otlp_proto._native
    data = sdk_request("orders")
    fast = otlp_proto.records_of_body(data)
    otlp_proto._native = None
    try:
        assert fast == otlp_proto.records_of_body(data)
        with pytest.raises(CollectorError) as python_error:
            otlp_proto.records_of_body(b"\x0a\x05\x01")
    finally:
        otlp_proto._native = saved
    with pytest.raises(CollectorError) as error:
        otlp_proto.records_of_body(b"\x0a\x05\x01")
    assert str(error.value) == str(python_error.value)


@pytest.mark.parametrize(("setting", "native"), [("1", False), ("0", True), ("", True)])
def test_clew_no_native_turns_the_fast_path_off(setting, native):
    code = "from collectors import otlp_proto; print(otlp_proto._native is not None)"
    environment = {**os.environ, "CLEW_NO_NATIVE": setting}
    run = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True)
    assert run.stdout.decode().strip() == str(native), run.stderr.decode()


# ---- real data ----


def as_protobuf(document: dict) -> bytes:
    """An OTLP/JSON request as protobuf: its hex ids as the base64 protobuf's JSON mapping
    reads."""
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for item in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if item.get(key):
                            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    request = json_format.ParseDict(document, ExportTraceServiceRequest())
    return request.SerializeToString()


def test_the_corpus_reads_the_same_through_the_fast_path():
    native_reader()
    taken = converted = 0
    for path in sorted(corpus("otlp_json").glob("*.json")):
        document = orjson.loads(path.read_bytes())
        if "resourceSpans" not in document:
            continue  # a manifest beside a capture
        data = as_protobuf(document)
        converted += 1
        taken += assert_same(data) is not None
    assert converted >= 5
    assert taken == converted  # real captures hold nothing the fast path declines


def test_the_benchmark_landscape_reads_the_same_and_all_through_the_fast_path(
    tmp_path, monkeypatch
):
    native_reader()
    monkeypatch.syspath_prepend(str(BENCH))
    import ingest_otlp_proto
    import otlp_landscape

    source = tmp_path / "traces.otlp.jsonl"
    otlp_landscape.write_file(source, 3000, 7, otlp_landscape.BASE_NS, 60_000_000_000)
    target = tmp_path / "traces.otlp.binpb"
    assert ingest_otlp_proto._convert(source, target) == 3000
    data = target.read_bytes()
    frames = otlp_proto._frames(data, 0, varint=False)
    assert frames
    spans = 0
    for start, end in frames:
        fast = assert_same(data[start:end])
        assert fast is not None
        spans += sum(type(r).__name__ == "Span" for r in fast)
    assert spans == 3000
    assert collected(target, native=True) == collected(target, native=False)
