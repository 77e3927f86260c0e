"""The OTLP/JSON collector on the shared corpus as it is, and on the format's edge cases."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.demo import generator
from clew.records import (
    UNKNOWN_SERVICE,
    Checkpoint,
    Quarantined,
    Resource,
    Span,
    SpanKind,
    SpanLink,
    StatusCode,
)
from collectors import Source, lines, otlp_json, semconv
from collectors.otlp_json import (
    OtlpJsonCollector,
    _guarded,
    records_of_request,
    typed_records,
)
from collectors.semconv import normalise
from tests import otlp
from tests.collectors import strategies
from tests.collectors.spans import spans_of
from tests.conftest import SAMPLE_END_NS, corpus, examples

collector = OtlpJsonCollector()


def records(path: Path, offset: int = 0) -> list:
    return list(collector.collect(Source(path, offset)))


def test_demo_capture_gives_every_span_with_its_service():
    recs = records(corpus("otlp_json", "error_timeout_masked.json"))
    spans = spans_of(recs)
    assert Counter(s.service for s in spans) == {
        "frontend": 10,
        "frontend-proxy": 6,
        "cart": 6,
        "load-generator": 2,
        "product-catalog": 2,
    }
    assert not [r for r in recs if type(r) is Quarantined]
    assert len({(s.trace_id, s.span_id) for s in spans}) == 26
    errors = [s for s in spans if s.status == StatusCode.ERROR]
    assert len(errors) == 1 and errors[0].service == "frontend-proxy"  # Envoy route timeout
    # intValue strings become integers; HTTP fields are lifted out of the attributes
    assert all(s.http_status is None or isinstance(s.http_status, int) for s in spans)
    assert any(s.http_status == 200 for s in spans)


def test_uppercase_hex_ids_are_lowercased():
    (span,) = spans_of(records(corpus("otlp_json", "trace.json")))
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.service == "my.service"
    assert span.kind == SpanKind.SERVER


def test_enum_names_are_accepted_for_kind_and_status():
    spans = spans_of(records(corpus("otlp_json", "sibling_errors.json")))
    assert len(spans) == 6
    assert Counter(s.kind for s in spans) == {SpanKind.CLIENT: 5, SpanKind.SERVER: 1}
    assert sum(s.status == StatusCode.ERROR for s in spans) == 5
    root = next(s for s in spans if s.parent_span_id is None)
    assert root.status_message == "order failed"


def test_resource_without_service_name_becomes_unknown_service():
    recs = records(corpus("otlp_json", "otlp2jaeger-in-error.json"))
    (span,) = spans_of(recs)
    assert span.service == UNKNOWN_SERVICE
    assert Resource(UNKNOWN_SERVICE, None, None, None) in recs
    # empty status {} is UNSET; peer.service and net.peer.ip normalised to current names
    assert span.status == StatusCode.UNSET
    assert span.peer_service == "telemetrygen-client"
    assert span.server_address is None  # a SERVER span: the peer is the client, not the server
    assert orjson.loads(span.attributes)["network.peer.address"] == "1.2.3.4"


def test_links_and_all_kinds_in_jaeger_fixture():
    recs = records(corpus("otlp_json", "otel_traces_01.json"))
    spans = spans_of(recs)
    assert {s.kind for s in spans} == {2, 3, 4, 5}
    links = [r for r in recs if type(r) is SpanLink]
    assert len(links) == 8
    assert all(len(link.linked_trace_id) == 32 for link in links)


def test_a_document_that_is_not_otlp_is_quarantined_not_crashed():
    recs = records(corpus("otlp_json", "error_timeout_masked.manifest.json"))
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert "no resourceSpans" in bad.reason
    assert bad.position == "document"
    manifest = corpus("otlp_json", "error_timeout_masked.manifest.json")
    assert not collector.detect(manifest.read_bytes())


def test_bad_spans_are_quarantined_with_their_position_and_the_rest_kept():
    good = otlp.span(1, 1, kind=2)
    bad_trace = otlp.span(1, 2) | {"traceId": "xyz"}
    zero_span = otlp.span(1, 3) | {"spanId": "0000000000000000"}
    no_start = otlp.span(1, 4)
    del no_start["startTimeUnixNano"]
    req = otlp.request({"svc": [good, bad_trace, zero_span, no_start]})
    recs = list(records_of_request(req, "line 3: "))
    assert [s.span_id for s in spans_of(recs)] == [f"{1:016x}"]
    quarantined = [r for r in recs if type(r) is Quarantined]
    assert [q.position for q in quarantined] == [
        "line 3: resourceSpans[0].scopeSpans[0].spans[1]",
        "line 3: resourceSpans[0].scopeSpans[0].spans[2]",
        "line 3: resourceSpans[0].scopeSpans[0].spans[3]",
    ]
    assert "traceId" in quarantined[0].reason
    assert "spanId" in quarantined[1].reason
    assert "startTimeUnixNano" in quarantined[2].reason


def test_numbers_may_be_json_numbers_or_strings():
    s = otlp.span(7, 7, kind=3)
    s["startTimeUnixNano"] = otlp.BASE_NS
    s["endTimeUnixNano"] = str(otlp.BASE_NS + 5_000)
    s["attributes"] = [{"key": "http.status_code", "value": {"intValue": 503}}]
    (span,) = spans_of(list(records_of_request(otlp.request({"a": [s]}), "")))
    assert span.duration_ns == 5_000
    assert span.http_status == 503


def test_both_semantic_convention_generations_normalise_to_the_current_names():
    legacy_client = normalise(
        {
            "http.method": "GET",
            "http.status_code": 200,
            "http.target": "/v1/orders/7?x=1",
            "net.peer.name": "orders.internal",
            "db.system": "postgresql",
            "peer.service": "orders",
            "messaging.destination": "topic-a",
        },
        SpanKind.CLIENT,
    )
    assert legacy_client == {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.path": "/v1/orders/7",
        "server.address": "orders.internal",
        "db.system.name": "postgresql",
        "service.peer.name": "orders",
        "messaging.destination.name": "topic-a",
    }
    legacy_server = normalise({"net.peer.name": "10.0.0.1", "net.host.name": "me"}, SpanKind.SERVER)
    assert legacy_server == {"client.address": "10.0.0.1", "server.address": "me"}
    # the current name wins when both are present
    assert normalise({"http.method": "GET", "http.request.method": "POST"}, 3) == {
        "http.request.method": "POST"
    }


def test_one_request_per_line_with_a_bad_line_in_the_middle(tmp_path: Path):
    path = tmp_path / "export.jsonl"
    otlp.write_lines(path, [otlp.request({"a": [otlp.span(1, 1, kind=2)]})])
    with path.open("ab") as handle:
        handle.write(b'{"resourceSpans": [ truncated\n')
    otlp.write_lines(path, [otlp.request({"b": [otlp.span(2, 1, kind=2)]})], mode="ab")
    recs = records(path)
    assert [s.service for s in spans_of(recs)] == ["a", "b"]
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert bad.position == "line 2" and "invalid JSON" in bad.reason
    checkpoints = [r.offset for r in recs if type(r) is Checkpoint]
    assert checkpoints[-1] == path.stat().st_size
    # resuming from the second line's checkpoint yields only what follows, with true line numbers
    resumed = records(path, checkpoints[0])
    assert [s.service for s in spans_of(resumed)] == ["b"]
    assert [r.position for r in resumed if type(r) is Quarantined] == ["line 2"]


def test_a_broken_pretty_printed_document_is_quarantined_with_line_and_column(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceSpans": [\n    {"resource": }\n  ]\n}\n')
    (bad,) = [r for r in records(path) if type(r) is Quarantined]
    assert bad.position.startswith("line 3 column")


json_values = strategies.json_values(text=20, keys=12, items=4, leaves=20)
span_fields = st.fixed_dictionaries(
    {},
    optional={
        "traceId": st.sampled_from(["", "0" * 32, "ab" * 16, "AB" * 16, "zz"]) | json_values,
        "spanId": st.sampled_from(["", "0" * 16, "cd" * 8]) | json_values,
        "parentSpanId": st.sampled_from(["", "ef" * 8]) | json_values,
        "kind": st.sampled_from([0, 2, 9, "SPAN_KIND_CLIENT", "bogus"]) | json_values,
        "startTimeUnixNano": st.sampled_from(["1", "17000", 5, -1]) | json_values,
        "endTimeUnixNano": json_values,
        "status": json_values,
        "attributes": json_values,
        "links": json_values,
        "name": json_values,
    },
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(span_fields, max_size=4),
    st.one_of(json_values, st.fixed_dictionaries({"attributes": json_values})),
)
def test_any_json_gives_spans_or_quarantine_never_an_exception(spans, resource):
    request = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    recs = list(records_of_request(request, ""))
    emitted = [r for r in recs if type(r) in (Span, Quarantined)]
    assert len(emitted) == len(spans)  # every span is accounted for, one way or the other
    for r in recs:
        if type(r) is Span:
            assert len(r.trace_id) == 32 and len(r.span_id) == 16 and r.duration_ns >= 0


# --- The typed fast path gives the same records as the dict path --------------------------------


def dict_path_records(data: bytes) -> list:
    """What the dict path (orjson + ``records_of_request``) gives for one request."""
    return list(_guarded(orjson.loads(data), ""))


def assert_same_records(data: bytes) -> list | None:
    fast = typed_records(data)
    if fast is not None:
        assert fast == dict_path_records(data)
        # same types too (a Span equals a tuple of its fields)
        assert [type(r) for r in fast] == [type(r) for r in dict_path_records(data)]
    return fast


def test_fast_path_matches_dict_path_on_the_corpus():
    taken = 0
    for path in sorted(corpus("otlp_json").glob("*.json")):
        data = path.read_bytes()
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        taken += assert_same_records(data) is not None
    assert taken >= 5  # the real captures do take the fast path


def test_fast_path_matches_dict_path_on_the_sample_landscape(tmp_path: Path):
    generator().generate(tmp_path, end_ns=SAMPLE_END_NS, traces=100)
    lines = [line for line in (tmp_path / "traces.otlp.jsonl").read_bytes().splitlines() if line]
    assert lines
    assert all(assert_same_records(line) is not None for line in lines)


def test_collect_gives_the_same_records_with_and_without_the_fast_path(tmp_path, monkeypatch):
    generator().generate(tmp_path, end_ns=SAMPLE_END_NS, traces=30)
    path = tmp_path / "traces.otlp.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"resourceSpans": [ truncated\n')
    fast = records(path)
    monkeypatch.setattr(otlp_json, "typed_records", lambda data: None)
    assert fast == records(path)


def test_irregular_shapes_fall_back_to_the_dict_path():
    span = otlp.span(1, 1, kind=2)
    two_fields = {"key": "k", "value": {"intValue": "1", "stringValue": "a"}}
    bad = [
        otlp.request({"a": [span | {"traceId": "xyz"}]}),  # quarantined: dict path owns reasons
        otlp.request({"a": [span | {"attributes": [two_fields]}]}),  # first key wins: order
        otlp.request({"a": [span | {"futureField": 1}]}),  # unknown field: not validated
        otlp.request({"a": [span | {"kind": True}]}),
    ]
    for request in bad:
        assert typed_records(orjson.dumps(request)) is None
    big = otlp.request({"a": [span | {"attributes": [{"key": "n", "value": {"intValue": 0}}]}]})
    data = orjson.dumps(big).replace(b'"intValue":0', b'"intValue":' + b"9" * 25)
    assert typed_records(data) is None  # orjson reads it as a float
    assert typed_records(b'{"resourceSpans": [], "x": "\xff"}') is None  # not UTF-8
    assert typed_records(b'{"resourceSpans": [], "x": 1e400}') is None  # orjson: infinity


any_values = st.deferred(
    lambda: st.one_of(
        st.builds(lambda v: {"stringValue": v}, st.text(max_size=8)),
        st.builds(lambda v: {"intValue": v}, st.integers() | st.text("0123-x", max_size=4)),
        st.builds(lambda v: {"boolValue": v}, st.booleans()),
        st.builds(lambda v: {"doubleValue": v}, st.floats(allow_nan=False) | st.integers()),
        st.builds(lambda v: {"bytesValue": v}, st.text(max_size=8)),
        st.builds(lambda v: {"arrayValue": {"values": v}}, st.lists(any_values, max_size=3)),
        st.builds(lambda v: {"kvlistValue": {"values": v}}, st.lists(key_value, max_size=3)),
        st.dictionaries(
            st.sampled_from(["stringValue", "intValue", "boolValue"]), json_values, max_size=2
        ),
    )
)
legacy_keys = st.sampled_from(
    [
        *semconv.LEGACY_NAMES,
        *("net.peer.name", "net.peer.port", "net.host.name", "http.target", "x"),
        *("http.request.method", "url.path", "server.address", "network.peer.address"),
    ]
)
key_value = st.builds(
    lambda k, v: {"key": k, "value": v}, legacy_keys | st.text(max_size=6), any_values | st.none()
)
regular_spans = st.builds(
    lambda fields, attributes, kind, status: (
        otlp.span(1, 1, kind=kind) | {"attributes": attributes, "status": status} | fields
    ),
    span_fields,
    st.lists(key_value, max_size=6),
    st.sampled_from([0, 1, 2, 3, 4, 5, "SPAN_KIND_SERVER"]),
    st.sampled_from([{}, {"code": 2, "message": "boom"}, {"code": "STATUS_CODE_OK"}, None]),
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(regular_spans | span_fields, max_size=4),
    st.one_of(json_values, st.fixed_dictionaries({"attributes": st.lists(key_value)})),
)
def test_fast_path_matches_dict_path_on_any_request(spans, resource):
    request = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    try:
        data = orjson.dumps(request)
    except TypeError:  # an integer beyond 64 bits: not JSON orjson writes
        data = json.dumps(request).encode()
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    assert_same_records(data)


@given(
    text=st.lists(st.sampled_from([b"\n", b"a", b"{}", b"\r\n", b"xyz" * 5])).map(b"".join),
    block=st.integers(min_value=1, max_value=9),
)
def test_lines_are_split_across_read_blocks_exactly_as_the_file_has_them(text, block):
    parts = text.split(b"\n")
    want = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines, "READ_BYTES", block)
        # Each line is a view of a buffer that the next read overwrites: copied as it comes.
        assert [bytes(line) for line in lines.split_lines(io.BytesIO(text))] == want


@pytest.mark.parametrize("block", [1, 7, 100, lines.READ_BYTES])
def test_lines_read_in_any_block_size_give_the_same_records_and_blank_lines_only_a_checkpoint(
    tmp_path: Path, block: int
):
    path = tmp_path / "export.jsonl"
    otlp.write_lines(path, [otlp.request({"a": [otlp.span(1, 1, kind=2)]})])
    with path.open("ab") as handle:
        handle.write(b"\n  \t\r\n" + b'{"resourceSpans": [ truncated\n')
    otlp.write_lines(path, [otlp.request({"b": [otlp.span(2, 1, kind=2)]})], mode="ab")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines, "READ_BYTES", block)
        recs = records(path)
    assert [s.service for s in spans_of(recs)] == ["a", "b"]
    assert [r.position for r in recs if type(r) is Quarantined] == ["line 4"]
    assert len([r for r in recs if type(r) is Checkpoint]) == 5
    assert recs == records(path)
