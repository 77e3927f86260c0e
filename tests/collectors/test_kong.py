"""The Kong collector on the records of Kong's documentation pages, as the pages have them.

The corpus holds Kong docs pages, not log files: each test takes the JSON records out of a page
(the Liquid version tags of the 3.8 page resolved for each version) and writes them one a line,
as the file-log plugin would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.records import GatewayRequest, Quarantined
from collectors import Source
from collectors.access_logs import Settings
from collectors.access_logs.kong import collector, parse
from tests.collectors import strategies
from tests.conftest import CORPUS, corpus, examples

MS = 1_000_000
# A block of the 3.8 page that only some versions render: {%- if_version gte:3.5.x %} ... endif
VERSIONED = re.compile(
    r"[ \t]*\{%-? if_version gte:(\d+)\.(\d+)\.x %\}\n(.*?)[ \t]*\{%-? endif_version %\}\n", re.S
)
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def one_line(pretty: str) -> str:
    """A pretty-printed JSON record as one line (its strings hold no line breaks)."""
    return " ".join(line.strip() for line in pretty.splitlines())


def rendered(version: tuple[int, int]) -> str:
    """The record of the 3.8 log-format page as the docs show it for ``version``."""
    page = corpus("kong", "log-format.md").read_text()
    (block,) = JSON_BLOCK.findall(page)
    kept = VERSIONED.sub(
        lambda m: m.group(3) if (int(m.group(1)), int(m.group(2))) <= version else "", block
    )
    assert "{%" not in kept
    return one_line(kept)


def older_page_records() -> list[str]:
    """The two records (Kong up to 3.3, and 3.4) of the 2.2-3.4 page."""
    page = corpus("kong", "log-format.kong-2.2-3.4.md").read_text()
    return [one_line(block) for block in JSON_BLOCK.findall(page)]


def grpc_page_records() -> list[str]:
    page = corpus("kong", "configuring-a-grpc-service.md").read_text()
    return [line.strip() for line in page.splitlines() if line.strip().startswith('{"latencies"')]


def records(tmp_path: Path, lines: list[str], config: Settings | None = None) -> list:
    path = tmp_path / "file-log.json"
    path.write_text("".join(f"{line}\n" for line in lines))
    chosen = collector() if config is None else collector().configured(config)
    return list(chosen.collect(Source(path)))


def requests_of(recs: list) -> list[GatewayRequest]:
    return [r for r in recs if type(r) is GatewayRequest]


def quarantined_of(recs: list) -> list[Quarantined]:
    return [r for r in recs if type(r) is Quarantined]


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


VERSIONS = [(3, 3), (3, 4), (3, 5), (3, 6), (3, 7), (3, 8)]


# --- log-format.md: Kong 3.8's record, per version ----------------------------------------------


def test_log_format_page_records_of_3_7_and_later(tmp_path):
    recs = records(tmp_path, [rendered((3, 7)), rendered((3, 8))])
    assert quarantined_of(recs) == []
    first, second = requests_of(recs)
    assert first == second  # 3.8 adds nothing to the log record
    assert first.start_ns == 1_726_783_839_538_000_000  # started_at, ms: the start
    assert (first.gateway, first.method, first.status) == ("kong", "GET", 200)
    assert (first.host, first.path, first.route) == ("localhost:8000", "/example-route", None)
    assert (first.duration_ns, first.upstream_duration_ns) == (173 * MS, 171 * MS)
    assert first.upstream == "example_service"
    assert (first.client, first.consumer) == ("192.168.65.1", None)  # no consumer logged
    assert (first.bytes_received, first.bytes_sent) == (139, 9982)
    assert first.trace_id is None  # request.id is Kong's own id, not a propagated trace
    assert attributes(first) == {
        "user_agent": "HTTPie/3.2.3",
        "request_id": "2f6946328ffc4946b8c9120704a4a155",  # 3.5 on
        "route_name": "example_route",
        "upstream_uri": "/",  # 3.6 on
        "upstream_status": "200",
        "source": "upstream",  # 3.6 on
        "kong_latency_ms": 1,
        "receive_latency_ms": 1,  # 3.7 on
        "tries": ["34.237.204.224:80"],
        "workspace": "default",  # workspace_name, 3.4 on
        "service_protocol": "http",
    }


def test_log_format_page_renderings_before_3_7_are_broken_json(tmp_path):
    # The page's version tags leave a trailing comma before 3.7 ("request": 173, }) and before
    # 3.5 ("x-kong-proxy-latency": "1", }): the docs' rendering, not what Kong writes.
    recs = records(tmp_path, [rendered(version) for version in VERSIONS])
    assert len(requests_of(recs)) == 2
    bad = quarantined_of(recs)
    assert [q.position for q in bad] == ["line 1", "line 2", "line 3", "line 4"]
    assert all("kong_json: not JSON: trailing comma is not allowed" in q.reason for q in bad)


# --- log-format.kong-2.2-3.4.md: consumers and unnamed services ---------------------------------


def test_older_page_records_with_a_consumer(tmp_path):
    recs = records(tmp_path, older_page_records())
    assert quarantined_of(recs) == []
    up_to_3_3, from_3_4 = requests_of(recs)
    for request in (up_to_3_3, from_3_4):
        assert request.start_ns == 1_614_232_668_342_000_000
        assert (request.method, request.path, request.status) == ("GET", "/log", 200)
        assert (request.duration_ns, request.upstream_duration_ns) == (515 * MS, 457 * MS)
        assert request.upstream == "httpbin.org"  # the service has no name: its host
        assert (request.client, request.consumer) == ("192.168.144.1", "foo")  # username
        assert (request.bytes_received, request.bytes_sent) == (138, 827)
        assert attributes(request)["route_name"] == "78f79740-c410-4fd9-a998-d0a60a99dc9b"
        assert attributes(request)["upstream_uri"] == "/anything"
    assert attributes(up_to_3_3)["workspace"] == "54baa5a9-23d6-41e0-9c9a-02434b010b25"
    assert attributes(from_3_4)["workspace"] == "default"


# --- configuring-a-grpc-service.md: Kong 1.2 gRPC records ---------------------------------------


def test_grpc_page_records(tmp_path):
    lines = grpc_page_records()
    assert len(lines) == 2
    recs = records(tmp_path, lines)
    assert quarantined_of(recs) == []
    first, second = requests_of(recs)
    assert (first.start_ns, second.start_ns) == (
        1_564_527_732_516_000_000,
        1_564_527_733_554_000_000,
    )
    assert (first.method, first.path) == ("POST", "/hello.HelloService/SayHello")  # \/ unescaped
    assert (first.host, first.upstream, first.status) == ("localhost:9080", "grpc", 200)
    assert (first.duration_ns, first.upstream_duration_ns) == (8 * MS, 3 * MS)
    assert (second.duration_ns, second.upstream_duration_ns) == (3 * MS, 1 * MS)
    assert (first.bytes_received, first.bytes_sent) == (46, 298)  # sizes as text in Kong 1.x
    assert attributes(first) == {
        "user_agent": "grpc-go/1.20.0-dev",
        "route_name": "say-hello",
        "kong_latency_ms": 5,
        "tries": ["127.0.0.1:15002"],
        "service_protocol": "grpc",
    }


# --- Detection ----------------------------------------------------------------------------------


def test_a_file_log_of_the_pages_records_is_detected_as_kong(tmp_path):
    path = tmp_path / "file-log.json"
    path.write_text("\n".join([rendered((3, 8)), *older_page_records(), *grpc_page_records()]))
    assert collector().detect(path.read_bytes())


# --- Fields the pages lack ----------------------------------------------------------------------


def kong_record(**changes: object) -> dict:
    """The 3.8 page's record, changed."""
    return orjson.loads(rendered((3, 8))) | changes


def read_one(tmp_path: Path, record: dict, config: Settings | None = None) -> GatewayRequest:
    (request,) = requests_of(records(tmp_path, [orjson.dumps(record).decode()], config))
    return request


@pytest.mark.parametrize(
    ("changes", "consumer"),
    [
        ({"consumer": {"username": "ann", "custom_id": "c-1", "id": "u-1"}}, "ann"),
        ({"consumer": {"custom_id": "c-1", "id": "u-1"}}, "c-1"),
        ({"consumer": {"id": "u-1"}, "authenticated_entity": {"id": "cred-1"}}, "u-1"),
        ({"authenticated_entity": {"id": "cred-1", "consumer_id": "u-1"}}, "cred-1"),
        ({"consumer": None}, None),
    ],
)
def test_consumer_identity_in_order(tmp_path, changes, consumer):
    assert read_one(tmp_path, kong_record(**changes)).consumer == consumer


def test_consumer_settings_and_gateway_name(tmp_path):
    record = kong_record(consumer={"username": "ann"})
    record["request"]["headers"]["x-consumer-team"] = ["billing", "again"]
    assert read_one(tmp_path, record, Settings(consumer="client")).consumer == "192.168.65.1"
    team = read_one(tmp_path, record, Settings(consumer="header:X-Consumer-Team"))
    assert team.consumer == "billing"  # a repeated header: its first value
    hashed = read_one(
        tmp_path, record, Settings(consumer="client", hash_clients=True, hash_key="k")
    )
    assert hashed.client == hashed.consumer and hashed.client.startswith("client-")
    assert "192.168.65.1" not in repr(hashed)
    assert read_one(tmp_path, record, Settings(gateway="kong-eu-1")).gateway == "kong-eu-1"


def test_no_upstream_contacted_and_fractional_latencies(tmp_path):
    record = kong_record(
        latencies={"request": 0.5, "kong": 0.25, "proxy": -1}, upstream_status=None, source="kong"
    )
    request = read_one(tmp_path, record)
    assert (request.duration_ns, request.upstream_duration_ns) == (500_000, None)
    assert attributes(request)["kong_latency_ms"] == 0.25
    assert attributes(request)["source"] == "kong"
    # Kong answered it (a plugin's 401 or 429): the route's service never saw it.
    assert request.upstream is None
    assert read_one(tmp_path, kong_record()).upstream is not None
    told_by_source = kong_record(latencies={"request": 3, "kong": 3, "proxy": 0}, source="kong")
    assert read_one(tmp_path, told_by_source).upstream is None


def test_retries_keep_every_status_and_try(tmp_path):
    tries = [{"ip": "10.0.0.1", "port": 80}, {"ip": "fd00::2", "port": 8080}]
    request = read_one(tmp_path, kong_record(upstream_status="502, 200", tries=tries))
    assert attributes(request)["upstream_status"] == "502, 200"
    assert attributes(request)["tries"] == ["10.0.0.1:80", "[fd00::2]:8080"]


def test_trace_id_from_trace_headers(tmp_path):
    record = kong_record()
    headers = record["request"]["headers"]
    headers["x-request-id"] = "3bbc0252-2d5c-49fe-bd89-104e9b61770b"  # a UUID: no trace
    assert read_one(tmp_path, record).trace_id is None
    headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert read_one(tmp_path, record).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    del headers["traceparent"]
    headers["b3"] = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
    assert read_one(tmp_path, record).trace_id == "80f198ee56343ba864fe8b2a57d3eff7"


def test_secrets_are_never_kept(tmp_path):
    record = kong_record()
    record["request"]["headers"] |= {"authorization": "Bearer s3cr3t", "cookie": "session=s3cr3t"}
    record["request"]["uri"] = "/example-route?api_key=s3cr3t"
    record["request"]["url"] = "http://localhost:8000/example-route?api_key=s3cr3t"
    record["request"]["querystring"] = {"api_key": "s3cr3t"}
    request = read_one(tmp_path, record)
    assert request.path == "/example-route"
    assert "s3cr3t" not in repr(request)


def test_host_from_the_url_when_no_host_header(tmp_path):
    record = kong_record()
    del record["request"]["headers"]["host"]
    record["request"]["url"] = "https://api.example.com:8443/example-route?x=1"
    assert read_one(tmp_path, record).host == "api.example.com:8443"


# --- Broken records are quarantined with the reason ---------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"response": {"status": "2x0"}}, "response.status '2x0' is not a whole number"),
        ({"started_at": None}, "started_at is missing"),
        ({"started_at": "yesterday"}, "started_at 'yesterday' is not a number of millisec"),
        ({"latencies": {"request": -3}}, "latencies.request -3 is not a number of millisec"),
        ({"request": "GET /"}, "request is not an object"),
        ({"tries": {"ip": "10.0.0.1"}}, "tries is not a list"),
    ],
)
def test_broken_records_are_quarantined_with_the_reason(tmp_path, changes, reason):
    line = orjson.dumps(kong_record(**changes)).decode()
    recs = records(tmp_path, [rendered((3, 8)), line])
    assert len(requests_of(recs)) == 1
    (bad,) = quarantined_of(recs)
    assert bad.position == "line 2"
    assert reason in bad.reason, bad.reason


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (200, "kong_json: not JSON: unexpected end of data"),  # {"latencies":... cut short
        (10, "not a line of kong_json"),  # {"latencie: too little of it to tell
    ],
)
def test_lines_cut_short_are_quarantined(tmp_path, cut, reason):
    recs = records(tmp_path, [rendered((3, 8)), grpc_page_records()[0][:cut]])
    (bad,) = quarantined_of(recs)
    assert reason in bad.reason, bad.reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"started_at": 1, "latencies": {}, }', "kong_json: not JSON: trailing comma"),
        ('{"started_at": 1726783839538}', "not a line of kong_json"),  # no latencies: not Kong's
        ("2024/09/19 22:10:39 [error] 1#0: *1 connect() failed", "not a line of kong_json"),
    ],
)
def test_other_lines_are_quarantined_with_the_reason(tmp_path, line, reason):
    (bad,) = quarantined_of(records(tmp_path, [line]))
    assert reason in bad.reason, bad.reason


# --- Any input: only NotThisFormat or BadLine escape --------------------------------------------


def corpus_lines() -> list[str]:
    if not (CORPUS / "kong").exists():
        return []
    return [rendered((3, 8)), *older_page_records(), *grpc_page_records()]


CORPUS_LINES = corpus_lines()
ANY_JSON = strategies.json_values(text=12, keys=8, items=3, leaves=6)
CONFIGS = st.builds(
    Settings,
    consumer=st.sampled_from(["auto", "client", "header:user-agent"]),
    hash_clients=st.booleans(),
)
SECTIONS = ["request", "response", "latencies", "service", "route", "consumer", "tries"]
SECTION_KEYS = [
    "status", "size", "headers", "method", "uri", "url", "id", "name", "host", "username",
    "custom_id", "request", "proxy", "kong", "receive", "ip", "port", "tls", "version", "host",
]  # fmt: skip


@pytest.mark.skipif(not CORPUS_LINES, reason="the corpus is missing")
@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(line=st.text(max_size=300) | strategies.edited_lines(CORPUS_LINES), config=CONFIGS)
def test_any_line_parses_or_is_refused(line, config):
    strategies.parses_or_refuses(line, config, parse)


section = st.dictionaries(st.sampled_from(SECTION_KEYS), ANY_JSON, max_size=5) | ANY_JSON


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(
    record=st.dictionaries(
        st.sampled_from([*SECTIONS, "started_at", "client_ip", "upstream_status", "workspace"]),
        section,
        max_size=6,
    ),
    config=CONFIGS,
)
def test_any_json_object_with_kongs_keys_parses_or_is_refused(record, config):
    record = {"started_at": 1_726_783_839_538, "latencies": {}} | record
    strategies.parses_or_refuses(
        json.dumps(record), config, parse
    )  # json: integers beyond 64 bits too


def test_a_header_that_pins_a_version_is_named_in_the_attributes(tmp_path):
    record = kong_record()
    record["request"]["headers"]["x-api-version"] = "2024-06-01"
    assert attributes(read_one(tmp_path, record))["version_header"] == "x-api-version"
    assert "version_header" not in attributes(read_one(tmp_path, kong_record()))
