"""Connector metrics files as the OpenTelemetry Collector's ``file`` exporter writes them (one
OTLP/JSON export per line, or protobuf messages after a 4-byte length), and the other layouts
the trace files come in: detected per file, read as ``POST /v1/metrics`` reads a body, each bad
line or message quarantined at its place, and a file both pipelines write read whole by either
signal's collector."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from clew.records import Checkpoint, MetricPoint, Quarantined, Resource, Span
from collectors import Source, load_registry, otlp_wire
from collectors.otlp_json import OtlpJsonCollector
from collectors.otlp_metrics import read_protobuf
from collectors.otlp_metrics_files import OtlpMetricsJsonCollector, OtlpMetricsProtoCollector
from collectors.otlp_proto import OtlpProtoCollector
from tests import otlp
from tests.clew.test_otlp_metrics import SECOND, T0, ServiceGraph, SpanMetrics, _traced_calls
from tests.collectors.wire import varint as varint_bytes

JSON, PROTO = OtlpMetricsJsonCollector(), OtlpMetricsProtoCollector()
#: An exemplar as the Collector's JSON marshaler writes it: ids in hex, not base64.
EXEMPLAR = {
    "timeUnixNano": str(T0),
    "asDouble": 0.004,
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "eee19b7ec3c1b174",
}


def exports() -> list[ExportMetricsServiceRequest]:
    """Three exports of the two connectors, as the SDK encodes them."""
    graph, checkout = ServiceGraph(), SpanMetrics("checkout")
    out = []
    for n in range(3):
        graph.calls("frontend", "checkout", [0.01 * (n + 1)] * 4, failed=1)
        checkout.spans("GET /orders/{id}", "SERVER", [12.0] * 3)
        at = T0 + (10 + 60 * n) * SECOND
        out += [encode_metrics(graph.collect(at)), encode_metrics(checkout.collect(at))]
    return out


def framed(messages: list[bytes], varint: bool = False) -> bytes:
    """Messages as the file exporter writes them in ``format: proto`` (a 4-byte big-endian
    length before each), or delimited (a varint length before each)."""
    return b"".join(
        (varint_bytes(len(m)) if varint else len(m).to_bytes(4, "big")) + m for m in messages
    )


def json_line(message) -> bytes:
    """One export as the file exporter writes it in ``format: json``: camelCase, 64-bit
    integers as strings, enums as numbers, an exemplar's ids in hex; and its newline."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    for scope in document["resourceMetrics"][0]["scopeMetrics"]:
        for metric in scope["metrics"]:
            if "histogram" in metric:
                metric["histogram"]["dataPoints"][0]["exemplars"] = [EXEMPLAR]
    return orjson.dumps(document) + b"\n"


def points_of(records: list) -> list:
    return [r for r in records if type(r) in (MetricPoint, Resource)]


def read(collector, path: Path, offset: int = 0, growing: bool = False) -> list:
    return list(collector.collect(Source(path, offset, growing)))


def expected(messages) -> list:
    return [r for m in messages for r in read_protobuf(m.SerializeToString()).records]


@pytest.mark.parametrize(
    "layout", ["json lines", "json document", "proto collector", "proto delimited", "proto one"]
)
def test_every_layout_is_detected_and_read_as_the_receiver_reads_its_exports(tmp_path, layout):
    messages = exports()
    if layout == "json document":
        messages = messages[:1]
    path = tmp_path / "metrics.out"
    if layout == "json lines":
        path.write_bytes(b"".join(json_line(m) for m in messages))
    elif layout == "json document":
        document = json_format.MessageToDict(messages[0], use_integers_for_enums=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    elif layout == "proto one":
        messages = messages[:1]
        path.write_bytes(messages[0].SerializeToString())
    else:
        wire = [m.SerializeToString() for m in messages]
        path.write_bytes(framed(wire, varint=layout == "proto delimited"))
    collector = load_registry().detect(path)
    assert collector is not None
    assert collector.name == ("otlp_metrics_json" if "json" in layout else "otlp_metrics_proto")
    got = read(collector, path)
    assert points_of(got) == expected(messages)
    assert any(type(r) is MetricPoint for r in got)
    assert [r for r in got if type(r) is Quarantined] == []
    checkpoints = [r.offset for r in got if type(r) is Checkpoint]
    assert checkpoints[-1] == path.stat().st_size
    if layout in ("json lines", "proto collector", "proto delimited"):
        assert len(checkpoints) == len(messages)  # one per request: a resumed read starts there
        rest = read(collector, path, checkpoints[1])
        assert points_of(rest) == expected(messages[2:])


def test_trace_files_stay_the_trace_collectors_and_metrics_files_are_not_theirs(tmp_path):
    registry = load_registry()
    spans = encode_spans(_traced_calls(2)).SerializeToString()
    metrics = exports()[0].SerializeToString()
    for name, data, collector in (
        ("traces.pb", framed([spans]), "otlp_proto"),
        ("traces.jsonl", orjson.dumps(otlp.request({"shop": [otlp.span(1, 1)]})), "otlp_json"),
        ("metrics.pb", framed([metrics]), "otlp_metrics_proto"),
        ("metrics.binpb", metrics, "otlp_metrics_proto"),
    ):
        (tmp_path / name).write_bytes(data)
        assert registry.detect(tmp_path / name).name == collector, name
    assert not OtlpProtoCollector().detect(framed([metrics]))
    assert not PROTO.detect(framed([spans])) and not PROTO.detect(b'{"resourceMetrics": []}')
    assert not JSON.detect(orjson.dumps(otlp.request({"shop": [otlp.span(1, 1)]})))
    assert otlp_wire.message_signal(spans) == otlp_wire.TRACES
    assert otlp_wire.message_signal(metrics) == otlp_wire.METRICS
    assert otlp_wire.head_signal(framed([metrics], varint=True)) == otlp_wire.METRICS
    assert otlp_wire.message_signal(b"\x0a\x02\x0a\x00") is None  # a resource and nothing more


def test_every_bad_line_is_quarantined_at_its_line_with_the_reason_and_the_rest_is_read(
    tmp_path,
):
    good, spanmetrics = exports()[:2]
    bad_unit = ExportMetricsServiceRequest.FromString(good.SerializeToString())
    for metric in bad_unit.resource_metrics[0].scope_metrics[0].metrics:
        if metric.name == "traces_service_graph_request_client":
            metric.unit = "By"
    logs = b'{"resourceLogs": [{"scopeLogs": []}]}\n'
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(
        json_line(good)
        + b'{"resourceMetrics": [{"scopeMetrics": \n'
        + logs
        + b"\n"
        + json_line(bad_unit)
        + b'{"resourceMetrics": [{"scopeMetrics": 3}]}\n'
        + json_line(spanmetrics)
    )
    got = read(JSON, path)
    quarantined = [(q.position, q.reason) for q in got if type(q) is Quarantined]
    assert quarantined[0][0] == "line 2" and quarantined[0][1].startswith("invalid JSON at column")
    assert quarantined[1] == (
        "line 3",
        "not an OTLP ExportMetricsServiceRequest: no resourceMetrics list",
    )
    where = "resourceMetrics[0].scopeMetrics[0].metrics[2] 'traces_service_graph_request_client'"
    unit = "the unit 'By' is not a unit of time (s, ms, us, ns)"
    assert quarantined[2:4] == [
        (f"line 5: {where} dataPoints[0]", unit),
        (f"line 5: {where} dataPoints[1]", unit),  # the failed calls' series
    ]
    assert quarantined[4][0] == "line 6"
    assert "not an OTLP ExportMetricsServiceRequest" in quarantined[4][1]
    assert len(quarantined) == 5
    # Lines 1 and 7 whole, line 5 but for its unusable points; line 4 is blank.
    kept = points_of(got)
    whole = expected([good, spanmetrics])
    assert kept[: len(expected([good]))] == expected([good])
    assert kept[-len(expected([spanmetrics])) :] == expected([spanmetrics])
    assert len(kept) == len(whole) + len(expected([good])) - 2
    # A read resumed after line 3 still names line 5 by its number.
    third = sum(len(line) + 1 for line in path.read_bytes().split(b"\n")[:3])
    resumed = [q.position for q in read(JSON, path, third) if type(q) is Quarantined]
    assert resumed[0].startswith("line 5: ")


def test_a_half_written_last_line_or_message_waits_for_the_next_read(tmp_path):
    messages = exports()[:3]
    lines = [json_line(m) for m in messages]
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(lines[0] + lines[1] + lines[2][:40])
    got = read(JSON, path, growing=True)
    assert got[-1] == Checkpoint(len(lines[0]) + len(lines[1]))
    assert points_of(got) == expected(messages[:2])
    frames = [m.SerializeToString() for m in messages]
    binary = tmp_path / "metrics.pb"
    whole = framed(frames)
    cut = len(framed(frames[:2]))
    binary.write_bytes(whole[: cut + 3])  # even read once, a message cut short is left
    got = read(PROTO, binary)
    assert got[-1] == Checkpoint(cut) and points_of(got) == expected(messages[:2])
    binary.write_bytes(whole)
    assert points_of(read(PROTO, binary, cut)) == expected(messages[2:])


def test_a_lost_framing_and_a_compressed_file_are_quarantined_with_the_reason(tmp_path):
    first = exports()[0].SerializeToString()
    path = tmp_path / "metrics.pb"
    path.write_bytes(framed([first]) + bytes(4) + first)  # a frame of no bytes
    got = read(PROTO, path)
    assert points_of(got) == expected([exports()[0]])
    (bad,) = [r for r in got if type(r) is Quarantined]
    assert bad.position == f"byte {len(first) + 4}"
    assert bad.reason == (
        "a frame announces a message of 0 bytes (none, or more than 20 MiB):"
        " the framing is lost, the rest of the file is not read"
    )
    assert got[-1] == Checkpoint(path.stat().st_size)
    zstd = tmp_path / "metrics.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + first)
    (bad,) = [r for r in read(PROTO, zstd) if type(r) is Quarantined]
    assert (bad.position, bad.reason[:15]) == ("byte 0", "zstd-compressed")
    garbage = tmp_path / "one.pb"
    garbage.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    (bad,) = [r for r in read(PROTO, garbage) if type(r) is Quarantined]
    assert bad.position == "byte 0" and bad.reason.endswith("(nor framed ones)")


@pytest.mark.parametrize("first", ["traces", "metrics"])
def test_a_file_both_pipelines_write_is_read_whole_by_either_signals_collector(tmp_path, first):
    """One file exporter in a traces and a metrics pipeline: the Collector shares it, and its
    file holds both, in either order."""
    metrics = exports()[:2]
    spans = otlp.request({"shop": [otlp.span(7, 1, kind=2, name="GET /cart")]})
    proto_spans = encode_spans(_traced_calls(1)).SerializeToString()
    json_lines = [orjson.dumps(spans) + b"\n", *(json_line(m) for m in metrics)]
    frames = [proto_spans, *(m.SerializeToString() for m in metrics)]
    if first == "metrics":
        json_lines.reverse()
        frames.reverse()
    text, binary = tmp_path / "both.jsonl", tmp_path / "both.pb"
    text.write_bytes(b"".join(json_lines))
    binary.write_bytes(framed(frames))
    in_order = metrics if first == "traces" else metrics[::-1]
    points = [r for r in expected(in_order) if type(r) is MetricPoint]
    registry = load_registry()
    json_reader = "otlp_json" if first == "traces" else "otlp_metrics_json"
    proto_reader = "otlp_proto" if first == "traces" else "otlp_metrics_proto"
    assert (registry.detect(text).name, registry.detect(binary).name) == (json_reader, proto_reader)
    for path, readers in ((text, (OtlpJsonCollector(), JSON)), (binary, (PROTO,))):
        for collector in (*readers, registry.detect(path)):
            got = read(collector, path)
            assert [r for r in got if type(r) is Quarantined] == [], (path, collector.name)
            assert [r for r in got if type(r) is MetricPoint] == points
            assert len([r for r in got if type(r) is Span]) == (1 if path == text else 2)
    proto_got = read(OtlpProtoCollector(), binary)
    assert [r for r in proto_got if type(r) is Quarantined] == []
    assert [r for r in proto_got if type(r) is MetricPoint] == points


def test_a_long_metric_name_is_cut_short_in_a_quarantine_position(tmp_path):
    message = exports()[1]  # spanmetrics: its namespace is the deployment's to choose
    for metric in message.resource_metrics[0].scope_metrics[0].metrics:
        metric.name = "a" * 240 + "." + metric.name.rsplit(".", 1)[-1]
        if metric.name.endswith("duration"):
            metric.unit = "By"
    path = tmp_path / "metrics.pb"
    path.write_bytes(framed([message.SerializeToString()]))
    (bad,) = [r for r in read(PROTO, path) if type(r) is Quarantined]
    assert bad.reason.startswith("the unit 'By'") and len(bad.position) < 200
    assert f"'{'a' * 99}…' dataPoints[0]" in bad.position
