"""The Jaeger JSON collector on the shared corpus as it is, and on the format's edge cases."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from clew.pipeline import ingest
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
from collectors import Registry, Source
from collectors.jaeger_json import JaegerJsonCollector, records_of_document, span_of
from tests.collectors import strategies
from tests.collectors.spans import attributes, spans_of
from tests.conftest import corpus, examples
from tests.stored import stored_spans

collector = JaegerJsonCollector()

UI_TRACE = "00000000000000000000000000000001"


def records(path: Path) -> list:
    return list(collector.collect(Source(path)))


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {s.name: s for s in spans}


def tag(key: str, value: object, kind: str = "string") -> dict:
    return {"key": key, "type": kind, "value": value}


def jspan(span_id: str = "a1", trace_id: str = "f00d", **fields: object) -> dict:
    """A Jaeger JSON span of process ``p1``, with ``fields`` added or replaced."""
    out: dict = {
        "traceID": trace_id,
        "spanID": span_id,
        "operationName": "op",
        "references": [],
        "startTime": 1_700_000_000_000_000,
        "duration": 1_500,
        "tags": [],
        "processID": "p1",
    }
    out.update(fields)
    return out


def trace(*spans: object, service: str = "svc", process_tags: list | None = None) -> dict:
    processes = {"p1": {"serviceName": service, "tags": process_tags or []}}
    return {"traceID": "f00d", "spans": list(spans), "processes": processes}


def one_span(raw: dict) -> Span:
    (span,) = spans_of(list(records_of_document(trace(raw))))
    return span


def sha_id(original: str, digits: int) -> str:
    return hashlib.sha256(original.encode()).hexdigest()[:digits]


# --- The corpus, file by file -----------------------------------------------------------------


def test_single_trace_layout_pads_16_digit_ids_and_quarantines_a_second_span_of_one_id():
    recs = records(corpus("jaeger_json", "ui_01.json"))
    spans = spans_of(recs)
    # the fixture gives spanID 0002 to two different spans: the store keeps one span per id,
    # and which one the children meant cannot be told, so the second is quarantined
    (repeat,) = [r for r in recs if type(r) is Quarantined]
    assert repeat.position == "spans[1]"
    assert repeat.reason == (
        "spanID '0000000000000002' is already used in this trace by a different span at"
        " spans[0], which is kept"
    )
    assert '"operationName":"some-operation"' in repeat.excerpt
    assert recs[-1] == Checkpoint(corpus("jaeger_json", "ui_01.json").stat().st_size)
    assert [s.span_id for s in spans] == [
        "0000000000000002",
        "0000000000000003",
        "0000000000000004",
        "0000000000000005",
    ]
    assert {s.trace_id for s in spans} == {UI_TRACE}
    assert [s.service for s in spans] == ["service-x"] + ["service-y"] * 3
    # each process's Resource comes before the first span of its service
    assert [type(r).__name__ for r in recs[:2]] == ["Resource", "Span"]
    assert recs[0] == Resource("service-x", None, None, None)
    y = recs.index(Resource("service-y", None, None, None))
    assert spans_of(recs[:y]) == spans[:1]
    first = spans[0]
    assert (first.name, first.kind, first.status, first.attributes) == (
        "test-general-conversion",
        SpanKind.UNSPECIFIED,
        StatusCode.UNSET,
        None,  # no tags; logs are not kept
    )
    assert first.start_ns == 1_485_467_191_639_875_000
    assert first.duration_ns == 5_000
    assert first.parent_span_id is None
    assert spans[3].name == "preserveParentID-test" and spans[3].duration_ns == 4_000
    assert spans[3].parent_span_id == "0000000000000004"
    assert spans[1].parent_span_id == "0000000000000002"


def test_an_exact_repeat_of_a_span_is_yielded_again_for_the_store_to_skip():
    recs = list(records_of_document(trace(jspan(), jspan())))
    assert not [r for r in recs if type(r) is Quarantined]
    first, again = spans_of(recs)
    assert first == again


def test_the_parent_is_the_first_child_of_in_the_same_trace_and_the_rest_are_links():
    recs = records(corpus("jaeger_json", "ui_01.json"))
    reference_test = by_name(spans_of(recs))["reference-test"]
    # references: CHILD_OF another trace, CHILD_OF 0002 in this trace, FOLLOWS_FROM 0002
    assert reference_test.parent_span_id == "0000000000000002"
    assert [r for r in recs if type(r) is SpanLink] == [
        SpanLink(
            UI_TRACE, "0000000000000004", "000000000000000000000000000000ff", "00000000000000ff"
        ),
        SpanLink(UI_TRACE, "0000000000000004", UI_TRACE, "0000000000000002"),
    ]


def test_lying_tag_types_are_coerced_and_opentracing_names_renamed():
    # the second span of the fixture, the one quarantined for its repeated id, read on its own
    raw = json.loads(corpus("jaeger_json", "ui_01.json").read_bytes())["spans"][1]
    span, _ = span_of(raw, "service-x")
    assert span.status == StatusCode.ERROR  # error: bool true
    assert span.status_message is None
    assert span.peer_service == "service-y"
    assert span.kind == SpanKind.UNSPECIFIED
    assert span.server_address is None  # no kind: the network peer is not known to be the server
    assert attributes(span) == {
        "temperature": 72.5,
        "javascript_limit": 9223372036854775222,  # an int64 given as a string
        "blob": "AAAwOQ==",  # binary: base64 as the file has it
        "network.peer.address": "0.0.91.160",  # peer.ipv4 given as an integer
    }


def test_non_hex_ids_map_to_deterministic_hex_ids_that_still_pair():
    path = corpus("jaeger_json", "tracegraph-testTrace.json")
    recs = records(path)
    assert recs == records(path)  # the same ids on every read
    spans = spans_of(recs)
    assert len(spans) == 11
    assert {s.trace_id for s in spans} == {sha_id("trace-123", 32)}
    ids = {attributes(s)["jaeger.span_id"]: s for s in spans}
    assert set(ids) == {
        *("span-1", "span-2", "span-2_1", "span-3", "span-4", "span-5", "span-6", "span-7"),
        *("span-12", "span-13", "span-14"),
    }
    assert all(attributes(s)["jaeger.trace_id"] == "trace-123" for s in spans)
    assert ids["span-1"].span_id == sha_id("span-1", 16)
    assert all(len(s.span_id) == 16 and len(s.trace_id) == 32 for s in spans)
    assert len({s.span_id for s in spans}) == 11
    parent_of = {
        name: next((k for k, v in ids.items() if v.span_id == s.parent_span_id), None)
        for name, s in ids.items()
    }
    assert parent_of == {
        "span-1": None,
        "span-2": "span-1",
        "span-2_1": "span-1",
        "span-3": "span-1",
        "span-4": "span-3",
        "span-5": "span-4",
        "span-6": "span-1",
        "span-7": "span-6",  # its only reference is FOLLOWS_FROM: that is the parent
        "span-12": "span-1",
        "span-13": "span-12",
        "span-14": "span-12",
    }
    assert not [r for r in recs if type(r) is SpanLink]  # the parent reference is not a link
    kinds = {name: SpanKind(s.kind).name for name, s in ids.items()}
    assert kinds == {
        "span-1": "SERVER",
        "span-2": "CLIENT",
        "span-2_1": "CLIENT",
        "span-3": "CLIENT",
        "span-4": "SERVER",
        "span-5": "UNSPECIFIED",  # no span.kind tag: not guessed
        "span-6": "PRODUCER",
        "span-7": "CONSUMER",
        "span-12": "UNSPECIFIED",
        "span-13": "UNSPECIFIED",
        "span-14": "UNSPECIFIED",
    }
    assert {name for name, s in ids.items() if s.status == StatusCode.ERROR} == {"span-2"}
    assert ids["span-5"].db_system == "sql"  # OpenTracing db.type
    assert {name for name, s in ids.items() if s.service == "service2"} == {
        "span-4",
        "span-5",
        "span-7",
    }
    assert ids["span-7"].start_ns == 1_542_666_453_779_000_000
    assert ids["span-7"].duration_ns == 200_000_000
    assert [r for r in recs if type(r) is Resource] == [
        Resource("service1", None, None, None),
        Resource("service2", None, None, None),
    ]


def test_query_api_data_wrapper():
    recs = records(corpus("jaeger_json", "oltp2jaeger-multi-out.json"))
    spans = spans_of(recs)
    assert [r for r in recs if type(r) is Resource] == [Resource("example-trace", None, None, None)]
    trace_id = "c620759e5d60fafb8ee0922b30e06bc6"
    assert [(s.span_id, s.parent_span_id) for s in spans] == [
        ("26f5ef9dbb885479", "49b8e9efa1e8a3b1"),
        ("e76628f4e6dde174", "49b8e9efa1e8a3b1"),
        ("49b8e9efa1e8a3b1", "eff3153be6b1fb93"),
        ("eff3153be6b1fb93", None),
    ]
    assert {(s.trace_id, s.service, s.kind) for s in spans} == {
        (trace_id, "example-trace", SpanKind.INTERNAL)
    }
    main = by_name(spans)["main"]
    assert (main.start_ns, main.duration_ns) == (1_711_138_246_940_000_000, 176_321_000)
    assert attributes(main) == {"otel.library.name": "widgets", "otel.library.version": "1.2.3"}
    assert not [r for r in recs if type(r) in (SpanLink, Quarantined)]


def test_bare_array_of_spans_with_inline_processes():
    recs = records(corpus("jaeger_json", "trace_success.json"))
    server, client = spans_of(recs)
    assert [r for r in recs if type(r) is Resource] == [
        Resource("16af988c443cff37", None, None, None),
        Resource("3c220036602f839e", None, None, None),
    ]
    assert server.trace_id == client.trace_id == "00000000000000002be38093ead7a083"
    assert (server.span_id, server.parent_span_id) == ("7606ddfe69932d34", "492770a15935810f")
    assert (client.span_id, client.parent_span_id) == ("7bd66f09ba90ea3d", "7606ddfe69932d34")
    assert (server.service, server.kind, server.status) == (
        "16af988c443cff37",
        SpanKind.SERVER,
        StatusCode.UNSET,
    )
    assert (client.service, client.kind, client.status) == (
        "3c220036602f839e",
        SpanKind.CLIENT,
        StatusCode.ERROR,  # error tag typed bool holding the string "true"
    )
    assert client.start_ns == 1_605_223_981_965_074_000 and client.duration_ns == 32_782_000
    assert client.attributes is None  # span.kind and error are used, not kept


def test_detect_claims_jaeger_json_and_never_otlp_or_zipkin():
    for path in corpus("jaeger_json").iterdir():
        assert collector.detect(path.read_bytes()[: 64 * 1024]), path.name
    others = [*corpus("otlp_json").glob("*.json"), *corpus("zipkin_v2").glob("*.json")]
    assert len(others) == 12
    for path in others:
        assert not collector.detect(path.read_bytes()[: 64 * 1024]), path.name
    assert not collector.detect(b'{"traceID": "1"}')  # neither spanID nor the data wrapper
    assert not collector.detect(b'{"resourceSpans": [{"traceID": "1", "spanID": "2"}]}')
    assert collector.detect(b'\xef\xbb\xbf{\n  "data": [{"traceID": "1"')


# --- Layouts, references, tags and status on small documents ---------------------------------


def test_every_layout_gives_the_same_span():
    raw = jspan("a1", process={"serviceName": "svc", "tags": []})
    in_trace = spans_of(list(records_of_document(trace(raw))))
    wrapped = spans_of(list(records_of_document({"data": [trace(raw)], "total": 1})))
    bare = spans_of(list(records_of_document([raw])))
    traces = spans_of(list(records_of_document([trace(raw)])))
    assert in_trace == wrapped == bare == traces
    assert [(s.trace_id, s.span_id, s.service, s.start_ns, s.duration_ns) for s in bare] == [
        (
            "0000000000000000000000000000f00d",
            "00000000000000a1",
            "svc",
            1_700_000_000 * 10**9,
            1_500_000,
        )
    ]


def test_follows_from_is_the_parent_only_without_a_child_of_in_the_same_trace():
    follows = {"refType": "FOLLOWS_FROM", "traceID": "f00d", "spanID": "b1"}
    child_of = {"refType": "CHILD_OF", "traceID": "f00d", "spanID": "c1"}
    other_trace = {"refType": "CHILD_OF", "traceID": "beef", "spanID": "d1"}
    recs = list(
        records_of_document(
            trace(
                jspan("a1", references=[follows, child_of]),
                jspan("a2", references=[other_trace, follows]),
                jspan("a3", references=[other_trace]),
                jspan("a4", references=[], parentSpanID="e1"),
                jspan("a5", parentSpanID="0"),
            )
        )
    )
    parents = {s.span_id[-2:]: s.parent_span_id for s in spans_of(recs)}
    assert parents == {
        "a1": "00000000000000c1",
        "a2": "00000000000000b1",
        "a3": None,  # a reference to another trace is never the parent
        "a4": "00000000000000e1",  # the legacy parentSpanID field
        "a5": None,
    }
    links = [r for r in recs if type(r) is SpanLink]
    assert [(r.span_id[-2:], r.linked_trace_id[-4:], r.linked_span_id[-2:]) for r in links] == [
        ("a1", "f00d", "b1"),  # the FOLLOWS_FROM beside the chosen CHILD_OF
        ("a2", "beef", "d1"),
        ("a3", "beef", "d1"),
    ]


def test_tag_types_are_read_leniently_and_never_crash():
    span = one_span(
        jspan(
            tags=[
                tag("flag", "TRUE", "bool"),
                tag("count", " 42 ", "int64"),
                tag("ratio", "0.25", "float64"),
                tag("label", 7, "string"),
                tag("odd", "maybe", "bool"),  # not a bool: kept as the file has it
                tag("huge", "9" * 30, "int64"),  # beyond 64 bits: still an integer
                tag("nan", "NaN", "float64"),
                tag("nested", {"a": [1]}, "weird-type"),
                {"key": 5, "type": "string", "value": "no string key: skipped"},
                "not a tag",
                tag("http.status_code", "503", "int64"),
            ]
        )
    )
    assert attributes(span) == {
        "flag": True,
        "count": 42,
        "ratio": 0.25,
        "label": "7",
        "odd": "maybe",
        "huge": int("9" * 30),
        "nan": "NaN",
        "nested": {"a": [1]},
    }
    assert span.http_status == 503
    assert span.status == StatusCode.UNSET  # an HTTP 5xx is left to the graph, not the status


def test_opentracing_tags_are_renamed_to_current_names_by_side():
    client = one_span(
        jspan(
            tags=[
                tag("span.kind", "client"),
                tag("peer.hostname", "orders.internal"),
                tag("peer.ipv6", "::1"),
                tag("peer.port", 5432, "int64"),
                tag("db.type", "postgresql"),
                tag("db.instance", "orders"),
                tag("internal.span.format", "jaeger"),
            ]
        )
    )
    assert client.kind == SpanKind.CLIENT
    assert client.server_address == "orders.internal"
    assert client.db_system == "postgresql"
    assert attributes(client) == {
        "internal.span.format": "jaeger",
        "network.peer.address": "::1",
        "network.peer.port": 5432,
        "db.namespace": "orders",
    }
    by_address = one_span(
        jspan(tags=[tag("span.kind", "producer"), tag("peer.ipv4", -1062731775, "int64")])
    )
    assert by_address.server_address == "192.168.0.1"  # a signed 32-bit address, as Java sent it
    server = one_span(jspan(tags=[tag("span.kind", "server"), tag("peer.hostname", "caller")]))
    assert server.server_address is None
    assert attributes(server) == {"client.address": "caller"}
    consumer = one_span(
        jspan(tags=[tag("span.kind", "CONSUMER"), tag("message_bus.destination", "orders")])
    )
    assert (consumer.kind, consumer.messaging_destination) == (SpanKind.CONSUMER, "orders")
    # OpenTelemetry's own older names win over the OpenTracing ones for the same thing
    both = one_span(jspan(tags=[tag("db.system", "mysql"), tag("db.type", "sql")]))
    assert both.db_system == "mysql" and both.attributes is None


def test_status_from_otel_status_code_then_the_error_tag():
    def status(*tags: dict, logs: list | None = None) -> tuple:
        span = one_span(jspan(tags=list(tags), logs=logs or []))
        return span.status, span.status_message, attributes(span)

    assert status(tag("otel.status_code", "ERROR"), tag("otel.status_description", "boom")) == (
        StatusCode.ERROR,
        "boom",
        {},
    )
    assert status(tag("otel.status_code", "OK"), tag("error", True, "bool")) == (
        StatusCode.OK,
        None,
        {},
    )
    assert status(tag("error", "true", "string")) == (StatusCode.ERROR, None, {})
    assert status(tag("error", False, "bool")) == (StatusCode.UNSET, None, {})
    assert status(tag("error", "timeout")) == (StatusCode.UNSET, None, {"error": "timeout"})
    error_log = {
        "timestamp": 1,
        "fields": [tag("event", "error"), tag("error.object", "java.io.IOException: reset")],
    }
    assert status(tag("error", True, "bool"), logs=[{"fields": []}, error_log]) == (
        StatusCode.ERROR,
        "java.io.IOException: reset",
        {},
    )


def test_process_tags_become_the_resource():
    process_tags = [
        tag("hostname", "host-1"),
        tag("service.namespace", "shop"),
        tag("deployment.environment", "prod"),
        tag("service.version", 3, "string"),
    ]
    recs = list(records_of_document(trace(jspan(), service="cart", process_tags=process_tags)))
    assert recs[0] == Resource("cart", "shop", "prod", "3")
    unnamed = list(records_of_document([jspan(process={"tags": []})]))
    assert unnamed[0] == Resource(UNKNOWN_SERVICE, None, None, None)
    missing = list(records_of_document(trace(jspan(processID="p9"))))
    assert spans_of(missing)[0].service == UNKNOWN_SERVICE


# --- Bad input: quarantined with its position, the rest ingested ------------------------------


def test_bad_spans_are_quarantined_with_their_position_in_every_layout():
    no_span_id = jspan("a2")
    del no_span_id["spanID"]
    no_start = jspan("a4")
    del no_start["startTime"]
    bad = [jspan("a1"), no_span_id, "not a span", no_start, jspan("0000"), jspan("a6")]
    layouts = {
        "data[0].spans": {"data": [trace(*bad)]},
        "spans": trace(*bad),
        "": [s | {"process": {"serviceName": "svc"}} if type(s) is dict else s for s in bad],
    }
    for prefix, document in layouts.items():
        recs = list(records_of_document(document))
        assert [s.span_id for s in spans_of(recs)] == ["00000000000000a1", "00000000000000a6"]
        quarantined = [r for r in recs if type(r) is Quarantined]
        assert [q.position for q in quarantined] == [f"{prefix}[{i}]" for i in (1, 2, 3, 4)], prefix
        reasons = [q.reason for q in quarantined]
        assert "spanID None" in reasons[0]
        assert reasons[1] == "span is not a JSON object"
        assert "startTime" in reasons[2]
        assert "spanID '0000'" in reasons[3]
        assert quarantined[1].excerpt == '"not a span"'


def test_bad_traces_and_other_documents_are_quarantined_not_crashed():
    recs = list(records_of_document({"data": [trace(jspan()), 7, {"traceID": "1"}]}))
    assert len(spans_of(recs)) == 1
    assert [(q.position, q.reason) for q in recs if type(q) is Quarantined] == [
        ("data[1]", "trace is not a JSON object"),
        ("data[2]", "trace has no spans list"),
    ]
    error = {"code": 404, "msg": "trace not found"}
    recs = list(records_of_document({"data": None, "errors": [error]}))
    ((position, reason),) = [(q.position, q.reason) for q in recs if type(q) is Quarantined]
    assert position == "errors[0]" and "trace not found" in reason
    (other,) = records_of_document({"resourceSpans": []})
    assert other.position == "document" and "not Jaeger JSON" in other.reason


def test_invalid_json_is_quarantined_with_line_and_column(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "traceID": "1",\n  "spans": [ {"spanID": } ]\n}\n')
    recs = records(path)
    assert len(recs) == 2
    bad, checkpoint = recs
    assert type(bad) is Quarantined
    assert bad.position == "line 3 column 25"  # the "}" where a value belongs
    assert bad.reason.startswith("invalid JSON: ")
    assert '"spanID": }' in bad.excerpt
    assert checkpoint == Checkpoint(path.stat().st_size)


json_values = strategies.json_values(text=12, keys=8, items=3, leaves=12)
tags = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["span.kind", "error", "otel.status_code", "peer.ipv4", "x"]),
            "type": st.sampled_from(["string", "bool", "int64", "float64", "binary", "?"]),
            "value": json_values,
        }
    ),
    max_size=4,
)
references = st.lists(
    st.fixed_dictionaries(
        {
            "refType": st.sampled_from(["CHILD_OF", "FOLLOWS_FROM"]) | json_values,
            "traceID": st.sampled_from(["f00d", "beef", "", "trace-1"]) | json_values,
            "spanID": st.sampled_from(["b1", "0", "span-1"]) | json_values,
        }
    ),
    max_size=3,
)
span_fields = st.fixed_dictionaries(
    {},
    optional={
        "traceID": st.sampled_from(["f00d", "0", "", "trace-1", "F" * 40]) | json_values,
        "spanID": st.sampled_from(["a1", "0", "span-1"]) | json_values,
        "startTime": st.sampled_from([1, "17", -5, 1.5, 10**20]) | json_values,
        "duration": st.sampled_from([0, "3", -1, 10**20]) | json_values,
        "references": references | json_values,
        "tags": tags | json_values,
        "logs": json_values,
        "process": json_values,
        "processID": json_values,
        "parentSpanID": json_values,
        "operationName": json_values,
    },
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(span_fields | json_values, max_size=4), json_values)
def test_any_json_gives_spans_or_quarantine_never_an_exception(spans, processes):
    document = {"traceID": "f00d", "spans": spans, "processes": processes}
    recs = list(records_of_document(document))
    emitted = [r for r in recs if type(r) in (Span, Quarantined)]
    assert len(emitted) == len(spans)  # every span is accounted for, one way or the other
    for r in recs:
        if type(r) is Span:
            assert len(r.trace_id) == 32 and len(r.span_id) == 16
            assert 0 < r.start_ns < 1 << 63 and 0 <= r.duration_ns < 1 << 63
            assert r.parent_span_id is None or len(r.parent_span_id) == 16


# --- End to end through the pipeline ----------------------------------------------------------


def test_the_whole_corpus_folder_ingests_and_a_second_run_inserts_nothing(engine, tmp_path):
    registry = Registry([JaegerJsonCollector()])
    folder = corpus("jaeger_json")
    result = ingest(engine, [folder], registry)
    assert not result.problems
    assert [(Path(r.path).name, r.collector) for r in result.reports] == [
        ("oltp2jaeger-multi-out.json", "jaeger_json"),
        ("trace_success.json", "jaeger_json"),
        ("tracegraph-testTrace.json", "jaeger_json"),
        ("ui_01.json", "jaeger_json"),
    ]
    # 4 + 2 + 11 + 5 spans; ui_01.json gives one span id to two spans: the second quarantined
    assert (result.records, result.inserted, result.duplicates, result.quarantined) == (
        22,
        21,
        0,
        1,
    )
    assert result.unknown_service == 0
    spans = {(s.trace_id, s.span_id): s for s in stored_spans(engine)}
    assert len(spans) == 21
    # the store keeps the first of the two spans with one id
    assert spans[(UI_TRACE, "0000000000000002")].name == "test-general-conversion"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM span_links")).scalar() == 2
        services = {row[0] for row in conn.execute(text("SELECT name FROM services"))}
    assert services >= {
        *("example-trace", "16af988c443cff37", "3c220036602f839e"),
        *("service1", "service2", "service-x", "service-y"),
    }
    again = ingest(engine, [folder], registry)
    assert again.inserted == 0 and all(r.skipped for r in again.reports)

    # a document that grows is read again from its start; the spans stored are skipped
    copy = tmp_path / "trace.json"
    shutil.copy(corpus("jaeger_json", "tracegraph-testTrace.json"), copy)
    assert ingest(engine, [copy], registry).inserted == 0  # the same trace, already stored
    with copy.open("a") as handle:
        handle.write("\n")
    grown = ingest(engine, [copy], registry)
    assert (grown.records, grown.inserted, grown.duplicates) == (11, 0, 11)
