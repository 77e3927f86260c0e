"""The Envoy access-log collector on the shared corpus as it is, and on the documented variants."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.records import Checkpoint, GatewayRequest, Quarantined
from collectors import Source
from collectors.access_logs import Settings
from collectors.access_logs.envoy import collector, parse_json, parse_text
from tests.collectors import strategies
from tests.conftest import CORPUS, corpus, examples

MS = 1_000_000


def records(path: Path, config: Settings | None = None) -> list:
    chosen = collector() if config is None else collector().configured(config)
    return list(chosen.collect(Source(path)))


def requests_of(recs: list) -> list[GatewayRequest]:
    return [r for r in recs if type(r) is GatewayRequest]


def quarantined_of(recs: list) -> list[Quarantined]:
    return [r for r in recs if type(r) is Quarantined]


def read(tmp_path: Path, *lines: str, config: Settings | None = None) -> list:
    path = tmp_path / "envoy.log"
    path.write_text("".join(f"{line}\n" for line in lines))
    return records(path, config)


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


# --- The corpus: Envoy Gateway JSON and default text lines, CRI-prefixed, in one stream ----------


@pytest.fixture(scope="module")
def corpus_requests() -> list[GatewayRequest]:
    recs = records(corpus("envoy", "envoy.log"))
    assert quarantined_of(recs) == []
    assert type(recs[-1]) is Checkpoint
    return requests_of(recs)


def test_corpus_reads_every_line_of_both_formats(corpus_requests):
    assert len(corpus_requests) == 10
    assert [r.method for r in corpus_requests] == [
        "GET", "GET", "HEAD", "POST", "GET", "GET", "GET", "POST", "GET", "POST",
    ]  # fmt: skip
    assert {r.gateway for r in corpus_requests} == {"envoy"}
    assert all(r.route is None and r.trace_id is None for r in corpus_requests)


def test_corpus_json_line_of_envoy_gateway(corpus_requests):
    first = corpus_requests[0]
    assert first.start_ns == 1_767_199_060_479_000_000  # 2025-12-31T16:37:40.479Z, the start
    assert (first.host, first.path, first.status) == ("www.example.com", "/assets/image.webp", 200)
    assert (first.duration_ns, first.upstream_duration_ns) == (11 * MS, None)
    assert first.upstream == "httproute/app/app-www-example-com/rule/0"  # the cluster, as logged
    assert (first.client, first.consumer) == ("10.0.0.12", None)  # Envoy logs no identity
    assert (first.bytes_sent, first.bytes_received) == (121_258, 0)
    assert attributes(first) == {
        "protocol": "HTTP/2",
        "response_code_details": "via_upstream",
        "user_agent": (
            "Mozilla/4.0 (Windows NT 9.0; Win64; x64; rv:136.0) Gecko/20101 Firefox/136.0"
        ),
        "request_id": "3bbc0252-2d5c-49fe-bd89-104e9b61770b",
        "route_name": "httproute/app/app-www-example-com/rule/0/match/0/www_example_com",
        "upstream_host": "10.42.0.82:8080",
        "downstream_local_address": "10.42.0.77:10443",
        "x_forwarded_for": "10.0.0.12",
    }


def test_corpus_direct_response_has_no_upstream(corpus_requests):
    redirect = corpus_requests[1]
    assert (redirect.status, redirect.upstream, redirect.duration_ns) == (301, None, 0)
    assert redirect.start_ns == 1_767_201_724_951_000_000
    assert attributes(redirect)["response_code_details"] == "direct_response"


def test_corpus_text_line_of_envoys_documentation(corpus_requests):
    text = corpus_requests[3]  # [2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 ...
    assert text.start_ns == 1_460_751_420_310_000_000
    assert (text.method, text.path, text.status) == ("POST", "/api/v1/locations", 204)
    assert (text.bytes_received, text.bytes_sent) == (154, 0)
    assert (text.duration_ns, text.upstream_duration_ns) == (226 * MS, 100 * MS)
    assert (text.host, text.client) == ("locations", "10.0.35.28")
    assert text.upstream == "10.0.2.1:80"  # no cluster in this format: the host, tcp:// dropped
    assert attributes(text)["upstream_host"] == "tcp://10.0.2.1:80"
    assert attributes(text)["request_id"] == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"


def test_corpus_ipv6_addresses_lose_their_brackets_and_ports(corpus_requests):
    text, json = corpus_requests[4], corpus_requests[5]
    assert text.client == "fd00:1234:5678::5a24"  # X-Forwarded-For "[fd00:1234:5678::5a24]"
    assert text.upstream == "[fd00:1234:5678::e18]:8080"
    assert (text.duration_ns, text.upstream_duration_ns) == (50 * MS, 25 * MS)
    assert json.client == "fd00:1234:5678::5a24"  # downstream_remote_address [...]:43000
    assert json.start_ns == text.start_ns == 1_769_218_476_743_000_000


def test_corpus_client_is_envoys_view_not_the_first_forwarded_address(corpus_requests):
    # JSON: downstream_remote_address; text: the last X-Forwarded-For entry, the one Envoy added.
    # The corpus pairs each JSON line with a text line of the same proxy chain.
    json_v4, json_v6, text_v4, text_v6 = corpus_requests[6:10]
    assert json_v4.client == text_v4.client == "10.42.0.1"
    assert json_v6.client == text_v6.client == "fd00:1234:5678::1"
    assert attributes(text_v4)["x_forwarded_for"] == "192.168.1.100, 10.42.0.1"
    assert (text_v6.path, text_v6.status, text_v6.bytes_sent) == ("/api/proxy6", 201, 1024)


def test_corpus_is_detected_as_envoy_and_only_by_envoy():
    head = corpus("envoy", "envoy.log").read_bytes()
    assert collector().detect(head)


# --- Documented variants the corpus lacks -------------------------------------------------------

# Envoy Gateway's "Proxy Access Logs" tutorial: string values and "-" (Envoy before typed JSON).
RATE_LIMITED = (
    '{"start_time":"2024-08-08T00:21:14.929Z","method":"HEAD","x-envoy-origin-path":"/",'
    '"protocol":"HTTP/2","response_code":"429","response_flags":"RL",'
    '"response_code_details":"request_rate_limited","connection_termination_details":"-",'
    '"upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"0",'
    '"duration":"1","x-envoy-upstream-service-time":"-","x-forwarded-for":"172.19.0.1",'
    '"user-agent":"curl/8.9.1","x-request-id":"04186347-7203-41d0-8b56-965bc32ef60a",'
    '":authority":"httpbin.example.com","upstream_host":"-",'
    '"upstream_cluster":"httproute/httpbin/httpbin/rule/0","upstream_local_address":"-",'
    '"downstream_local_address":"172.19.0.3:10443","downstream_remote_address":"172.19.0.1:61208",'
    '"requested_server_name":"httpbin.example.com","route_name":"httproute/httpbin/httpbin/rule/0/match/0/httpbin_example_com"}'
)
# Istio's default text format (1.8 on), from its "Envoy Access Logs" task.
ISTIO = (
    '[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 '
    '"-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" '
    '"10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 '
    "10.0.45.184:8000 10.44.1.23:46520 - default"
)
# Envoy Gateway's documented text format: no upstream service time.
GATEWAY_TEXT = (
    '[2024-08-08T00:21:14.929Z] "GET /get?token=secret HTTP/1.1" 200 - 0 512 7 '
    '"203.0.113.5, 172.19.0.1" "curl/8.9.1" "0af7651916cd43dd8448eb211c80319c" '
    '"httpbin.example.com" "10.244.0.12:3000"'
)


def test_json_with_string_values_and_dashes(tmp_path):
    (request,) = requests_of(read(tmp_path, RATE_LIMITED))
    assert request.start_ns == 1_723_076_474_929_000_000
    assert (request.method, request.path, request.status) == ("HEAD", "/", 429)
    assert (request.duration_ns, request.upstream_duration_ns) == (1 * MS, None)
    assert (request.bytes_sent, request.bytes_received) == (0, 0)
    assert request.client == "172.19.0.1"
    assert request.upstream == "httproute/httpbin/httpbin/rule/0"
    assert attributes(request)["response_flags"] == "RL"
    assert attributes(request)["requested_server_name"] == "httpbin.example.com"
    assert "upstream_host" not in attributes(request)  # "-": Envoy had none


def test_istio_json_keys_and_an_upstream_time_of_zero(tmp_path):
    line = orjson.dumps(
        {
            "start_time": "2020-11-25T21:26:18.409Z",
            "method": "GET",
            "path": "/status/418?x=1",
            "response_code": 418,
            "duration": 4,
            "upstream_service_time": "0",
            "authority": "httpbin:8000",
            "user_agent": "curl/7.73.0-DEV",
            "request_id": "84961386-6d84-929d-98bd-c5aee93b5c88",
            "x_forwarded_for": "10.44.1.9",
            "upstream_cluster": "outbound|8000||httpbin.foo.svc.cluster.local",
        }
    ).decode()
    (request,) = requests_of(read(tmp_path, line))
    assert (request.path, request.host, request.status) == ("/status/418", "httpbin:8000", 418)
    assert (request.duration_ns, request.upstream_duration_ns) == (4 * MS, 0)
    assert (request.client, request.upstream) == (
        "10.44.1.9",
        "outbound|8000||httpbin.foo.svc.cluster.local",
    )
    assert attributes(request)["user_agent"] == "curl/7.73.0-DEV"


def test_istio_text_format(tmp_path):
    (request,) = requests_of(read(tmp_path, ISTIO))
    assert (request.method, request.path, request.status) == ("GET", "/status/418", 418)
    assert (request.bytes_received, request.bytes_sent) == (0, 135)
    assert (request.duration_ns, request.upstream_duration_ns) == (4 * MS, 4 * MS)
    assert request.upstream == "outbound|8000||httpbin.foo.svc.cluster.local"
    assert request.client == "10.44.1.23"  # DOWNSTREAM_REMOTE_ADDRESS, its port dropped
    assert attributes(request) == {
        "protocol": "HTTP/1.1",
        "response_code_details": "via_upstream",
        "user_agent": "curl/7.73.0-DEV",
        "request_id": "84961386-6d84-929d-98bd-c5aee93b5c88",
        "route_name": "default",
        "upstream_host": "10.44.1.27:80",
        "downstream_local_address": "10.0.45.184:8000",
    }


def test_text_format_without_upstream_service_time(tmp_path):
    (request,) = requests_of(read(tmp_path, GATEWAY_TEXT))
    assert (request.path, request.status) == ("/get", 200)
    assert (request.duration_ns, request.upstream_duration_ns) == (7 * MS, None)
    assert request.client == "172.19.0.1"  # the last X-Forwarded-For address
    assert request.trace_id == "0af7651916cd43dd8448eb211c80319c"  # a trace-shaped request id
    assert "secret" not in repr(request)  # the query string is dropped


def test_status_zero_means_no_response(tmp_path):
    line = ISTIO.replace('" 418 - via_upstream -', '" 0 DC downstream_remote_disconnect -')
    (request,) = requests_of(read(tmp_path, line))
    assert request.status is None
    assert attributes(request)["response_flags"] == "DC"
    assert attributes(request)["response_code_details"] == "downstream_remote_disconnect"


def test_trace_ids_come_from_trace_headers_never_from_uuid_request_ids(tmp_path):
    record = orjson.loads(RATE_LIMITED)
    with_traceparent = record | {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    }
    with_b3 = record | {"x-b3-traceid": "80f198ee56343ba8"}
    recs = read(tmp_path, *(orjson.dumps(r).decode() for r in (record, with_traceparent, with_b3)))
    assert [r.trace_id for r in requests_of(recs)] == [
        None,
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "000000000000000080f198ee56343ba8",
    ]


def test_settings_name_the_gateway_hash_clients_and_read_a_header_consumer(tmp_path):
    path = corpus("envoy", "envoy.log")
    hashed = requests_of(
        records(
            path, Settings(gateway="edge-1", consumer="client", hash_clients=True, hash_key="k")
        )
    )
    assert {r.gateway for r in hashed} == {"edge-1"}
    assert hashed[0].client.startswith("client-") and hashed[0].client == hashed[0].consumer
    assert hashed[6].client == hashed[8].client  # the same address, the same hash
    assert not any("x_forwarded_for" in attributes(r) for r in hashed)  # it holds addresses

    line = orjson.dumps(orjson.loads(RATE_LIMITED) | {"x-api-consumer": "billing"}).decode()
    (by_header,) = requests_of(
        read(tmp_path, line, config=Settings(consumer="header:X-Api-Consumer"))
    )
    assert by_header.consumer == "billing"
    (fallback,) = requests_of(
        read(tmp_path, RATE_LIMITED, config=Settings(consumer="header:x-api-consumer"))
    )
    assert fallback.consumer == "172.19.0.1"
    (agent,) = requests_of(
        read(tmp_path, GATEWAY_TEXT, config=Settings(consumer="header:user-agent"))
    )
    assert agent.consumer == "curl/8.9.1"


# --- Broken lines are quarantined with the reason -----------------------------------------------


BROKEN_TEXT = [
    (('" 200 -', '" 2x0 -'), "response code '2x0' is not a whole number"),
    ((" 0 512 7 ", " 0 512 seven "), "DURATION 'seven' is not a whole number"),
    (("GET /get?token=secret HTTP/1.1", r"\x16\x03\x01"), "is not METHOD PATH PROTOCOL"),
    ((' "10.244.0.12:3000"', ""), "the fields do not follow Envoy's default format"),
    (("2024-08-08T00:21:14", "2024-13-08T00:21:14"), "is not a valid time: month must be in"),
]
BROKEN_JSON = [
    (('"duration":"1"', '"duration":-1'), "duration -1 is not a whole number"),
    (('"2024-08-08T00:21:14.929Z"', "null"), "start_time is missing"),
    (('"method":"HEAD"', '"method":["HEAD"]'), "method ['HEAD'] is not text"),
]
BROKEN = [
    *((GATEWAY_TEXT.replace(*change), reason) for change, reason in BROKEN_TEXT),
    *((RATE_LIMITED.replace(*change), reason) for change, reason in BROKEN_JSON),
    (RATE_LIMITED[:200], "envoy_json: not JSON: unexpected end of data"),
    (
        "[2025-12-31 16:37:40.479][1][info][main] starting main dispatch loop",
        "not a line of envoy_json, envoy_text",
    ),
]


@pytest.mark.parametrize(("line", "reason"), BROKEN)
def test_broken_lines_are_quarantined_with_the_reason(tmp_path, line, reason):
    recs = read(tmp_path, RATE_LIMITED, line)
    assert len(requests_of(recs)) == 1
    (bad,) = quarantined_of(recs)
    assert bad.position == "line 2"
    assert reason in bad.reason, bad.reason


# --- Any input: only NotThisFormat or BadLine escape --------------------------------------------

CORPUS_LINES = (
    [line.split(" F ", 1)[1] for line in (CORPUS / "envoy" / "envoy.log").read_text().splitlines()]
    if (CORPUS / "envoy" / "envoy.log").exists()
    else []
) + [RATE_LIMITED, ISTIO, GATEWAY_TEXT]


JSON_KEYS = [
    "start_time", "method", "x-envoy-origin-path", "protocol", "response_code", "response_flags",
    "bytes_received", "bytes_sent", "duration", "x-envoy-upstream-service-time",
    "x-forwarded-for", "user-agent", "x-request-id", ":authority", "upstream_host",
    "upstream_cluster", "downstream_remote_address", "route_name", "traceparent",
]  # fmt: skip
ANY_JSON = strategies.json_values(text=12, keys=8, items=4, leaves=12)
CONFIGS = st.builds(
    Settings,
    consumer=st.sampled_from(["auto", "client", "header:user-agent", "header:x-api-key"]),
    hash_clients=st.booleans(),
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.text(max_size=300)
    | strategies.edited_lines(CORPUS_LINES)
    | st.sampled_from(CORPUS_LINES),
    config=CONFIGS,
)
def test_any_line_parses_or_is_refused(line, config):
    strategies.parses_or_refuses(line, config, parse_text, parse_json)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(
    record=st.dictionaries(st.sampled_from(JSON_KEYS), ANY_JSON | st.text(max_size=40)),
    config=CONFIGS,
)
def test_any_json_object_with_envoys_keys_parses_or_is_refused(record, config):
    record = {"start_time": "2024-01-01T00:00:00Z", "response_code": 200} | record
    strategies.parses_or_refuses(
        json.dumps(record), config, parse_text, parse_json
    )  # json: integers beyond 64 bits too
