"""The Zipkin v2 collector on the shared corpus as it is, and on the format's edge cases."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.pipeline import ingest
from clew.records import (
    UNKNOWN_SERVICE,
    Checkpoint,
    Quarantined,
    Resource,
    Span,
    SpanKind,
    StatusCode,
)
from collectors import HEAD_BYTES, Registry, Source
from collectors.zipkin_v2 import ZipkinV2Collector, records_of_document
from tests.collectors import strategies
from tests.collectors.spans import attributes, spans_of
from tests.conftest import CORPUS, corpus, examples

collector = ZipkinV2Collector()


def records(path: Path) -> list:
    return list(collector.collect(Source(path)))


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def derived(trace_id: str, span_id: str, endpoint: str) -> str:
    """The id a shared server half is stored under; ``endpoint`` is service|ipv4|ipv6|port."""
    return hashlib.sha256(f"{trace_id}{span_id}server{endpoint}".encode()).hexdigest()[:16]


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "trace.json"
    path.write_bytes(orjson.dumps(document))
    return path


def zspan(span_id: str, **fields: object) -> dict:
    """A minimal Zipkin v2 span of trace ``1`` in service ``svc``."""
    return {
        "traceId": "1",
        "id": span_id,
        "timestamp": 1_700_000_000_000_000,
        "duration": 10,
        "localEndpoint": {"serviceName": "svc"},
    } | fields


# --- The corpus, worked out by hand -------------------------------------------------------------


def test_ascend_shared_server_halves_get_derived_ids_under_their_clients():
    recs = records(corpus("zipkin_v2", "ascend.json"))
    spans = spans_of(recs)
    assert not [r for r in recs if type(r) is Quarantined]
    assert len(spans) == 8
    assert Counter(s.service for s in spans) == {
        "mobile-gateway": 3,
        "content-service": 3,
        "auth-service": 2,
    }
    trace = "0000000000000000ef86c83c0a05a6d6"  # a 64-bit trace id, padded
    assert {s.trace_id for s in spans} == {trace}
    spans_by_id = by_id(spans)

    root = spans_by_id["ef86c83c0a05a6d6"]
    assert (root.parent_span_id, root.kind, root.service) == (
        None,
        SpanKind.SERVER,
        "mobile-gateway",
    )
    assert (root.start_ns, root.duration_ns) == (1531282088533035000, 38793000)
    assert (root.http_method, root.url_path) == ("GET", "/mobile-gateway/content/personal")
    assert attributes(root) == {
        "client.address": "110.170.201.178",
        "client.port": 39308,
        "network.local.address": "172.17.0.13",
    }

    content_half = derived(trace, "ecc00062ceef4bf0", "content-service|172.17.0.10||")
    auth_half = derived(trace, "52b1ab4956917c39", "auth-service|172.17.0.9||8080")
    client, server = spans_by_id["ecc00062ceef4bf0"], spans_by_id[content_half]
    assert (client.service, client.kind, client.parent_span_id) == (
        "mobile-gateway",
        SpanKind.CLIENT,
        "ef86c83c0a05a6d6",
    )
    assert (server.service, server.kind, server.parent_span_id) == (
        "content-service",
        SpanKind.SERVER,
        "ecc00062ceef4bf0",
    )
    assert (server.name, server.start_ns, server.duration_ns) == (
        "get /content/personal",
        1531282088552037000,
        15888000,
    )
    assert attributes(server)["zipkin.shared_span_id"] == "ecc00062ceef4bf0"
    auth = spans_by_id[auth_half]
    assert (auth.parent_span_id, auth.service, auth.server_address) == (
        "52b1ab4956917c39",
        "auth-service",
        "auth-service-alp",  # http.host
    )
    assert attributes(auth)["server.port"] == 8080
    assert (
        attributes(auth)["url.full"] == "http://auth-service-alp/auth-service/v1/authentications/"
    )
    # Children on a shared server's endpoint hang under the server half, not the client (SpanNode)
    assert spans_by_id["80c0d1d62f437a1b"].parent_span_id == auth_half
    assert spans_by_id["e6422f7ff7d78099"].parent_span_id == content_half
    assert spans_by_id["c21c6c51ac71b3ba"].parent_span_id == content_half
    # kinds are not guessed
    assert spans_by_id["80c0d1d62f437a1b"].kind == SpanKind.UNSPECIFIED
    assert spans_by_id["e6422f7ff7d78099"].kind == SpanKind.UNSPECIFIED
    assert [r for r in recs if type(r) is Resource] == [
        Resource("mobile-gateway", None, None, None),
        Resource("content-service", None, None, None),
        Resource("auth-service", None, None, None),
    ]
    assert recs[-1] == Checkpoint(corpus("zipkin_v2", "ascend.json").stat().st_size)


def test_envoy_endpoint_without_a_service_name_is_unknown_service():
    recs = records(corpus("zipkin_v2", "envoy.json"))
    (span,) = spans_of(recs)
    assert span.service == UNKNOWN_SERVICE
    assert Resource(UNKNOWN_SERVICE, None, None, None) in recs
    # shared, but a root with no client in the data: it keeps its id (zipkin-lens)
    assert (span.span_id, span.parent_span_id, span.kind) == (
        "978883983d506fa5",
        None,
        SpanKind.SERVER,
    )
    assert (span.http_method, span.http_status, span.status) == ("GET", 200, StatusCode.UNSET)
    assert (span.start_ns, span.duration_ns) == (1570523661059232000, 127115000)
    attrs = attributes(span)
    assert attrs["url.full"] == "http://www.google.com/"
    assert attrs["user_agent.original"].startswith("Mozilla/5.0")
    assert attrs["upstream_cluster"] == "service_google"
    assert attrs["network.local.address"] == "169.254.65.45"
    assert "zipkin.shared_span_id" not in attrs


def test_simple_db_client_spans_name_the_database():
    spans = spans_of(records(corpus("zipkin_v2", "simple-db-p6.json")))
    assert len(spans) == 5 and {s.service for s in spans} == {"bootifulmeters"}
    db_calls = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(db_calls) == 4
    assert {(s.peer_service, s.db_system, s.parent_span_id) for s in db_calls} == {
        ("app_db", "other_sql", "19f84f102048e047")
    }
    insert = by_id(spans)["5d532ef6fed52445"]
    assert attributes(insert)["db.query.text"].startswith("insert into revinfo")
    assert (insert.start_ns, insert.duration_ns) == (1541485537488973000, 2033000)
    server = by_id(spans)["19f84f102048e047"]
    assert (server.http_method, server.url_path, server.server_address) == (
        "POST",
        "/book",
        "localhost",
    )
    assert attributes(server)["client.address"] == "::1"  # remote ipv6, the caller of a SERVER span
    assert attributes(server)["client.port"] == 53367


def test_kafka_producers_and_consumers_carry_their_topic():
    recs = records(corpus("zipkin_v2", "messaging-kafka.json"))
    spans = spans_of(recs)
    assert len(spans) == 28 and not [r for r in recs if type(r) is Quarantined]
    assert Counter(s.service for s in spans) == {"servicea": 22, "serviceb": 6}
    assert Counter(s.kind for s in spans) == {
        SpanKind.PRODUCER: 9,
        SpanKind.CONSUMER: 7,
        SpanKind.UNSPECIFIED: 12,
    }
    messaging = [s for s in spans if s.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)]
    assert {s.messaging_system for s in messaging} == {"kafka"}
    assert {s.peer_service for s in messaging} == {"kafka"}  # remoteEndpoint.serviceName
    assert Counter((s.kind, s.messaging_destination) for s in messaging) == {
        (SpanKind.PRODUCER, "messages"): 3,
        (SpanKind.PRODUCER, "central.messages"): 3,
        (SpanKind.PRODUCER, "command-messages"): 3,
        (SpanKind.CONSUMER, "messages"): 7,
    }
    send = by_id(spans)["2e22a0564764943a"]
    assert attributes(send) == {
        "messaging.kafka.message.key": "e1b2f8b5-dd1e-11e8-93d1-0050568b53f5"
    }
    poll = by_id(spans)["b4a2a87ee7f003bc"]
    assert (poll.service, poll.kind, poll.parent_span_id) == (
        "serviceb",
        SpanKind.CONSUMER,
        "2e22a0564764943a",
    )
    assert (poll.start_ns, poll.duration_ns) == (1541405397452008000, 1000)
    errors = {s.span_id: s.status_message for s in spans if s.status == StatusCode.ERROR}
    # "error": "" is an error too, without a message
    assert errors == {
        "2f77d5b0b8e0de35": "some error",
        "4a64a63e4b58e665": "some error",
        "568b33e6af8a225a": None,
    }


def test_smartthings_fragments_merge_and_shared_halves_stay_apart():
    recs = records(corpus("zipkin_v2", "smartthings-oauth-authorization.json"))
    spans = spans_of(recs)
    assert not [r for r in recs if type(r) is Quarantined]
    # 175 objects; the shared server span 9d2d35b746db84f3 comes as 3 fragments from one pusher
    # instance and 2 from another: two spans, not five
    assert len(spans) == 172
    assert len({(s.trace_id, s.span_id) for s in spans}) == 172
    assert Counter(s.service for s in spans) == {
        "auth": 73,
        "datamgmt": 65,
        "stlogin": 17,
        "pusher": 8,
        "account": 5,
        "bouncer": 2,
        "paperboy": 1,
        "dove": 1,
    }
    shared = [s for s in spans if "zipkin.shared_span_id" in attributes(s)]
    assert len(shared) == 42  # 45 shared objects, 3 of them merged away
    assert sum("zipkin.duration_missing" in attributes(s) for s in spans) == 16  # 19 objects

    trace = "00000000000000008ce82b2e9ed820ba"
    halves = {
        attributes(s)["network.local.address"]: s
        for s in shared
        if attributes(s)["zipkin.shared_span_id"] == "9d2d35b746db84f3"
    }
    assert set(halves) == {"10.0.0.187", "10.0.0.79"}
    first, second = halves["10.0.0.187"], halves["10.0.0.79"]
    assert first.span_id == derived(trace, "9d2d35b746db84f3", "pusher|10.0.0.187||8197")
    assert second.span_id == derived(trace, "9d2d35b746db84f3", "pusher|10.0.0.79||8197")
    for half in (first, second):
        assert (half.service, half.kind, half.parent_span_id) == (
            "pusher",
            SpanKind.SERVER,
            "9d2d35b746db84f3",
        )
        assert half.duration_ns == 0 and attributes(half)["zipkin.duration_missing"] is True
        assert attributes(half)["messaging.destination.partition.id"] == "56"
    # the first fragment in the file's order gives the timestamp, as in Zipkin's merge
    assert (first.start_ns, second.start_ns) == (1543334725564455000, 1543334725553308000)
    client = by_id(spans)["9d2d35b746db84f3"]
    assert (client.service, client.kind) == ("bouncer", SpanKind.CLIENT)
    assert attributes(client)["zipkin.duration_missing"] is True
    # each instance's local spans hang under that instance's half
    assert by_id(spans)["d645461738ed0e17"].parent_span_id == first.span_id
    assert by_id(spans)["de67d452708a545a"].parent_span_id == second.span_id
    assert by_id(spans)["975e74022b72e1cd"].parent_span_id == second.span_id


def test_smartthings_remote_endpoints_errors_and_cassandra():
    spans = by_id(spans_of(records(corpus("zipkin_v2", "smartthings-oauth-authorization.json"))))
    batch = spans["c8a2bcb3011b9fcd"]
    assert (batch.peer_service, batch.server_address, batch.db_system) == (
        "auth",  # the file's remoteEndpoint.serviceName
        "10.0.0.3:9042",  # remote ipv4:port, a CLIENT span's server
        "cassandra",
    )
    attrs = attributes(batch)
    assert attrs["db.query.text"].lstrip().startswith("BEGIN BATCH")
    assert attrs["db.namespace"] == "auth"
    assert attrs["network.local.address"] == "10.0.0.89"
    assert spans["5f35e80a5a50fdca"].server_address == "archiver.st.internal"  # from http.url
    errors = {(s.service, s.kind, s.status_message) for s in spans.values() if s.status == 2}
    assert errors == {("stlogin", SpanKind.CLIENT, "401"), ("auth", SpanKind.SERVER, "401")}


def test_skew_shared_server_and_its_local_child():
    spans = by_id(spans_of(records(corpus("zipkin_v2", "skew.json"))))
    trace = "00000000000000001e223ff1f80f1c69"
    half = derived(trace, "74280ae0c10d8062", "serviceb|192.0.0.0||")
    assert set(spans) == {"bf396325699c84bf", "74280ae0c10d8062", half, "43210ae0c10d1234"}
    assert spans[half].parent_span_id == "74280ae0c10d8062"
    assert spans["74280ae0c10d8062"].parent_span_id == "bf396325699c84bf"
    assert spans["43210ae0c10d1234"].parent_span_id == half
    # times are kept as reported: the clock skew is the file's, not corrected here
    assert spans[half].start_ns == 1470150004008761000


def test_detect_claims_zipkin_and_nothing_else():
    for path in corpus("zipkin_v2").glob("*.json"):
        assert collector.detect(path.read_bytes()[:HEAD_BYTES]), path
    others = [p for p in CORPUS.rglob("*") if p.is_file() and p.parent.name != "zipkin_v2"]
    assert others
    assert not [p for p in others if collector.detect(p.read_bytes()[:HEAD_BYTES])]
    assert not collector.detect(b'[{"traceID": "a", "spanID": "b", "traceId": "c", "id": "d"}]')
    assert not collector.detect(b'{"traceId": "1", "id": "2"}')
    assert collector.detect(b'\xef\xbb\xbf  [{"traceId": "1", "id": "2"}]')


def test_whole_corpus_ingests_and_a_second_run_adds_nothing(engine):
    folder = corpus("zipkin_v2")
    registry = Registry([ZipkinV2Collector()])
    result = ingest(engine, [folder], registry)
    assert result.problems == []
    assert {r.collector for r in result.reports} == {"zipkin_v2"}
    assert result.files == 6
    assert result.inserted == 8 + 1 + 28 + 5 + 4 + 172
    assert (result.duplicates, result.quarantined, result.unknown_service) == (0, 0, 1)
    again = ingest(engine, [folder], registry)
    assert again.inserted == 0 and again.problems == []


# --- Edge cases ---------------------------------------------------------------------------------


def test_invalid_json_is_quarantined_with_line_and_column(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"traceId": "1", "id": "2",\n   "name": }\n]\n')
    recs = records(path)
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert bad.position == "line 3 column 12"
    assert bad.reason.startswith("invalid JSON")
    assert recs[-1] == Checkpoint(path.stat().st_size)
    assert not spans_of(recs)


def test_unusable_spans_are_quarantined_and_the_rest_kept(tmp_path: Path):
    good = zspan("a")
    no_id = {k: v for k, v in zspan("b").items() if k != "id"}
    document = [good, no_id, "not a span", zspan("c", traceId="xyz"), zspan("0000")]
    document += [zspan("d", timestamp="soon"), zspan("e", parentId="nothex")]
    recs = records(write(tmp_path, document))
    assert [s.span_id for s in spans_of(recs)] == ["000000000000000a"]
    quarantined = {q.position: q.reason for q in recs if type(q) is Quarantined}
    assert list(quarantined) == ["[1]", "[2]", "[3]", "[4]", "[5]", "[6]"]
    assert "id None" in quarantined["[1]"]
    assert quarantined["[2]"] == "span is not a JSON object but a string"
    assert "traceId 'xyz'" in quarantined["[3]"]
    assert quarantined["[4]"] == "id is all zeros"
    assert "timestamp 'soon'" in quarantined["[5]"]
    assert "parentId 'nothex'" in quarantined["[6]"]


def test_a_list_of_traces_gives_nested_positions(tmp_path: Path):
    document = [[zspan("a"), 7], [zspan("b", traceId="2")]]
    recs = records(write(tmp_path, document))
    assert sorted((s.trace_id[-1], s.span_id[-1]) for s in spans_of(recs)) == [
        ("1", "a"),
        ("2", "b"),
    ]
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert (bad.position, bad.reason) == ("[0][1]", "span is not a JSON object but a number")


def test_a_document_that_is_not_a_list_is_quarantined():
    (bad,) = list(records_of_document({"traceId": "1"}))
    assert (bad.position, bad.reason) == (
        "document",
        "not a Zipkin v2 span list: the top level is an object",
    )


def test_fragments_merge_tags_times_name_and_kind(tmp_path: Path):
    timed = zspan("a", parentId="f", tags={"http.method": "GET", "x": "1"})
    tagged = {
        "traceId": "1",
        "id": "a",
        "name": "get /orders",
        "kind": "SERVER",
        "localEndpoint": {"serviceName": "svc", "ipv4": "10.0.0.1"},
        "tags": {"http.path": "/orders", "x": "2"},
        "annotations": [{"timestamp": 1_600_000_000_000_000, "value": "wr"}],
    }
    (span,) = spans_of(records(write(tmp_path, [timed, tagged])))
    assert (span.span_id, span.parent_span_id) == ("000000000000000a", "000000000000000f")
    assert (span.name, span.kind, span.http_method, span.url_path) == (
        "get /orders",
        SpanKind.SERVER,
        "GET",
        "/orders",
    )
    assert (span.start_ns, span.duration_ns) == (1_700_000_000_000_000_000, 10_000)
    # Zipkin sorts the fragment with the fuller endpoint first; a later fragment's tag wins
    assert attributes(span) == {"x": "1", "network.local.address": "10.0.0.1"}


def test_fragments_on_contradicting_endpoints_are_not_merged(tmp_path: Path):
    one = zspan("a", localEndpoint={"serviceName": "svc", "ipv4": "10.0.0.1"})
    two = zspan("a", localEndpoint={"serviceName": "svc", "ipv4": "10.0.0.2"})
    recs = records(write(tmp_path, [one, two]))
    assert len(spans_of(recs)) == 1
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert bad.position == "[1]" and "already used" in bad.reason


def test_missing_timestamps_come_from_annotations_peer_or_parent(tmp_path: Path):
    parent = zspan("1", kind="CLIENT")
    annotated = zspan("2", parentId="1", annotations=[{"timestamp": 1_700_000_000_000_500}])
    del annotated["timestamp"]
    server = zspan("1", kind="SERVER", shared=True, localEndpoint={"serviceName": "other"})
    del server["timestamp"], server["duration"]
    child = zspan("3", parentId="2")
    del child["timestamp"]
    orphan = zspan("4", parentId="99")
    del orphan["timestamp"]
    recs = records(write(tmp_path, [parent, annotated, server, child, orphan]))
    spans = {(s.service, s.span_id[-1]): s for s in spans_of(recs)}
    assert len(spans) == 4
    client, annotated_span, child_span = spans["svc", "1"], spans["svc", "2"], spans["svc", "3"]
    assert annotated_span.start_ns == 1_700_000_000_000_500_000  # its earliest annotation's
    (half,) = [s for s in spans.values() if s.service == "other"]
    assert half.start_ns == client.start_ns == 1_700_000_000_000_000_000  # its client's
    assert attributes(half)["zipkin.timestamp_missing"] is True
    assert attributes(half)["zipkin.duration_missing"] is True and half.duration_ns == 0
    assert child_span.start_ns == annotated_span.start_ns  # its parent's
    assert attributes(child_span)["zipkin.timestamp_missing"] is True
    assert "zipkin.timestamp_missing" not in attributes(client)
    (bad,) = [r for r in recs if type(r) is Quarantined]
    assert bad.position == "[4]" and bad.reason.startswith("no timestamp")


def test_a_server_span_with_its_clients_id_is_shared_even_without_the_flag(tmp_path: Path):
    client = zspan("a", kind="CLIENT", parentId="0000000000000000")
    server = zspan("a", kind="SERVER", localEndpoint={"serviceName": "backend"})
    spans = spans_of(records(write(tmp_path, [client, server])))
    assert [(s.service, s.parent_span_id) for s in spans] == [
        ("svc", None),  # a parent id of zeros is no parent
        ("backend", "000000000000000a"),
    ]
    assert spans[1].span_id == derived("0" * 31 + "1", "000000000000000a", "backend|||")


def test_ids_are_padded_lowercased_and_64_bit_trace_ids_take_their_128_bit_form(tmp_path: Path):
    long_trace = "463AC35C9F6413AD48485A3953BB6124"
    document = [zspan("ABC", traceId=long_trace), zspan("DEF", traceId="48485a3953bb6124")]
    spans = spans_of(records(write(tmp_path, document)))
    assert [(s.trace_id, s.span_id) for s in spans] == [
        (long_trace.lower(), "0000000000000abc"),
        (long_trace.lower(), "0000000000000def"),
    ]


def test_otel_status_code_wins_over_the_error_tag(tmp_path: Path):
    document = [
        zspan("1", tags={"otel.status_code": "OK", "error": "boom"}),
        zspan("2", tags={"otel.status_code": "ERROR", "otel.status_description": "bad"}),
        zspan("3", tags={"error": "true", "http.status_code": "503"}),
    ]
    spans = spans_of(records(write(tmp_path, document)))
    assert [(s.status, s.status_message) for s in spans] == [
        (StatusCode.OK, None),
        (StatusCode.ERROR, "bad"),
        (StatusCode.ERROR, "true"),
    ]
    assert attributes(spans[0]) == {"error": "boom"}
    assert spans[2].http_status == 503  # counted by the graph, not turned into status here


json_values = strategies.json_values(text=8, keys=8, items=3, leaves=10)
endpoints = st.fixed_dictionaries(
    {},
    optional={
        "serviceName": st.sampled_from(["a", "b", ""]) | json_values,
        "ipv4": st.sampled_from(["10.0.0.1", "10.0.0.2"]),
        "port": st.sampled_from([80, 0, -1, "80"]),
    },
)
span_objects = st.fixed_dictionaries(
    {},
    optional={
        "traceId": st.sampled_from(["1", "a" * 16, "0" * 16, "A" * 32, "x"]) | json_values,
        "id": st.sampled_from(["1", "2", "0", "f" * 16, "f" * 17]) | json_values,
        "parentId": st.sampled_from(["1", "2", "0" * 16, ""]) | json_values,
        "kind": st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "bogus"]) | json_values,
        "shared": st.booleans() | json_values,
        "timestamp": st.sampled_from([1, 0, -5, 1.5, "7"]) | json_values,
        "duration": st.sampled_from([1, 0, None]) | json_values,
        "localEndpoint": endpoints | json_values,
        "remoteEndpoint": endpoints | json_values,
        "annotations": st.lists(st.fixed_dictionaries({"timestamp": json_values})) | json_values,
        "tags": st.dictionaries(st.sampled_from(["error", "kafka.topic", "x"]), json_values),
    },
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(span_objects | json_values | st.lists(span_objects, max_size=3), max_size=6))
def test_any_json_gives_spans_or_quarantine_never_an_exception(document):
    recs = list(records_of_document(document))
    spans = spans_of(recs)
    quarantined = [r for r in recs if type(r) is Quarantined]
    objects = sum(len(item) if isinstance(item, list) else 1 for item in document)
    assert len(spans) + len(quarantined) <= objects
    assert len({(s.trace_id, s.span_id) for s in spans}) == len(spans)
    for span in spans:
        assert len(span.trace_id) == 32 and len(span.span_id) == 16
        assert span.start_ns > 0 and span.duration_ns >= 0
        assert span.parent_span_id != span.span_id


def test_the_remote_endpoint_is_the_peer_the_kind_says(tmp_path: Path):
    remote = {"serviceName": "peer", "ipv4": "10.1.1.1", "port": 5432}
    local = {"serviceName": "svc", "ipv4": "10.0.0.9", "port": 8080}
    document = [
        zspan(str(n), kind=kind, remoteEndpoint=remote, localEndpoint=local)
        for n, kind in enumerate(["CLIENT", "SERVER", "CONSUMER", "bogus"], start=1)
    ]
    client, server, consumer, unknown = spans_of(records(write(tmp_path, document)))
    assert {s.peer_service for s in (client, server, consumer, unknown)} == {"peer"}
    assert client.server_address == "10.1.1.1:5432"
    assert server.server_address is None
    assert attributes(server) == {
        "client.address": "10.1.1.1",
        "client.port": 5432,
        "network.local.address": "10.0.0.9",
        "network.local.port": 8080,
        "server.port": 8080,
    }
    assert attributes(consumer)["network.peer.address"] == "10.1.1.1"
    assert "client.address" not in attributes(consumer)
    assert unknown.kind == SpanKind.UNSPECIFIED
    assert attributes(unknown)["zipkin.kind"] == "bogus"


def test_a_grown_document_is_read_again_from_the_start(tmp_path: Path):
    path = write(tmp_path, [zspan("a"), zspan("b")])
    from_start = records(path)
    assert list(collector.collect(Source(path, offset=40))) == from_start
    assert len(spans_of(from_start)) == 2
