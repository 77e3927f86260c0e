"""OTLP/protobuf files: the SDK's own encoding, in the three layouts, read as OTLP/JSON reads."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from clew.pipeline import ingest
from clew.records import Checkpoint, Quarantined, Span, SpanLink
from collectors import Registry, Source
from collectors.otlp_json import OtlpJsonCollector
from collectors.otlp_proto import OtlpProtoCollector
from tests.stored import stored_spans

collector = OtlpProtoCollector()


def sdk_request(service: str, traces: int = 2) -> bytes:
    """An ExportTraceServiceRequest as the OpenTelemetry SDK encodes it: a server span calling
    a database and another service, one failing, with every attribute type and a link."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    previous = None
    for n in range(traces):
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/orders/{id}"},
            links=[Link(previous)] if previous else [],
        ) as server:
            previous = server.get_span_context()
            with tracer.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={"db.system": "postgresql", "db.statement": "SELECT 1", "n": n},
            ):
                pass
            with tracer.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.method": "POST",
                    "http.status_code": 503,
                    "net.peer.name": "billing",
                    "retry": True,
                    "weight": 0.5,
                    "tags": ["a", "b"],
                },
            ) as call:
                call.set_status(Status(StatusCode.ERROR, "upstream unavailable"))
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def as_otlp_json(message: bytes) -> bytes:
    """The same request as OTLP/JSON: protobuf's JSON mapping, with ids in hex as OTLP wants."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(message)
    data = MessageToDict(request)

    def hexed(obj: dict) -> None:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in obj:
                obj[key] = base64.b64decode(obj[key]).hex()

    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                hexed(span)
                for link in span.get("links", ()):
                    hexed(link)
    return orjson.dumps(data)


def framed(messages: list[bytes], varint: bool) -> bytes:
    out = b""
    for message in messages:
        if varint:
            length, prefix = len(message), b""
            while True:
                byte, length = length & 0x7F, length >> 7
                prefix += bytes([byte | (0x80 if length else 0)])
                if not length:
                    break
            out += prefix + message
        else:
            out += len(message).to_bytes(4, "big") + message
    return out


def records(path: Path, offset: int = 0) -> list:
    return list(collector.collect(Source(path, offset)))


def kinds(recs: list) -> list:
    return [r for r in recs if type(r) in (Span, SpanLink)]


@pytest.mark.parametrize("layout", ["single", "collector", "delimited"])
def test_every_layout_gives_what_the_same_request_gives_as_otlp_json(tmp_path, layout):
    message = sdk_request("orders")
    json_path = tmp_path / "same.json"
    json_path.write_bytes(as_otlp_json(message))
    expected = kinds(list(OtlpJsonCollector().collect(Source(json_path))))
    assert len([r for r in expected if type(r) is Span]) == 6
    assert len([r for r in expected if type(r) is SpanLink]) == 1

    path = tmp_path / "traces.binpb"
    if layout == "single":
        path.write_bytes(message)
    else:
        path.write_bytes(framed([message], varint=layout == "delimited"))
    assert collector.detect(path.read_bytes()[:1024])
    got = records(path)
    assert kinds(got) == expected
    assert got[-1] == Checkpoint(path.stat().st_size)
    failing = next(r for r in got if type(r) is Span and r.status == 2)
    assert (failing.http_method, failing.http_status, failing.server_address) == (
        "POST",
        503,
        "billing",
    )
    assert failing.status_message == "upstream unavailable"
    assert orjson.loads(failing.attributes) == {"retry": True, "weight": 0.5, "tags": ["a", "b"]}


@pytest.mark.parametrize("varint", [False, True], ids=["collector", "delimited"])
def test_a_growing_framed_file_is_read_on_from_its_last_whole_message(tmp_path, varint):
    first, second = sdk_request("orders", 1), sdk_request("billing", 1)
    path = tmp_path / "traces.pb"
    whole = framed([first, second], varint)
    cut = len(framed([first], varint))
    path.write_bytes(whole[: cut + 10])  # the second message is still being written
    got = records(path)
    assert {r.service for r in got if type(r) is Span} == {"orders"}
    assert got[-1] == Checkpoint(cut)
    path.write_bytes(whole)
    rest = records(path, cut)
    assert {r.service for r in rest if type(r) is Span} == {"billing"}
    assert rest[-1] == Checkpoint(len(whole))


def test_a_file_truncated_while_it_is_read_quarantines_what_is_gone_and_never_crashes(tmp_path):
    messages = [sdk_request(name, 1) for name in ("orders", "billing", "stock")]
    path = tmp_path / "traces.pb"
    path.write_bytes(framed(messages, varint=False))
    reading = OtlpProtoCollector().collect(Source(path))
    first = next(reading)  # the frames are known now; then a rotation truncates the file
    cut = len(framed(messages[:1], varint=False)) + 10
    with path.open("r+b") as handle:
        handle.truncate(cut)
    got = [first, *reading]
    assert {r.service for r in got if type(r) is Span} == {"orders"}
    gone = [r for r in got if type(r) is Quarantined]
    assert len(gone) == 2 and all("does not decode" in q.reason for q in gone)
    assert got[-1] == Checkpoint(len(framed(messages, varint=False)))


def test_a_message_that_does_not_decode_is_quarantined_and_the_others_read(tmp_path):
    good = sdk_request("orders", 1)
    bad = b"\x0a\xff\xff\xff\x0f" + b"\x00" * 20  # resource_spans claiming 4 GiB
    path = tmp_path / "traces.pb"
    path.write_bytes(framed([good, bad, good], varint=False))
    got = records(path)
    (quarantined,) = [r for r in got if type(r) is Quarantined]
    assert quarantined.position == f"byte {4 + len(good) + 4}"
    assert "does not decode" in quarantined.reason
    assert len([r for r in got if type(r) is Span]) == 6  # both good ones (the same spans twice)


def test_a_span_with_a_short_id_is_quarantined_with_its_position(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(sdk_request("orders", 1))
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02\x03"
    path = tmp_path / "one.binpb"
    path.write_bytes(request.SerializeToString())
    got = records(path)
    (quarantined,) = [r for r in got if type(r) is Quarantined]
    assert quarantined.position == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert quarantined.reason == "trace_id '010203' is not 16 bytes (nor non-zero)"
    assert len([r for r in got if type(r) is Span]) == 2


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("trace_id", bytes(16), "trace_id '" + "00" * 16 + "' is not 16 bytes (nor non-zero)"),
        ("span_id", b"\x01" * 4, "span_id '01010101' is not 8 bytes (nor non-zero)"),
        ("span_id", bytes(8), "span_id '" + "00" * 8 + "' is not 8 bytes (nor non-zero)"),
        ("parent_span_id", b"\x07" * 3, "parent_span_id '070707' is not 8 bytes"),
        ("start_time_unix_nano", 0, "start_time_unix_nano is not set"),
        ("kind", 9, "kind 9 is not a span kind"),
        ("status.code", 7, "status code 7 is not a span status"),
    ],
)
def test_a_span_that_cannot_be_stored_is_quarantined_with_the_reason(
    tmp_path, field, value, reason
):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(sdk_request("orders", 1))
    span = request.resource_spans[0].scope_spans[0].spans[2]
    target, _, name = field.rpartition(".")
    setattr(getattr(span, target) if target else span, name, value)
    path = tmp_path / "one.binpb"
    path.write_bytes(request.SerializeToString())
    got = records(path)
    (quarantined,) = [r for r in got if type(r) is Quarantined]
    assert (quarantined.position, quarantined.reason) == (
        "resourceSpans[0].scopeSpans[0].spans[2]",
        reason,
    )
    assert len([r for r in got if type(r) is Span]) == 2


def test_compressed_and_foreign_files_are_quarantined_whole(tmp_path):
    zstd = tmp_path / "traces.pb.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(40)))
    (quarantined, checkpoint) = records(zstd)
    assert quarantined.position == "byte 0" and "zstd" in quarantined.reason
    assert checkpoint == Checkpoint(44)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    (quarantined, _) = records(noise)
    assert quarantined.reason == "not an OTLP ExportTraceServiceRequest (nor framed ones)"


def test_detect_claims_protobuf_and_no_text():
    message = sdk_request("orders", 1)
    assert collector.detect(message[:1024])
    assert collector.detect(framed([message], varint=False)[:1024])
    assert collector.detect(framed([message], varint=True)[:1024])
    assert not collector.detect(b'{"resourceSpans": []}')
    assert not collector.detect(b'\n127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0"')
    assert not collector.detect(b"\x28\xb5\x2f\xfd\x00\x01")
    assert not collector.detect("\nlog line, cut inside é".encode()[:-1])


def test_ingest_stores_every_span_once(engine, tmp_path):
    path = tmp_path / "traces.pb"
    path.write_bytes(framed([sdk_request("orders"), sdk_request("billing")], varint=False))
    registry = Registry([OtlpProtoCollector()])
    result = ingest(engine, [path], registry)
    assert (result.inserted, result.quarantined, result.reports[0].collector) == (
        12,
        0,
        "otlp_proto",
    )
    assert ingest(engine, [path], registry).inserted == 0
    assert sorted({s.service for s in stored_spans(engine)}) == ["billing", "orders"]
