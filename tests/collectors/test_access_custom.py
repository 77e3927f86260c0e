"""Access logs in an operator's own format, from a mapping file: NGINX ``log_format`` strings
compiled to a reader, JSON keys mapped to Clew's fields, and mapping files refused with what is
wrong in them."""

from __future__ import annotations

import calendar
import contextlib
import pickle
import re
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clew.records import Checkpoint, GatewayRequest, Quarantined
from collectors import Source
from collectors.access_logs import BadLine, Settings, custom, nginx
from collectors.access_logs.custom import JsonFormat, MappingError, NginxFormat
from tests.collectors.strategies import mutated_lines
from tests.conftest import corpus, examples

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
    ' "$http_referer" "$http_user_agent"'
)
MAIN = (
    f'{COMBINED} rt=$request_time uct=$upstream_connect_time urt="$upstream_response_time"'
    " trace=$http_traceparent"
)
ISO_AND_MSEC = (
    'time=$time_iso8601 msec=$msec $host "$request_method $request_uri $server_protocol"'
    " $status $bytes_sent $request_length rt=$request_time ua=$upstream_addr us=$upstream_status"
    " rid=$request_id ssl=$ssl_protocol"
)
# Nginx Proxy Manager's "standard" log_format (its log-proxy.conf).
NPM_STANDARD = (
    '[$time_local] $status - $request_method $scheme $host "$request_uri" [Client $remote_addr]'
    ' [Length $body_bytes_sent] [Gzip $gzip_ratio] "$http_user_agent" "$http_referer"'
)
DEFAULT = Settings()
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def utc_ns(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return calendar.timegm((year, month, day, hour, minute, second)) * 1_000_000_000


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


def mapping(tmp_path: Path, text: str, name: str = "edge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def records(collector, path: Path) -> list:
    return [r for r in collector.collect(Source(path)) if type(r) is not Checkpoint]


def nginx_mapping(tmp_path: Path, log_format: str) -> Path:
    return mapping(tmp_path, f"format = \"nginx\"\nlog_format = '{log_format}'\n")


# --- NGINX log_format: the corpus, next to the built-in collector --------------------------------


@pytest.mark.parametrize(
    ("name", "read_lines"),
    [
        ("nginx_http-logs.log", [1, 2, 3, 7]),
        ("nginx-http-malformed_nginx_http-logs.log", list(range(1, 13))),
        ("nginx-http-sqli-probing.log", list(range(1, 17))),
        ("nginx-http-xss-probing.log", list(range(1, 27))),
        ("beats_nginx_access_test.log", [4, 7]),
    ],
)
def test_combined_as_a_log_format_gives_exactly_the_nginx_collectors_records(
    tmp_path, name, read_lines
):
    """Every line the combined log_format describes is read exactly as the built-in collector
    reads it (unreadable request lines too); the others (a leading virtual host, a missing user
    field, X-Forwarded-For lists, an error line) are quarantined, not guessed at."""
    path = corpus("nginx", name)
    mine = records(custom.collector(nginx_mapping(tmp_path, COMBINED)), path)
    built_in = records(nginx.collector(), path)
    assert len(mine) == len(built_in)
    read = [n for n, record in enumerate(mine, 1) if type(record) is GatewayRequest]
    assert read == read_lines
    for record, theirs in zip(mine, built_in, strict=True):
        if type(record) is GatewayRequest:
            assert record == theirs
        else:
            assert record.reason.startswith("edge.toml: not in the log_format: ")


def test_the_corpus_lines_combined_does_not_describe_are_quarantined_with_where_they_differ(
    tmp_path,
):
    mine = records(
        custom.collector(nginx_mapping(tmp_path, COMBINED)), corpus("nginx", "nginx_http-logs.log")
    )
    reasons = {int(r.position.split()[1]): r.reason for r in mine if type(r) is Quarantined}
    assert reasons[4] == (
        "edge.toml: not in the log_format: expected ' - ' after $remote_addr at column 17,"
        " found ' 192.168.1.1 - - [08/Jun'"
    )
    assert reasons[8].startswith(  # "ADDRESS - [TIME]": no user field
        "edge.toml: not in the log_format: expected ' [' after $remote_user at column 36"
    )
    assert set(reasons) == {4, 5, 6, 8, 9}


def test_forwarded_lists_in_the_address_place_read_as_proxy_add_x_forwarded_for(tmp_path):
    """The Beats sample's lists before `` - - [``: NGINX's ``$proxy_add_x_forwarded_for``, whose
    last address is the connection's, as the built-in collector reads them."""
    log_format = COMBINED.replace("$remote_addr", "$proxy_add_x_forwarded_for")
    path = corpus("nginx", "beats_nginx_access_test.log")
    mine = records(custom.collector(nginx_mapping(tmp_path, log_format)), path)
    built_in = records(nginx.collector(), path)
    read = [(n, r) for n, r in enumerate(mine, 1) if type(r) is GatewayRequest]
    assert [n for n, _ in read] == [1, 3, 4, 7]
    assert [r for _, r in read] == [built_in[n - 1] for n, _ in read]
    assert (read[0][1].client, attributes(read[0][1])["x_forwarded_for"]) == (
        "127.0.0.1",
        "10.0.0.2, 10.0.0.1, 127.0.0.1",
    )


def test_nginx_proxy_managers_standard_format_reads_its_lines_as_the_built_in_one(tmp_path):
    path = corpus("nginx", "nginx-proxy-manager-logs.log")
    mine = records(custom.collector(nginx_mapping(tmp_path, NPM_STANDARD)), path)
    built_in = records(nginx.collector(), path)
    read = [n for n, r in enumerate(mine, 1) if type(r) is GatewayRequest]
    assert read == [3, 11, 12, 13, 14]  # the lines of the standard format
    assert [mine[n - 1] for n in read] == [built_in[n - 1] for n in read]
    assert attributes(mine[10]) == {
        "gzip_ratio": "3.12",
        "scheme": "https",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36"
        " (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
    }


# --- NGINX log_format: fields, by hand ----------------------------------------------------------


def test_a_main_format_with_request_upstream_and_connect_times_and_a_traceparent():
    parse = NginxFormat(MAIN, "edge-proxy")
    request = parse(
        '203.0.113.7 - alice [10/Oct/2024:13:55:36 +0200] "GET /v1/payments/42?card=4111'
        ' HTTP/1.1" 502 120 "https://shop.example.com/cart?id=3" "curl/8.5.0" rt=0.250'
        f' uct=0.001, 0.002 urt="0.100, 0.120" trace={TRACEPARENT}',
        DEFAULT,
    )
    end = utc_ns(2024, 10, 10, 11, 55, 36)
    assert request == GatewayRequest(
        start_ns=end - 250_000_000,  # the log write, less $request_time
        gateway="edge-proxy",
        consumer="alice",  # --consumer auto: the user the log names
        client="203.0.113.7",
        method="GET",
        host=None,
        path="/v1/payments/42",
        route=None,
        status=502,
        duration_ns=250_000_000,
        upstream_duration_ns=220_000_000,  # two upstreams tried: the time spent on both
        upstream=None,
        bytes_sent=120,
        bytes_received=None,
        trace_id=TRACE,
        attributes=request.attributes,
    )
    assert attributes(request) == {
        "protocol": "HTTP/1.1",
        "referer": "https://shop.example.com/cart",
        "upstream_connect_ns": 3_000_000,
        "user": "alice",
        "user_agent": "curl/8.5.0",
    }


def test_dashes_are_missing_values_and_escaped_bytes_are_read_back():
    request = NginxFormat(MAIN)(
        '198.51.100.4 - - [10/Oct/2024:13:55:37 +0000] "POST /v1/caf\\xC3\\xA9 HTTP/2.0" 201 0'
        ' "-" "Mozilla/5.0 \\x22quoted\\x22" rt=0.012 uct=- urt="-" trace=-',
        DEFAULT,
    )
    assert (request.gateway, request.consumer, request.path, request.status) == (
        "nginx",
        None,
        "/v1/café",
        201,
    )
    assert (request.duration_ns, request.upstream_duration_ns, request.trace_id) == (
        12_000_000,
        None,
        None,
    )
    assert attributes(request) == {"protocol": "HTTP/2.0", "user_agent": 'Mozilla/5.0 "quoted"'}


def test_msec_is_the_time_before_time_iso8601_and_the_request_is_read_in_parts():
    request = NginxFormat(ISO_AND_MSEC, "edge")(
        "time=2024-10-10T13:55:36+02:00 msec=1728561336.789 api.example.com"
        ' "PUT /v1/orders/7?token=abc HTTP/2.0" 200 512 230 rt=0.042'
        f" ua=10.0.0.5:8080, 10.0.0.6:8080 us=502, 200 rid={TRACE} ssl=TLSv1.3",
        DEFAULT,
    )
    assert utc_ns(2024, 10, 10, 11, 55, 36) == 1_728_561_336_000_000_000
    assert request.start_ns == 1_728_561_336_747_000_000  # $msec − $request_time, to the ms
    assert (request.method, request.host, request.path, request.status) == (
        "PUT",
        "api.example.com",
        "/v1/orders/7",
        200,
    )
    assert (request.bytes_sent, request.bytes_received, request.upstream) == (
        512,
        230,
        "10.0.0.6:8080",  # the last upstream tried: the one that answered
    )
    assert request.trace_id == TRACE  # a trace-shaped $request_id
    assert attributes(request) == {
        "protocol": "HTTP/2.0",
        "request_id": TRACE,
        "ssl_protocol": "TLSv1.3",  # an unknown variable: kept by its name
        "upstream_addr": "10.0.0.5:8080, 10.0.0.6:8080",
        "upstream_status": "502, 200",
    }


def test_time_iso8601_alone_and_the_timezone_of_a_time_without_one():
    parse = NginxFormat('$time_iso8601 $status "$request"')
    request = parse('2024-10-10T13:55:36+02:00 404 "GET /missing HTTP/1.1"', DEFAULT)
    assert (request.start_ns, request.status, request.path) == (
        utc_ns(2024, 10, 10, 11, 55, 36),
        404,
        "/missing",
    )
    quoted = NginxFormat('[$time_iso8601] $status "$request"')
    local = quoted('[2024-10-10T13:55:36] 200 "GET / HTTP/1.1"', Settings(timezone=120))
    assert local.start_ns == utc_ns(2024, 10, 10, 11, 55, 36)


def test_upstream_names_forwarded_clients_captured_headers_and_secrets():
    parse = NginxFormat(
        '$remote_addr "$http_x_forwarded_for" $status [$time_local] "$request" $proxy_host'
        ' key=$http_x_api_key auth="$http_authorization" q=$args c=$cookie_session'
        " t=$arg_token tenant=$http_x_tenant"
    )
    line = (
        '10.0.0.9 "198.51.100.1, 10.0.0.8" 200 [10/Oct/2024:13:55:36 +0000] "GET /v1/a HTTP/1.1"'
        ' orders_backend key=k-123 auth="Bearer abc" q=token=xyz c=s3ss t=xyz tenant=acme'
    )
    request = parse(line, DEFAULT)
    assert (request.client, request.consumer, request.upstream) == (
        "10.0.0.9",
        None,
        "orders_backend",  # $proxy_host: the upstream group proxy_pass names
    )
    assert attributes(request) == {
        "http_x_tenant": "acme",
        "protocol": "HTTP/1.1",
        "x_forwarded_for": "198.51.100.1, 10.0.0.8",
    }  # no API key, authorization, query arguments or cookie
    assert parse(line, Settings(consumer="header:X-Api-Key")).consumer == "k-123"
    assert parse(line, Settings(consumer="client")).consumer == "10.0.0.9"
    no_header = line.replace("key=k-123", "key=-")
    assert parse(no_header, Settings(consumer="header:X-Api-Key")).consumer == "10.0.0.9"
    hashed = parse(line, Settings(consumer="client", hash_clients=True, hash_key="k"))
    assert hashed.client.startswith("client-") and hashed.consumer == hashed.client


def test_without_remote_addr_the_forwarded_lists_last_address_is_the_client():
    request = NginxFormat("$http_x_forwarded_for [$time_local] $status")(
        "198.51.100.1, 10.0.0.8 [10/Oct/2024:13:55:36 +0000] 200", DEFAULT
    )
    assert (request.client, attributes(request)) == (
        "10.0.0.8",
        {"x_forwarded_for": "198.51.100.1, 10.0.0.8"},
    )


def test_config_escapes_braced_names_and_an_unquoted_request_line():
    # As nginx.conf holds it inside double quotes: \" is a quote.
    parse = NginxFormat('${remote_addr} [$time_local] \\"$request\\" ${status}')
    request = parse('10.0.0.1 [10/Oct/2024:13:55:36 +0000] "GET /a HTTP/1.1" 200', DEFAULT)
    assert (request.client, request.method, request.path, request.status) == (
        "10.0.0.1",
        "GET",
        "/a",
        200,
    )
    unquoted = NginxFormat("$time_local $request $status $request_time")
    request = unquoted("10/Oct/2024:13:55:36 +0000 GET /a?b=c HTTP/1.1 200 0.5", DEFAULT)
    assert (request.method, request.path, request.status, request.duration_ns) == (
        "GET",
        "/a",
        200,
        500_000_000,
    )


def test_broken_lines_are_refused_with_what_is_wrong_and_where():
    parse = NginxFormat(MAIN)
    good = (
        '203.0.113.7 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
        ' rt=0.250 uct=- urt="-" trace=-'
    )
    assert parse(good, DEFAULT).status == 200
    cases = {
        good.replace(" 200 ", " 2x0 "): "status '2x0' is not a number",
        good.replace("rt=0.250", "rt=abc"): "request time 'abc' is not a time in seconds",
        good.replace("Oct/2024", "Okt/2024"): "'10/Okt/2024:13:55:36 +0000' is not a time",
        good[:60]: "expected '\" ' after $request at column 61, the line ends there",
        good.replace('"GET / HTTP/1.1"', "GET / HTTP/1.1"): (
            "expected '] \"' after $time_local at column 44, found '] GET / HTTP/1.1 200 1 \"'"
        ),
        good.replace('"GET / HTTP/1.1" 200', '"\\x16\\x03" 200'): "yet the status is 200",
    }
    for line, reason in cases.items():
        with pytest.raises(BadLine) as raised:
            parse(line, DEFAULT)
        assert reason in str(raised.value), line
    spaced = NginxFormat("$time_local $status")
    with pytest.raises(BadLine, match=r"\$time_local at column 1 is not a time like"):
        spaced("yesterday 200", DEFAULT)


def test_broken_lines_are_quarantined_and_reading_goes_on(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(
        '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl"\n'
        "garbage\n"
        '10.0.0.1 - - [10/Oct/2024:13:55:37 +0000] "GET /b HTTP/1.1" 2OO 5 "-" "curl"\n'
        '10.0.0.2 - - [10/Oct/2024:13:55:38 +0000] "GET /c HTTP/1.1" 404 5 "-" "curl"\n'
    )
    found = records(custom.collector(nginx_mapping(tmp_path, COMBINED)), log)
    assert [type(r) for r in found] == [GatewayRequest, Quarantined, Quarantined, GatewayRequest]
    assert found[1] == Quarantined(
        "line 2",
        "edge.toml: not in the log_format: expected ' - ' after $remote_addr at column 8,"
        " the line ends there",
        "garbage",
    )
    assert found[2].reason == "edge.toml: status '2OO' is not a number"
    assert [r.path for r in found if type(r) is GatewayRequest] == ["/a", "/c"]


def test_a_file_that_is_an_nginx_error_log_is_refused(tmp_path):
    from collectors import CollectorError

    collector = custom.collector(nginx_mapping(tmp_path, COMBINED))
    with pytest.raises(CollectorError, match="an NGINX error log, not an access log"):
        records(collector, corpus("nginx", "nginx-http-generic-bf.log"))


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4 " + "a, " * 20_000 + " 10.0.0.1 10/Oct/2024:13:55:36 +0000 200",
        "1.2.3.4 a " + "1, " * 20_000 + "x : " * 10_000,
        "1.2.3.4 a b " + "10/Oct/2024:13:55:36 +0000 " * 5_000,
        "x " * 50_000,
        "1.2.3.4 " + "a,b " * 20_000,
    ],
    ids=["forwarded", "lists", "times", "words", "pairs"],
)
def test_long_hostile_lines_take_no_longer_than_their_length(text):
    parse = NginxFormat(
        "$remote_addr $http_x_forwarded_for $upstream_addr $time_local $status"
        " $upstream_response_time $request $http_user_agent"
    )
    started = time.perf_counter()
    with contextlib.suppress(BadLine):
        parse(text, DEFAULT)
    assert time.perf_counter() - started < 0.5


def test_a_format_is_compiled_again_where_it_is_unpickled():
    """The parse worker receives its collectors pickled."""
    parse = NginxFormat(MAIN, "edge")
    line = (
        '203.0.113.7 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
        f' rt=0.250 uct=- urt="0.1" trace={TRACEPARENT}'
    )
    copy = pickle.loads(pickle.dumps(parse))
    assert copy(line, DEFAULT) == parse(line, DEFAULT)
    json_format = JsonFormat({"start": "t", "status": "s"}, {"start": "epoch_s"}, "edge")
    assert pickle.loads(pickle.dumps(json_format))('{"t": 1, "s": 200}', DEFAULT).status == 200


# --- JSON mappings ------------------------------------------------------------------------------

MS_FIELDS = {
    "start": "ts",
    "method": "verb",
    "path": "uri",
    "status": "code",
    "duration": "took_ms",
    "upstream_duration": "up_ms",
    "client": "peer",
    "consumer": "key_name",
    "route": "route",
    "upstream": "backend",
    "trace_id": "headers.traceparent",
    "bytes_sent": "size",
}
MS_UNITS = {"start": "epoch_ms", "duration": "ms", "upstream_duration": "ms"}


def test_a_json_mapping_with_epoch_milliseconds_and_durations_in_milliseconds():
    parse = JsonFormat(MS_FIELDS, MS_UNITS, "api-gw")
    line = orjson.dumps(
        {
            "ts": 1728561336789,
            "verb": "GET",
            "uri": "/v1/payments/42?x=1",
            "code": 504,
            "took_ms": 30012.5,
            "up_ms": "30000",
            "peer": "[2001:db8::1]:443",
            "key_name": "partner-a",
            "route": "/v1/payments/{id}",
            "backend": "payments",
            "headers": {"traceparent": TRACEPARENT},
            "size": 0,
            "other": {"kept": False},
        }
    ).decode()
    assert parse(line, DEFAULT) == GatewayRequest(
        start_ns=1_728_561_336_789_000_000,
        gateway="api-gw",
        consumer="partner-a",
        client="2001:db8::1",
        method="GET",
        host=None,
        path="/v1/payments/42",
        route="/v1/payments/{id}",
        status=504,
        duration_ns=30_012_500_000,
        upstream_duration_ns=30_000_000_000,
        upstream="payments",
        bytes_sent=0,
        bytes_received=None,
        trace_id=TRACE,
        attributes=None,
    )
    assert parse(line, Settings(consumer="client")).consumer == "2001:db8::1"


def test_a_json_end_time_is_the_start_plus_the_duration_and_nested_lists_give_their_first():
    """A Caddy-like line: the log's time is its end, keys nested, header values in lists."""
    parse = JsonFormat(
        {
            "end": "ts",
            "client": "request.remote_ip",
            "method": "request.method",
            "host": "request.host",
            "path": "request.uri",
            "protocol": "request.proto",
            "user_agent": "request.headers.User-Agent",
            "status": "status",
            "duration": "duration",
            "bytes_sent": "size",
        },
        {"end": "epoch_s"},
        "caddy",
    )
    request = parse(
        '{"level":"info","ts":1728561336.5,"logger":"http.log.access","request":{'
        '"remote_ip":"198.51.100.4","proto":"HTTP/2.0","method":"GET","host":"api.example.com",'
        '"uri":"/v1/a?b=c","headers":{"User-Agent":["curl/8.5.0"]}},"duration":0.25,'
        '"size":10900,"status":200}',
        DEFAULT,
    )
    assert (request.start_ns, request.duration_ns, request.client, request.host) == (
        1_728_561_336_250_000_000,
        250_000_000,
        "198.51.100.4",
        "api.example.com",
    )
    assert (request.method, request.path, request.status, request.bytes_sent) == (
        "GET",
        "/v1/a",
        200,
        10900,
    )
    assert attributes(request) == {"protocol": "HTTP/2.0", "user_agent": "curl/8.5.0"}


def test_a_request_line_iso_times_and_a_dotted_key_that_is_a_key():
    parse = JsonFormat(
        {"start": "@t", "request": "req", "status": "http.status", "request_id": "rid"},
        {"start": "iso8601"},
        "edge",
    )
    request = parse(
        f'{{"@t": "2024-10-10T11:55:36.5Z", "req": "POST /v1/x?y=1 HTTP/1.1",'
        f' "http.status": "201", "rid": "{TRACE}"}}',
        DEFAULT,
    )
    assert (request.start_ns, request.method, request.path, request.status) == (
        1_728_561_336_500_000_000,
        "POST",
        "/v1/x",
        201,
    )
    assert request.trace_id == TRACE and attributes(request) == {
        "protocol": "HTTP/1.1",
        "request_id": TRACE,
    }


def test_the_alp_json_sample_mapped_key_by_key_reads_as_the_nginx_json_reader_does(tmp_path):
    path = mapping(
        tmp_path,
        'format = "json"\ngateway = "nginx"\n[fields]\nend = "time"\nmethod = "method"\n'
        'path = "uri"\nstatus = "status"\nbytes_sent = "body_bytes"\n'
        'duration = "response_time"\nuser_agent = "ua"\n',
        "alp.toml",
    )
    log = corpus("nginx", "alp_json_access.log")
    mine = records(custom.collector(path), log)
    built_in = records(nginx.collector(), log)
    assert len(mine) == len(built_in) == 14
    assert mine[:13] == built_in[:13]
    # The last line's response_time is "-" and its request_time is not mapped: no duration
    # here, where the NGINX reader tries request_time too.
    assert (mine[13].duration_ns, built_in[13].duration_ns) == (None, 321_000_000)


def test_the_traefik_json_sample_through_a_mapping_in_nanoseconds(tmp_path):
    path = mapping(
        tmp_path,
        """format = "json"
gateway = "traefik"
[fields]
start = "StartUTC"
client = "ClientAddr"
consumer = "ClientUsername"
method = "RequestMethod"
host = "RequestHost"
path = "RequestPath"
status = "DownstreamStatus"
duration = "Duration"
upstream_duration = "OriginDuration"
upstream = "ServiceURL.Host"
route = "RouterName"
bytes_sent = "DownstreamContentSize"
bytes_received = "RequestContentSize"
user_agent = "request_User-Agent"
[units]
start = "iso8601"
duration = "ns"
upstream_duration = "ns"
""",
    )
    found = records(custom.collector(path), corpus("traefik", "traefik_json.log"))
    assert [type(r) for r in found].count(GatewayRequest) == 6
    first = found[0]
    assert first == GatewayRequest(
        start_ns=1_638_972_163_587_782_192,
        gateway="traefik",
        consumer=None,  # ClientUsername "-"
        client="172.17.0.1",
        method="GET",
        host="test.docker.localhost",
        path="/594VAEoi.save",
        route="test@docker",
        status=200,
        duration_ns=357_313,
        upstream_duration_ns=324_669,
        upstream="172.17.0.3:80",  # ServiceURL serialised as Go's url.URL: its Host
        bytes_sent=357,
        bytes_received=0,
        trace_id=None,
        attributes='{"user_agent":"Nikto"}',
    )
    assert found[5] == Quarantined(
        "line 6",
        "edge.toml: not a JSON object",
        "DEBUG: CrowdsecBouncerTraefikPlugin: 2025/09/05 13:53:40 handleStreamCache:updated",
    )


def test_broken_json_lines_are_refused_with_the_field_and_key():
    parse = JsonFormat(MS_FIELDS, MS_UNITS, "api-gw")
    cases = {
        '{"verb": "GET", "code": 200}': "no start time (key 'ts')",
        '{"ts": 1, "code": "2xx"}': "status (key 'code') '2xx' is not a status",
        '{"ts": 1, "code": 200, "took_ms": -5}': "duration (key 'took_ms') -5 is not a duration",
        '{"ts": 1, "code": 200, "took_ms": "soon"}': "duration (key 'took_ms') 'soon' is not",
        '{"ts": "yesterday", "code": 200}': "start (key 'ts') 'yesterday' is not a number",
        '{"ts": 1e30, "code": 200}': "is not a time between 1970 and 2262",
        '{"ts": 1, "code": 200, "size": 1.5}': "bytes_sent (key 'size') 1.5 is not a count",
        '{"ts": 1, "code": 200, "verb": {"a": 1}}': "method (key 'verb') {'a': 1} is not text",
        '{"ts": 1, "code": 200': "not valid JSON",
        "[1, 2]": "not a JSON object",
        "ts=1 code=200": "not a JSON object",
    }
    for line, reason in cases.items():
        with pytest.raises(BadLine) as raised:
            parse(line, DEFAULT)
        assert reason in str(raised.value), line


# --- Mapping files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('log_format = "$status"', 'no format: give format = "nginx" or "json"'),
        ('format = "apache"', "format 'apache' is none of nginx, json"),
        ('format = "nginx"\nlog_format = "$remote_addr$status"', "$remote_addr and $status have"),
        ('format = "nginx"\nlog_format = "$a [$time_local] $ $status"', "the $ at character 18"),
        ('format = "nginx"\nlog_format = "$remote_addr $status"', "has no time: $time_local"),
        ('format = "nginx"\nlog_format = "[$time_local]"', "log_format has no $status"),
        ('format = "nginx"\nlog_format = "plain text"', "log_format names no variable"),
        ('format = "nginx"\nlog_format = 5', "log_format must be the format string"),
        ('format = "nginx"\nlog_format = $status\n', "not valid TOML: Invalid value (at line 2"),
        ('format = "nginx"\nlog_format = "[$msec] $status"\nescape = "json"', "escape: not a key"),
        ('format = "nginx"\nlog_format = "[$msec] $status"\ngateway = 5', "gateway must be a na"),
        ('format = "json"\nlog_format = "[$msec] $status"', "log_format: not a key of a json"),
        ('format = "json"', "fields must be a table of Clew field = JSON key"),
        ('format = "json"\nfields = {start = "t", verb = "v"}', "fields: verb: not Clew fields"),
        ('format = "json"\nfields = {start = 5}', "fields: start must name a JSON key, not 5"),
        ('format = "json"\nfields = {status = "s"}', "exactly one of start and end"),
        ('format = "json"\nfields = {start = "a", end = "b"}', "exactly one of start and end"),
        (
            'format = "json"\nfields = {start = "t", duration = "d"}\nunits = {duration = "min"}',
            "units: duration = 'min' is none of s, ms, us, ns",
        ),
        (
            'format = "json"\nfields = {start = "t"}\nunits = {start = "ms"}',
            "units: start = 'ms' is none of auto, iso8601, clf, epoch_s, epoch_ms",
        ),
        (
            'format = "json"\nfields = {start = "t"}\nunits = {duration = "ms"}',
            "units: duration is not one of the fields",
        ),
        (
            'format = "json"\nfields = {start = "t", status = "s"}\nunits = {status = "ms"}',
            "units: status: only start, end, duration and upstream_duration have units",
        ),
        ("a = " + "[" * 2000 + "]" * 2000, "not valid TOML: nested too deeply"),
        ("# " + "x" * custom.MAX_MAPPING_BYTES, "larger than 65536 bytes"),
    ],
)
def test_a_bad_mapping_file_is_refused_naming_the_file_and_the_problem(tmp_path, text, problem):
    path = mapping(tmp_path, text)
    with pytest.raises(MappingError) as raised:
        custom.collector(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message, message


def test_a_mapping_file_that_is_yaml_missing_or_not_text_is_refused(tmp_path):
    cases = {
        mapping(
            tmp_path, "format: nginx\n", "edge.yaml"
        ): "mapping files are TOML, not YAML (see the README)",
        tmp_path / "missing.toml": "cannot read: No such file or directory",
    }
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'format = "\xff"\n')
    cases[binary] = "not UTF-8 (invalid start byte at byte 10)"
    for path, problem in cases.items():
        with pytest.raises(MappingError) as raised:
            custom.collector(path)
        assert str(raised.value) == f"{path}: {problem}"


def test_a_log_format_may_be_given_as_the_strings_nginx_conf_joins(tmp_path):
    path = mapping(
        tmp_path,
        'format = "nginx"\ngateway = "edge-proxy"\nlog_format = [\n'
        "  '$remote_addr [$time_local] ',\n  '\"$request\" $status',\n]\n",
    )
    collector = custom.collector(path)
    assert (collector.name, collector.formats[0].name) == ("custom", "edge.toml")
    request = collector.formats[0].parse(
        '10.0.0.1 [10/Oct/2024:13:55:36 +0000] "GET /a HTTP/1.1" 200', DEFAULT
    )
    assert (request.gateway, request.path) == ("edge-proxy", "/a")


def test_a_json_mappings_gateway_is_by_default_the_files_name(tmp_path):
    path = mapping(tmp_path, 'format = "json"\nfields = {start = "t"}\n', "caddy.toml")
    request = custom.collector(path).formats[0].parse('{"t": 1728561336}', DEFAULT)
    assert (request.gateway, request.start_ns, request.status) == (
        "caddy",
        1_728_561_336_000_000_000,
        None,
    )


def test_the_readmes_example_mapping_files_read_their_lines(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    examples = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert len(examples) == 2
    edge, api = (
        custom.collector(mapping(tmp_path, textwrap.dedent(text), f"{name}.toml"))
        for name, text in zip(("edge", "api"), examples, strict=True)
    )
    request = edge.formats[0].parse(
        '203.0.113.7 - - [10/Oct/2024:13:55:36 +0000] "GET /v1/a HTTP/1.1" 200 5 "-" "curl"'
        f' rt=0.250 uct=0.001 urt="0.200" trace={TRACEPARENT}',
        DEFAULT,
    )
    assert (request.gateway, request.path, request.upstream_duration_ns, request.trace_id) == (
        "edge-proxy",
        "/v1/a",
        200_000_000,
        TRACE,
    )
    request = api.formats[0].parse(
        '{"ts": 1728561336789, "verb": "GET", "uri": "/v1/a", "code": 200, "took_ms": 12,'
        f' "peer": "10.0.0.1", "headers": {{"traceparent": "{TRACEPARENT}"}}}}',
        DEFAULT,
    )
    assert (request.gateway, request.start_ns, request.duration_ns, request.trace_id) == (
        "api",
        1_728_561_336_789_000_000,
        12_000_000,
        TRACE,
    )


# --- Properties ---------------------------------------------------------------------------------

PARSERS = [
    NginxFormat(COMBINED),
    NginxFormat(MAIN),
    NginxFormat(ISO_AND_MSEC),
    NginxFormat(NPM_STANDARD),
    JsonFormat(MS_FIELDS, MS_UNITS, "api-gw"),
]
SAMPLE_LINES = [
    text
    for name in ("nginx_http-logs.log", "beats_nginx_access_test.log", "alp_json_access.log")
    for text in corpus("nginx", name).read_text(errors="backslashreplace").splitlines()
    if text
] + [
    '203.0.113.7 - alice [10/Oct/2024:13:55:36 +0200] "GET /v1/p HTTP/1.1" 502 120 "-" "curl"'
    f' rt=0.250 uct=0.001, 0.002 urt="0.100, 0.120" trace={TRACEPARENT}',
    'time=2024-10-10T13:55:36+02:00 msec=1728561336.789 h "PUT /a HTTP/2.0" 200 5 2 rt=0.042'
    f" ua=10.0.0.5:80, 10.0.0.6:80 us=502, 200 rid={TRACE} ssl=-",
    '{"ts": 1728561336789, "verb": "GET", "uri": "/a", "code": 504, "took_ms": 3.5}',
]
SETTINGS = [DEFAULT, Settings(consumer="header:X-Api-Key", hash_clients=True, hash_key="k")]


@hypothesis_settings(
    max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None
)
@given(
    text=st.one_of(st.text(max_size=300), mutated_lines(SAMPLE_LINES)),
    parse=st.sampled_from(PARSERS),
    which=st.sampled_from(SETTINGS),
)
def test_any_line_is_read_or_refused_with_a_reason_never_a_crash(text, parse, which):
    try:
        request = parse(text, which)
    except BadLine as error:
        assert str(error)
        return
    assert type(request.start_ns) is int and 0 <= request.start_ns < 2**63
    assert request.status is None or 0 <= request.status <= 999
    assert request.attributes is None or isinstance(orjson.loads(request.attributes), dict)


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)
_SECONDS = st.integers(0, 100_000).map(lambda ms: (ms, f"{ms // 1000}.{ms % 1000:03d}"))


@hypothesis_settings(max_examples=examples(300), deadline=None)
@given(
    address=st.ip_addresses(v=4).map(str),
    user=st.one_of(st.just("-"), st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1)),
    moment=st.integers(0, 2_000_000_000),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.lists(_SEGMENT, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    status=st.integers(100, 599),
    sent=st.integers(0, 10**12),
    request_time=_SECONDS,
    upstream_times=st.lists(_SECONDS, max_size=3),
    trace=st.one_of(st.just(None), st.integers(1, 2**128 - 1).map(lambda n: f"{n:032x}")),
)
def test_values_written_in_a_main_format_read_back_as_written(
    address, user, moment, method, path, status, sent, request_time, upstream_times, trace
):
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(moment))
    urt = ", ".join(text for _, text in upstream_times) or "-"
    traceparent = f"00-{trace}-00f067aa0ba902b7-01" if trace else "-"
    line = (
        f'{address} - {user} [{stamp}] "{method} {path}?q=1 HTTP/1.1" {status} {sent}'
        f' "-" "agent" rt={request_time[1]} uct=- urt="{urt}" trace={traceparent}'
    )
    request = NginxFormat(MAIN)(line, DEFAULT)
    duration = request_time[0] * 1_000_000
    assert request.start_ns == moment * 1_000_000_000 - duration
    assert (request.client, request.consumer) == (address, None if user == "-" else user)
    assert (request.method, request.path, request.status, request.bytes_sent) == (
        method,
        path,
        status,
        sent,
    )
    assert request.duration_ns == duration
    expected_upstream = sum(ms for ms, _ in upstream_times) * 1_000_000
    assert request.upstream_duration_ns == (expected_upstream if upstream_times else None)
    assert request.trace_id == trace


#: Variables and a value of each, as NGINX writes it.
_VALUES = {
    "$status": "200",
    "$time_local": "10/Oct/2024:13:55:36 +0000",
    "$time_iso8601": "2024-10-10T13:55:36+00:00",
    "$msec": "1728561336.789",
    "$remote_addr": "10.0.0.1",
    "$request": "GET /a?b=c HTTP/1.1",
    "$http_user_agent": "Mozilla/5.0 (X11)",
    "$upstream_response_time": "0.010, 0.020 : 0.030",
    "${request_uri}": "/a?b=c",
    "$http_x_forwarded_for": "198.51.100.1, 10.0.0.8",
}


@st.composite
def formats_and_lines(draw: st.DrawFn) -> tuple[str, str]:
    """A log_format of variables and text between them (none, at times), and a line: the
    format written out with values, as it is or mutated, or any text."""
    variables = st.sampled_from(sorted(_VALUES))
    texts = st.sampled_from([" ", " - ", '" "', "] [", ",", "|"]) | st.text(max_size=3)
    pairs = draw(st.lists(st.tuples(variables, texts), max_size=6))
    time_variable = draw(st.sampled_from(["$time_local", "$time_iso8601", "$msec"]))
    pairs += [("$status", draw(texts)), (time_variable, draw(texts))]
    pairs = draw(st.permutations(pairs))
    lead = draw(st.text(max_size=2))
    log_format = lead + "".join(variable + text for variable, text in pairs)
    written = lead + "".join(_VALUES[variable] + text for variable, text in pairs)
    line = draw(st.one_of(st.just(written), mutated_lines([written]), st.text(max_size=80)))
    return log_format, line


@hypothesis_settings(max_examples=examples(300), deadline=None)
@given(format_and_line=formats_and_lines())
def test_any_log_format_compiles_or_is_refused_and_then_reads_any_line(format_and_line):
    log_format, line = format_and_line
    try:
        parse = NginxFormat(log_format)
    except ValueError as error:
        assert str(error).startswith("log_format")
        return
    with contextlib.suppress(BadLine):
        assert type(parse(line, DEFAULT)) is GatewayRequest
