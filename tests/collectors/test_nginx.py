"""The NGINX access-log collector on the shared corpus as it is, and on the format variants the
corpus lacks."""

from __future__ import annotations

import calendar
import contextlib
import re
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clew.records import GatewayRequest, Quarantined
from collectors import HEAD_BYTES, CollectorError, Source
from collectors.access_logs import BadLine, NotThisFormat, Settings
from collectors.access_logs.nginx import (
    FORMATS,
    collector,
    parse_combined,
    parse_json,
    parse_proxy_manager,
)
from tests.collectors.strategies import mutated_lines, parses_or_refuses
from tests.conftest import corpus, examples

NGINX_FILES = [
    "alp_json_access.log",
    "beats_nginx_access_test.log",
    "nginx-http-generic-bf.log",
    "nginx-http-malformed_nginx_http-logs.log",
    "nginx-http-sqli-probing.log",
    "nginx-http-xss-probing.log",
    "nginx-proxy-manager-logs.log",
    "nginx_http-logs.log",
]
DEFAULT = Settings()


def utc_ns(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return calendar.timegm((year, month, day, hour, minute, second)) * 1_000_000_000


def read(name: str, settings: Settings = DEFAULT) -> tuple[list[GatewayRequest], list]:
    """The requests and the quarantined lines of a corpus file."""
    records = list(collector().configured(settings).collect(Source(corpus("nginx", name))))
    requests = [r for r in records if type(r) is GatewayRequest]
    return requests, [r for r in records if type(r) is Quarantined]


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


# --- The corpus, worked out by hand -------------------------------------------------------------


def test_crowdsec_combined_lines_with_a_leading_virtual_host_and_an_error_line():
    requests, quarantined = read("nginx_http-logs.log")
    assert len(requests) == 8
    first = requests[0]
    assert first.start_ns == utc_ns(2020, 1, 4, 7, 25, 2)  # no $request_time: the logged time
    assert (first.gateway, first.client, first.consumer) == ("nginx", "192.168.1.1", None)
    assert (first.method, first.path, first.status) == (
        "GET",
        "/.well-known/acme-challenge/FMuukC2JOJ5HKmLBujjE_BkDo",
        404,
    )
    assert (first.bytes_sent, first.duration_ns, first.upstream, first.host) == (
        522,
        None,
        None,
        None,
    )
    assert attributes(first) == {"protocol": "HTTP/1.1", "user_agent": "Go-http-client/1.1"}
    assert requests[2].path == "/solr/admin/info/system"  # the query string is dropped
    assert [r.host for r in requests[3:6]] == [
        "www.crowdsec.net",
        "www.crowdsec11.net",
        "www.crowdsec11.net:80",
    ]
    assert [r.client for r in requests[3:6]] == ["192.168.1.1"] * 3
    assert (requests[5].status, requests[5].bytes_sent) == (301, 0)
    authenticated = requests[6]
    assert (authenticated.consumer, authenticated.client) == ("user123", "192.168.1.1")
    assert attributes(authenticated)["user"] == "user123"
    without_user_field = requests[7]  # "192.168.1.1 - [08/Jun/2020...]": no $remote_user at all
    assert (without_user_field.path, without_user_field.status) == ("/api/test", 200)
    assert [(q.position, q.reason) for q in quarantined] == [
        ("line 9", "nginx_combined: an NGINX error log line ([error]), not a request")
    ]


def test_x_forwarded_for_lists_in_the_address_position_leave_the_connection_as_the_client():
    requests, quarantined = read("beats_nginx_access_test.log")
    assert not quarantined
    assert len(requests) == 7
    clients = [(r.client, attributes(r).get("x_forwarded_for")) for r in requests]
    assert clients == [
        ("127.0.0.1", "10.0.0.2, 10.0.0.1, 127.0.0.1"),  # $proxy_add_x_forwarded_for: last
        ("172.17.0.1", None),  # a trailing "$http_x_forwarded_for" of "-"
        ("85.181.35.98", "10.0.0.2, 10.0.0.1, 85.181.35.98"),
        ("85.181.35.98", None),
        ("10.2.1.185", "10.5.102.222, 199.96.1.1, 204.246.1.1"),  # "list" address
        ("10.2.2.121", "2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17"),  # list address
        ("127.0.0.1", None),
    ]
    assert requests[0].start_ns == utc_ns(2016, 12, 7, 10, 5, 7)  # +0100
    assert (requests[4].path, requests[4].bytes_sent) == ("/assets/xxxx", 25507)
    empty = requests[6]  # "" 400: NGINX answered a connection that sent no request line
    assert (empty.method, empty.path, empty.status, empty.bytes_sent) == (None, None, 400, 0)
    assert empty.attributes is None


def test_unreadable_request_lines_answered_400_are_requests_without_a_method():
    requests, quarantined = read("nginx-http-malformed_nginx_http-logs.log")
    assert not quarantined
    assert len(requests) == 12
    assert {(r.method, r.path, r.status, r.bytes_sent) for r in requests} == {
        (None, None, 400, 157)
    }
    assert {r.client for r in requests} == {"1.2.3.4"}
    assert requests[0].start_ns == utc_ns(2023, 7, 29, 17, 26, 6)  # -0700
    received = [attributes(r)["unreadable_request"] for r in requests]
    assert received[4] == "HELP"
    assert received[6] == "batman"
    assert received[7].startswith("\\x16\\x03\\x01")  # a TLS handshake on a plain HTTP port
    assert all(len(text) <= 64 for text in received)


@pytest.mark.parametrize(
    ("name", "count", "start"),
    [
        ("nginx-http-sqli-probing.log", 16, utc_ns(2021, 9, 30, 9, 11, 54)),
        ("nginx-http-xss-probing.log", 26, utc_ns(2021, 9, 30, 9, 14, 41)),
    ],
)
def test_probes_keep_their_paths_and_drop_their_payload_query_strings(name, count, start):
    requests, quarantined = read(name)
    assert not quarantined
    assert len(requests) == count
    assert {(r.start_ns, r.method, r.path, r.status, r.bytes_sent) for r in requests} == {
        (start, "GET", "/foo", 404, 162)
    }
    assert {r.attributes for r in requests} == {
        '{"protocol":"HTTP/1.1","user_agent":"curl/7.68.0"}'
    }


def test_nginx_proxy_manager_lines_mixed_with_combined_and_error_lines():
    requests, quarantined = read("nginx-proxy-manager-logs.log")
    assert len(requests) == 12
    assert [(q.position, q.reason) for q in quarantined] == [
        ("line 5", "nginx_combined: an NGINX error log line ([error]), not a request"),
        ("line 6", "nginx_combined: an NGINX error log line ([error]), not a request"),
    ]
    proxied = requests[0]  # the "proxy" format
    assert proxied.start_ns == utc_ns(2022, 1, 24, 16, 51, 2)
    assert (proxied.client, proxied.method, proxied.host, proxied.path, proxied.status) == (
        "1.2.3.4",
        "GET",
        "openresty.local",
        "/sdfdsf",
        404,
    )
    assert (proxied.upstream, proxied.bytes_sent, proxied.duration_ns) == ("openresty", 192, None)
    assert attributes(proxied) == {
        "gzip_ratio": "3.10",
        "scheme": "http",
        "upstream_status": "404",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/96.0.4664.110 Safari/537.36",
    }
    assert (requests[1].path, requests[1].bytes_sent) == ("/d93rfgxd.axd", 552)  # combined
    closed = requests[2]  # the "standard" format; 444: NGINX closed the connection
    assert (closed.client, closed.host, closed.path, closed.status, closed.upstream) == (
        "207.32.219.89",
        "4.3.2.1",
        "/.env",
        444,
        None,
    )
    cached = requests[4]
    assert (cached.upstream, cached.client, cached.bytes_sent) == (
        "10.0.0.15:8080",
        "192.168.1.100",
        1543,
    )
    assert attributes(cached)["cache_status"] == "HIT"
    assert attributes(cached)["referer"] == "https://example.com/dashboard"
    assert [r.status for r in requests] == [
        404,
        404,
        444,
        304,
        200,
        404,
        500,
        302,
        200,
        404,
        301,
        403,
    ]


def test_alp_json_lines_start_a_request_time_before_they_were_written():
    requests, quarantined = read("alp_json_access.log")
    assert not quarantined
    assert len(requests) == 14
    first = requests[0]
    # "2015-09-06T05:58:05+09:00" less "response_time": 0.057
    assert first.start_ns == utc_ns(2015, 9, 5, 20, 58, 5) - 57_000_000
    assert (first.method, first.path, first.status, first.bytes_sent) == (
        "POST",
        "/foo/bar",
        200,
        12,
    )
    assert (first.duration_ns, first.client, first.consumer) == (57_000_000, None, None)
    assert attributes(first) == {"user_agent": "UA1"}  # the token in the query is not kept
    no_time = requests[3]  # "response_time": "-"
    assert (no_time.duration_ns, no_time.start_ns) == (None, utc_ns(2015, 9, 5, 21, 0, 43))
    assert requests[12].duration_ns == 60_000_000_000  # 60.000 s, exactly
    assert requests[12].status == 504
    # "response_time": "-" beside "request_time": 0.321: the first key that has a value
    assert requests[13].duration_ns == 321_000_000


def test_an_error_log_is_refused_with_its_reason():
    path = corpus("nginx", "nginx-http-generic-bf.log")
    assert collector().detect(path.read_bytes()[:HEAD_BYTES])  # so that no other claims it
    with pytest.raises(CollectorError, match="line 1: an NGINX error log, not an access log"):
        list(collector().collect(Source(path)))


# --- Settings -----------------------------------------------------------------------------------


def test_the_configured_gateway_name_replaces_nginx():
    requests, _ = read("nginx_http-logs.log", Settings(gateway="edge"))
    assert {r.gateway for r in requests} == {"edge"}


def test_consumers_are_the_authenticated_user_or_the_client_as_configured():
    requests = read("nginx_http-logs.log")[0]
    assert [r.consumer for r in requests[5:8]] == [None, "user123", None]
    by_client = read("nginx_http-logs.log", Settings(consumer="client"))[0]
    assert [r.consumer for r in by_client[5:8]] == ["192.168.1.1"] * 3


def test_hashed_clients_stay_countable_without_their_address():
    settings = Settings(consumer="client", hash_clients=True, hash_key="k")
    requests, _ = read("beats_nginx_access_test.log", settings)
    assert requests[2].client == requests[3].client == settings.client("85.181.35.98")
    assert requests[2].client.startswith("client-")
    assert requests[2].consumer == requests[2].client
    assert "85.181.35.98" not in {r.client for r in requests}


def test_a_json_request_header_names_the_consumer():
    text = (
        '{"time_iso8601":"2024-05-01T10:00:00+00:00","remote_addr":"10.0.0.9",'
        '"request":"GET /v1/orders HTTP/1.1","status":"200","http_x_api_key":"team-a"}'
    )
    assert parse_json(text, Settings(consumer="header:X-Api-Key")).consumer == "team-a"
    assert parse_json(text, Settings(consumer="header:X-Other")).consumer == "10.0.0.9"


def test_json_keys_named_by_the_operator_are_read_through_settings_fields():
    text = '{"ts":"01/May/2024:10:00:00 +0200","req":"POST /pay HTTP/2.0","code":201,"took":1.5}'
    with pytest.raises(NotThisFormat):
        parse_json(text, DEFAULT)
    settings = Settings(
        fields={"time": "ts", "request": "req", "status": "code", "duration": "took"}
    )
    request = parse_json(text, settings)
    assert (request.method, request.path, request.status) == ("POST", "/pay", 201)
    assert request.start_ns == utc_ns(2024, 5, 1, 8, 0, 0) - 1_500_000_000
    with pytest.raises(BadLine, match=r"fields \['start'\] are none of"):
        parse_json(text, Settings(fields={"start": "ts"}))


# --- Variants the corpus lacks ------------------------------------------------------------------

COMBINED = '10.1.2.3 - - [01/May/2024:10:00:00 +0000] "GET /api/orders?id=7 HTTP/1.1" 200 512'


def test_common_format_has_no_referer_or_user_agent():
    request = parse_combined(COMBINED, DEFAULT)
    assert (request.client, request.path, request.status, request.bytes_sent) == (
        "10.1.2.3",
        "/api/orders",
        200,
        512,
    )
    assert attributes(request) == {"protocol": "HTTP/1.1"}


def test_request_and_upstream_times_as_bare_trailing_fields():
    text = (
        COMBINED + ' "https://shop.example/cart?session=secret" "curl/8" "203.0.113.9" 0.120 0.100'
    )
    request = parse_combined(text, DEFAULT)
    assert (request.duration_ns, request.upstream_duration_ns) == (120_000_000, 100_000_000)
    assert request.start_ns == utc_ns(2024, 5, 1, 10, 0, 0) - 120_000_000
    assert attributes(request)["referer"] == "https://shop.example/cart"  # no query string
    assert attributes(request)["x_forwarded_for"] == "203.0.113.9"
    assert request.client == "10.1.2.3"  # the connection's address, not the header's


def test_the_key_value_pairs_of_the_widely_used_extended_format():
    text = (
        COMBINED + ' "-" "curl/8" rt=0.250 uct="0.001" uht="0.050" urt="0.010, 0.200"'
        ' ua="10.0.0.5:8080, 10.0.0.6:8080" us="502, 200"'
        " request_id=0af7651916cd43dd8448eb211c80319c"
        ' traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" cookie="s=secret"'
    )
    request = parse_combined(text, DEFAULT)
    assert (request.duration_ns, request.upstream_duration_ns) == (250_000_000, 210_000_000)
    assert request.upstream == "10.0.0.6:8080"  # the last tried, whose response was sent
    assert request.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # traceparent before $request_id
    assert attributes(request) == {
        "protocol": "HTTP/1.1",
        "request_id": "0af7651916cd43dd8448eb211c80319c",
        "upstream_addr": "10.0.0.5:8080, 10.0.0.6:8080",
        "upstream_connect_ns": 1_000_000,
        "upstream_header_ns": 50_000_000,
        "upstream_status": "502, 200",
        "user_agent": "curl/8",
    }


def test_amplify_main_ext_reads_its_quoted_host_and_ua_as_the_upstream_address():
    text = (
        COMBINED + ' "-" "Mozilla/5.0" "-" "api.example.com" sn="api" rt=0.004 ua="10.0.0.7:80"'
        ' us="200" ut="0.003" ul="512" cs=-'
    )
    request = parse_combined(text, DEFAULT)
    assert (request.host, request.upstream) == ("api.example.com", "10.0.0.7:80")
    assert (request.duration_ns, request.upstream_duration_ns) == (4_000_000, 3_000_000)
    assert attributes(request)["server_name"] == "api"
    assert attributes(request)["user_agent"] == "Mozilla/5.0"


def test_ingress_nginx_upstreaminfo_names_the_kubernetes_service_as_upstream():
    text = (
        '192.168.1.1 - - [10/Oct/2023:13:55:36 +0000] "GET /api HTTP/1.1" 200 612 "-" "curl/7.68.0"'
        " 78 0.002 [default-web-80] [] 10.244.0.5:8080 612 0.002 200"
        " 4bf92f3577b34da6a3ce929d0e0e4736"
    )
    request = parse_combined(text, DEFAULT)
    assert (request.upstream, request.bytes_received) == ("default-web-80", 78)
    assert (request.duration_ns, request.upstream_duration_ns) == (2_000_000, 2_000_000)
    assert request.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # a trace-shaped $req_id
    assert attributes(request)["upstream_addr"] == "10.244.0.5:8080"


def test_ipv6_clients_lose_their_port_but_not_their_colons():
    assert parse_combined(COMBINED.replace("10.1.2.3", "[2001:db8::1]:51234"), DEFAULT).client == (
        "2001:db8::1"
    )
    assert parse_combined(COMBINED.replace("10.1.2.3", "2001:db8::1"), DEFAULT).client == (
        "2001:db8::1"
    )


def test_escaped_bytes_are_read_back_as_text():
    text = (
        COMBINED.replace("/api/orders?id=7", "/caf\\xC3\\xA9/\\x22q\\x22") + ' "-" "b\\xC3\\xA4r"'
    )
    request = parse_combined(text, DEFAULT)
    assert request.path == '/café/"q"'
    assert attributes(request)["user_agent"] == "bär"


def test_http_09_request_lines_have_no_protocol():
    request = parse_combined(COMBINED.replace(" HTTP/1.1", ""), DEFAULT)
    assert (request.method, request.path, request.attributes) == ("GET", "/api/orders", None)


def test_json_with_split_request_fields_msec_time_and_an_upstream():
    text = orjson.dumps(
        {
            "msec": "1714557600.250",
            "remote_addr": "10.0.0.1",
            "remote_user": "-",
            "request_method": "PUT",
            "request_uri": "/items/9?force=1",
            "server_protocol": "HTTP/1.1",
            "status": 204,
            "body_bytes_sent": 0,
            "request_length": 321,
            "request_time": "0.250",
            "upstream_response_time": "0.240",
            "upstream_addr": "10.0.0.2:9000",
            "http_host": "items.internal",
            "http_traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "http_cookie": "secret",
        }
    ).decode()
    request = parse_json(text, DEFAULT)
    assert request.start_ns == 1_714_557_600_000_000_000  # msec is the log write, less 0.250
    assert (request.method, request.path, request.host, request.status) == (
        "PUT",
        "/items/9",
        "items.internal",
        204,
    )
    assert (request.bytes_sent, request.bytes_received, request.upstream) == (
        0,
        321,
        "10.0.0.2:9000",
    )
    assert request.upstream_duration_ns == 240_000_000
    assert request.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert attributes(request) == {"protocol": "HTTP/1.1"}  # no cookie: unknown keys stay out


def test_json_with_bytes_that_are_no_utf8():
    text = '{"time":"2024-05-01T10:00:00Z","request":"GET /\\xff HTTP/1.1","status":400}'
    assert parse_json(text, DEFAULT).path == "/\\xff"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (COMBINED.replace(" 200 ", " 2x0 "), "status '2x0' is not a number"),
        (COMBINED.replace(" 512", " 5k"), "bytes sent '5k' is not a number"),
        (COMBINED.replace("01/May/2024", "41/May/2024"), "is not a valid time"),
        (
            COMBINED.replace("GET /api/orders?id=7 HTTP/1.1", "\\x16\\x03\\x01"),
            "request line '\\\\x16\\\\x03\\\\x01' is not METHOD TARGET PROTOCOL, yet the status"
            " is 200",
        ),
        (COMBINED + ' "-" "curl" "unclosed', "the fields after the user agent, '\"unclosed'"),
        (COMBINED + ' "-" "curl" rt=fast', "request time 'fast' is not a time in seconds"),
        (COMBINED[:60], "the line breaks off or is out of order after [TIME]"),
    ],
)
def test_broken_combined_lines_say_what_is_wrong(text, reason):
    with pytest.raises(BadLine, match=re.escape(reason)):
        parse_combined(text, DEFAULT)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"time":"x","request":"GET / HTTP/1.1","status":200}', "'x' is not an ISO 8601 time"),
        ('{"time":1,"request":"GET / HTTP/1.1","status":"ok"}', "status 'ok' is not a number"),
        ('{"time":1,"request":"GET / HTTP/1.1","status":200,', "not valid JSON"),
    ],
)
def test_broken_json_lines_say_what_is_wrong(text, reason):
    with pytest.raises(BadLine, match=re.escape(reason)):
        parse_json(text, DEFAULT)


def test_container_runtime_prefixes_are_removed_before_parsing(tmp_path: Path):
    path = tmp_path / "access.log"
    path.write_text(f"2024-05-01T10:00:00.1Z stdout F {COMBINED}\n")
    [request] = [r for r in collector().collect(Source(path)) if type(r) is GatewayRequest]
    assert (request.client, request.path) == ("10.1.2.3", "/api/orders")


def test_other_products_lines_are_not_nginx_lines():
    for text in (
        COMBINED + ' "-" "curl" 3 "api@docker" "http://10.0.0.9:80" 12ms',  # Traefik's CLF
        COMBINED + ' "-" "curl" 3 "api@dock',  # the same, cut short
        COMBINED + ' "" "" 33317 655 "http-in~" "static" "srv1" 10 0 30 69 109 "----"',  # HAProxy
        '203.0.113.9 - - [06/Dec/2026:10:00:05 +0000]"GET /pets/{petId} HTTP/1.1" 200 48 c6af9',
    ):
        with pytest.raises(NotThisFormat):
            parse_combined(text, DEFAULT)
    for text in (
        '{"level":"info","msg":"Configuration loaded"}',
        '{"started_at":1,"request":{"method":"GET"},"response":{"status":200}}',
        '{"start_time":"2024-01-01T00:00:00Z","method":"GET","path":"/","response_code":200}',
        '{"requestTime":"01/May/2024:10:00:00 +0000","httpMethod":"GET","path":"/","status":"200"}',
    ):
        with pytest.raises(NotThisFormat):
            parse_json(text, DEFAULT)
    with pytest.raises(NotThisFormat):
        parse_proxy_manager(COMBINED, DEFAULT)


# --- Robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1" + " - x" * 3000 + ' [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1',
        COMBINED + ' "-" "-"' + " a : b" * 2000 + ' "',
        COMBINED + ' "-" "-"' + " a=b" * 2000 + ' "',
        COMBINED + ' "-" "-" 1 0.1 [web] [] ' + "a : " * 2000 + ' "',
    ],
    ids=["separators", "lists", "pairs", "ingress"],
)
def test_long_hostile_lines_take_no_longer_than_their_length(text):
    """Fields an attacker controls (X-Forwarded-For, trailing headers) once made the regexes
    backtrack for minutes on one line."""
    started = time.perf_counter()
    for line_format in FORMATS:
        with contextlib.suppress(NotThisFormat, BadLine):
            line_format.parse(text, DEFAULT)
    assert time.perf_counter() - started < 0.5


SAMPLE_LINES = [
    text
    for name in NGINX_FILES
    for text in corpus("nginx", name).read_text(errors="backslashreplace").splitlines()
    if text
]
SETTINGS = [
    DEFAULT,
    Settings(consumer="header:X-Api-Key", hash_clients=True, hash_key="k"),
    Settings(fields={"time": "time", "status": "status", "request": "request"}),
]


@hypothesis_settings(
    max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None
)
@given(
    text=st.one_of(st.text(max_size=300), mutated_lines(SAMPLE_LINES)),
    which=st.sampled_from(SETTINGS),
)
def test_any_line_is_read_or_refused_with_a_reason_never_a_crash(text, which):
    for request in parses_or_refuses(text, which, *(f.parse for f in FORMATS)):
        assert request.status is None or 0 <= request.status <= 999
        assert request.attributes is None or isinstance(orjson.loads(request.attributes), dict)
