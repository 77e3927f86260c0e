"""The Traefik access-log collector on the shared corpus as it is, and on the format variants the
corpus lacks."""

from __future__ import annotations

import contextlib
import re
import time
from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clew.records import GatewayRequest, Quarantined
from collectors import Source
from collectors.access_logs import BadLine, NotThisFormat, Settings
from collectors.access_logs.traefik import FORMATS, collector, parse_clf, parse_json
from tests.collectors.strategies import mutated_lines, parses_or_refuses
from tests.conftest import corpus, examples

TRAEFIK_FILES = ["traefik_clf.log", "traefik_json.log"]
DEFAULT = Settings()


def iso_ns(text: str) -> int:
    """Unix nanoseconds of a whole-second ISO 8601 time with its offset."""
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def read(name: str, settings: Settings = DEFAULT) -> tuple[list[GatewayRequest], list]:
    """The requests and the quarantined lines of a corpus file."""
    records = list(collector().configured(settings).collect(Source(corpus("traefik", name))))
    requests = [r for r in records if type(r) is GatewayRequest]
    return requests, [r for r in records if type(r) is Quarantined]


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


def json_line(**fields: object) -> str:
    """A Traefik JSON line: the first corpus line's fields, some replaced or removed (None)."""
    record = orjson.loads(corpus("traefik", "traefik_json.log").read_text().splitlines()[0])
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not None}).decode()


# --- The corpus, worked out by hand -------------------------------------------------------------


def test_json_lines_start_at_start_utc_to_the_nanosecond():
    requests, quarantined = read("traefik_json.log")
    assert len(requests) == 6
    first = requests[0]
    assert first.start_ns == iso_ns("2021-12-08T14:02:43+00:00") + 587_782_192
    assert (first.gateway, first.client, first.consumer) == ("traefik", "172.17.0.1", None)
    assert (first.method, first.host, first.path, first.status) == (
        "GET",
        "test.docker.localhost",
        "/594VAEoi.save",
        200,
    )
    assert (first.duration_ns, first.upstream_duration_ns) == (357_313, 324_669)
    assert (first.upstream, first.route, first.trace_id) == ("test@docker", None, None)
    assert (first.bytes_sent, first.bytes_received) == (357, 0)
    assert attributes(first) == {
        "entry_point": "http",
        "origin_status": 200,
        "protocol": "HTTP/1.1",
        "router": "test@docker",
        "scheme": "http",
        "service_url": "http://172.17.0.3:80",  # from the serialised Go url.URL
        "user_agent": "Nikto",
    }
    nested = requests[2]
    assert nested.upstream == "whoami@file"
    assert attributes(nested)["router"] == (
        "root@file -> intermediate1@file -> intermediate2@file -> leaf@file"
    )
    assert attributes(nested)["service_url"] == "http://whoami:80"  # a string in newer versions
    unrouted = requests[4]  # 404 from Traefik itself: no router, no service, no origin
    assert (unrouted.status, unrouted.upstream, unrouted.duration_ns) == (404, None, 10_158)
    assert unrouted.start_ns == iso_ns("2026-01-14T09:45:33+00:00") + 759_014_877
    assert attributes(unrouted)["origin_status"] == 0
    assert attributes(unrouted)["tls_version"] == "1.3"
    assert [(q.position, q.reason) for q in quarantined] == [
        ("line 6", "not a line of traefik_json, traefik_clf")  # a plugin's DEBUG line
    ]


def test_client_host_from_trusted_x_forwarded_for_is_the_client():
    forwarded = read("traefik_json.log")[0][5]
    assert (forwarded.client, forwarded.method, forwarded.status) == (
        "192.168.1.100",
        "OPTIONS",
        204,
    )
    assert forwarded.upstream == "matrix-synapse-client-api@docker"
    assert attributes(forwarded)["x_forwarded_for"] == "192.168.1.100,10.0.0.50"
    assert attributes(forwarded)["peer_address"] == "172.71.122.85"  # ClientAddr, its port cut


def test_clf_lines_are_stamped_with_the_start_and_whole_milliseconds():
    requests, quarantined = read("traefik_clf.log")
    assert not quarantined  # the blank lines at the end are no lines
    assert len(requests) == 7
    first = requests[0]
    assert first.start_ns == iso_ns("2021-12-08T09:16:05+00:00")
    assert (first.client, first.method, first.path, first.status, first.bytes_sent) == (
        "172.17.0.1",
        "GET",
        "/scripts/cpshost.dll",
        200,
        414,
    )
    assert (first.duration_ns, first.upstream, first.host) == (0, "http://172.17.0.3:80", None)
    assert attributes(first) == {"protocol": "HTTP/1.1", "router": "test@docker"}
    assert requests[1].path == "/upload.asp"  # the query string is dropped
    assert requests[3].duration_ns == 1_000_000
    unanswered = requests[4]  # status, size, router and service all "-"
    assert (unanswered.status, unanswered.bytes_sent, unanswered.upstream) == (None, None, None)
    assert "router" not in attributes(unanswered)
    assert requests[5].duration_ns == 42_000_000
    assert attributes(requests[5]) == {
        "protocol": "HTTP/2",
        "router": "test@docker -> leaf@docker",
        "user_agent": "Nikto",
    }
    assert (requests[6].client, requests[6].upstream) == ("172.17.1.3", "http://172.17.0.4:80")


# --- Settings -----------------------------------------------------------------------------------


def test_the_configured_gateway_name_replaces_traefik():
    requests, _ = read("traefik_clf.log", Settings(gateway="ingress"))
    assert {r.gateway for r in requests} == {"ingress"}


def test_the_basic_auth_user_is_the_consumer_unless_the_client_is_asked_for():
    text = json_line(ClientUsername="alice")
    assert parse_json(text, DEFAULT).consumer == "alice"
    assert parse_json(json_line(), DEFAULT).consumer is None  # "-": the map's generic client
    assert parse_json(text, Settings(consumer="client")).consumer == "172.17.0.1"
    clf = '10.0.0.1 - bob [08/Dec/2021:09:16:05 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 1 "-" "-" 3ms'
    assert parse_clf(clf, DEFAULT).consumer == "bob"


def test_a_captured_request_header_names_the_consumer():
    text = json_line(**{"request_X-Consumer-Id": "team-a"})
    assert parse_json(text, Settings(consumer="header:x-consumer-id")).consumer == "team-a"
    assert parse_json(text, Settings(consumer="header:X-Other")).consumer == "172.17.0.1"


def test_hashed_clients_stay_countable_without_their_address():
    settings = Settings(consumer="client", hash_clients=True, hash_key="k")
    requests, _ = read("traefik_json.log", settings)
    assert requests[0].client == requests[1].client == settings.client("172.17.0.1")
    assert requests[0].consumer == requests[0].client
    assert not {"172.17.0.1", "192.168.65.1"} & {r.client for r in requests}


# --- Variants the corpus lacks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "trace_id"),
    [
        ({"TraceId": "4bf92f3577b34da6a3ce929d0e0e4736"}, "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            {"request_Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ({"request_X-B3-Traceid": "a3ce929d0e0e4736"}, "0000000000000000a3ce929d0e0e4736"),
        (
            {"request_X-Request-Id": "0af7651916cd43dd8448eb211c80319c"},
            "0af7651916cd43dd8448eb211c80319c",
        ),
        ({"request_X-Request-Id": "3bbc0252-2d5c-49fe-bd89-104e9b61770b"}, None),  # a UUID
    ],
)
def test_trace_ids_come_from_traefik_or_the_propagation_headers(fields, trace_id):
    assert parse_json(json_line(**fields), DEFAULT).trace_id == trace_id


def test_the_start_falls_back_to_start_local_then_to_the_entry_time_less_the_duration():
    local = json_line(StartUTC=None, StartLocal="2021-12-08T15:02:43.5+01:00")
    assert parse_json(local, DEFAULT).start_ns == iso_ns("2021-12-08T14:02:43+00:00") + 500_000_000
    logged = json_line(StartUTC=None, StartLocal=None, time="2021-12-08T14:02:44Z")
    assert parse_json(logged, DEFAULT).start_ns == iso_ns("2021-12-08T14:02:44+00:00") - 357_313


def test_service_urls_lose_their_user_info_and_query():
    text = json_line(ServiceName=None, ServiceURL="http://svc:s3cret@10.0.0.3:8080/base?token=x")
    request = parse_json(text, DEFAULT)
    assert request.upstream == "http://10.0.0.3:8080/base"  # no service name: the URL
    assert "s3cret" not in request.attributes and "token" not in request.attributes


def test_retries_and_a_referer_without_its_query():
    text = json_line(RetryAttempts=2, request_Referer="https://app.example/login?next=/admin")
    assert attributes(parse_json(text, DEFAULT))["retries"] == 2
    assert attributes(parse_json(text, DEFAULT))["referer"] == "https://app.example/login"


def test_an_x_forwarded_for_list_in_clf_gives_its_first_address():
    clf = (
        '203.0.113.7, 10.0.0.2 - - [08/Dec/2021:09:16:05 +0100] "POST /api?k=v HTTP/2.0" 201 9'
        ' "https://app.example/x?y=z" "curl/8" 3 "api@docker" "http://10.0.0.9:80" 12ms'
    )
    request = parse_clf(clf, DEFAULT)
    assert (request.client, request.path, request.status) == ("203.0.113.7", "/api", 201)
    assert request.start_ns == iso_ns("2021-12-08T08:16:05+00:00")
    assert attributes(request) == {
        "protocol": "HTTP/2.0",
        "referer": "https://app.example/x",
        "router": "api@docker",
        "user_agent": "curl/8",
        "x_forwarded_for": "203.0.113.7, 10.0.0.2",
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"DownstreamStatus": "ok"}, "status 'ok' is not a number"),
        ({"Duration": -5}, "Duration -5 is not a duration in nanoseconds"),
        ({"StartUTC": "yesterday"}, "'yesterday' is not an ISO 8601 time"),
        ({"StartUTC": None, "StartLocal": None, "time": None}, "no start time"),
        ({"RequestPath": ["/a"]}, "RequestPath ['/a'] is not text"),
    ],
)
def test_broken_json_lines_say_what_is_wrong(fields, reason):
    with pytest.raises(BadLine, match=re.escape(reason)):
        parse_json(json_line(**fields), DEFAULT)


def test_other_lines_are_not_traefik_lines():
    nginx = '10.1.2.3 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8"'
    for text in (
        nginx,
        '{"time_iso8601":"2024-05-01T10:00:00Z","status":200,"request":"GET /"}',
        '{"level":"error","msg":"Error while dialing backend","time":"2024-05-01T10:00:00Z"}',
    ):
        for line_format in FORMATS:
            with pytest.raises(NotThisFormat):
                line_format.parse(text, DEFAULT)


# --- Robustness ---------------------------------------------------------------------------------


def test_long_hostile_lines_take_no_longer_than_their_length():
    """An X-Forwarded-For in CLIENT_HOST, or quotes in a user agent, once made the regex
    backtrack over every " - " and quote."""
    started = time.perf_counter()
    for text in (
        "10.0.0.1" + " - x" * 3000 + " [08/Dec/2021:09:16:05 +0000]",
        '10.0.0.1 - - [08/Dec/2021:09:16:05 +0000] "GET / HTTP/1.1" 200 1 "-" "'
        + '" "' * 3000
        + ' 1 "r" "u" 5ms',
    ):
        for line_format in FORMATS:
            with contextlib.suppress(NotThisFormat, BadLine):
                line_format.parse(text, DEFAULT)
    assert time.perf_counter() - started < 0.5


SAMPLE_LINES = [
    text
    for name in TRAEFIK_FILES
    for text in corpus("traefik", name).read_text().splitlines()
    if text
]
SETTINGS = [DEFAULT, Settings(consumer="header:X-Api-Key", hash_clients=True, hash_key="k")]


@hypothesis_settings(
    max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None
)
@given(
    text=st.one_of(st.text(max_size=300), mutated_lines(SAMPLE_LINES)),
    which=st.sampled_from(SETTINGS),
)
def test_any_line_is_read_or_refused_with_a_reason_never_a_crash(text, which):
    for request in parses_or_refuses(text, which, *(f.parse for f in FORMATS)):
        assert request.status is None or 0 < request.status <= 999
        assert request.attributes is None or isinstance(orjson.loads(request.attributes), dict)


def test_a_captured_header_that_pins_a_version_is_named():
    line = json_line(**{"request_Api-Version": "2"})
    assert attributes(parse_json(line, DEFAULT))["version_header"] == "Api-Version"
    assert "version_header" not in attributes(parse_json(json_line(), DEFAULT))
