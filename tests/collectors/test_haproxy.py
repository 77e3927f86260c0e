"""The HAProxy collector on the shared corpus as it is, and on the layouts the corpus lacks
(taken from the HAProxy configuration manual's examples where it has them)."""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.records import Checkpoint, GatewayRequest, Quarantined
from collectors import HEAD_BYTES, Source
from collectors.access_logs import BadLine, NotThisFormat, Settings, strip_prefix
from collectors.access_logs.haproxy import FORMATS, collector, parse_clf, parse_httplog
from tests.collectors.strategies import parses_or_refuses
from tests.conftest import CORPUS, corpus, examples

MS = 1_000_000


def utc_ns(text: str) -> int:
    """Unix nanoseconds of an ISO time written without zone (UTC)."""
    moment = datetime.fromisoformat(text)
    return calendar.timegm(moment.timetuple()) * 1_000_000_000 + moment.microsecond * 1_000


def records(path: Path, configured: Settings | None = None) -> list:
    reader = collector() if configured is None else collector().configured(configured)
    return [r for r in reader.collect(Source(path)) if type(r) is not Checkpoint]


def requests_of(recs: list) -> list[GatewayRequest]:
    return [r for r in recs if type(r) is GatewayRequest]


def quarantined_of(recs: list) -> list[Quarantined]:
    return [r for r in recs if type(r) is Quarantined]


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "haproxy.log"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


# --- The corpus, worked out by hand -------------------------------------------------------------


def test_crowdsec_sample_reads_two_requests_and_quarantines_three_tls_events():
    recs = records(corpus("haproxy", "haproxy-logs.log"))
    first, second = requests_of(recs)

    assert first == GatewayRequest(
        start_ns=utc_ns("2015-01-14T12:48:57.127"),
        gateway="haproxy",
        consumer=None,  # HAProxy names no caller: "auto" leaves it to the generic client
        client="117.136.40.129",
        method="GET",
        host=None,
        path="/xxx/xxx",
        route=None,
        status=200,
        duration_ns=173 * MS,  # Ta, from the request's first byte
        upstream_duration_ns=3 * MS,  # Tr
        upstream="xx_server_https",
        bytes_sent=739,
        bytes_received=None,
        trace_id=None,
        attributes=first.attributes,
    )
    assert attributes(first) == {
        "frontend": "https-in",
        "tls": True,
        "client_port": 14853,
        "server": "xxx_node_8002",
        "termination_state": "--NN",
        "timers": "170/0/0/3/173",
        "connections": "0/0/0/0/0",
        "queues": "0/0",
        "protocol": "HTTP/1.1",
    }
    assert (second.start_ns, second.client, second.upstream, second.path) == (
        utc_ns("2021-03-12T06:56:28.088"),
        "22.118.26.10",
        "maskurl",
        "/",
    )
    assert (second.duration_ns, second.upstream_duration_ns, second.bytes_sent) == (
        1264 * MS,
        1263 * MS,
        20602,
    )
    assert attributes(second)["server"] == "dns"
    assert attributes(second)["connections"] == "19/19/3/4/0"

    assert [(q.position, q.reason) for q in quarantined_of(recs)] == [
        (
            "line 3",
            "haproxy_httplog: a connection event (SSL handshake failure"
            " (error:0A0000C1:SSL routines::no shared cipher)), not an HTTP request",
        ),
        (
            "line 4",
            "haproxy_httplog: a connection event (SSL handshake failure after heartbeat),"
            " not an HTTP request",
        ),
        (
            "line 5",
            "haproxy_httplog: a connection event (Stopped a TLSv1 heartbeat attack"
            " (CVE-2014-0160)), not an HTTP request",
        ),
    ]


def test_lnav_syslog_sample_reads_thirteen_requests_and_quarantines_four_events():
    recs = records(corpus("haproxy", "logfile_haproxy.0"))
    requests = requests_of(recs)
    assert len(requests) == 13
    assert [(q.position, q.reason) for q in quarantined_of(recs)] == [
        (
            "line 1",
            "haproxy_httplog: a proxy event (Proxy prod_http_in started.), not an HTTP request",
        ),
        (
            "line 2",
            "haproxy_httplog: a proxy event (Proxy tools_http_frnt started.), not an HTTP request",
        ),
        (
            "line 3",
            "haproxy_httplog: a proxy event (Proxy git_inio_ssh_frnt started.),"
            " not an HTTP request",
        ),
        (
            "line 14",
            "haproxy_httplog: a connection event (SSL handshake failure), not an HTTP request",
        ),
    ]

    first = requests[0]  # line 4: the syslog header is gone, the captured User-Agent is kept
    assert (first.start_ns, first.method, first.path, first.status) == (
        utc_ns("2019-02-25T16:19:48.143"),
        "GET",
        "/admin/colt/administration",  # the query string (survey=130&...) is dropped
        200,
    )
    assert (first.duration_ns, first.upstream_duration_ns, first.upstream, first.bytes_sent) == (
        1487 * MS,
        1457 * MS,
        "bk_admin",
        11394,
    )
    assert (first.client, first.consumer, first.trace_id) == ("141.35.244.171", None, None)
    assert attributes(first)["request_headers"] == [
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:65.0) Gecko/20100101 Firefox/65.0"
    ]
    assert "response_headers" not in attributes(first)  # its one capture was empty: {}

    # line 9: a slow body after a quick server, the data phase is Ta - (TR+Tw+Tc+Tr)
    slow = requests[5]
    assert (slow.method, slow.path, slow.duration_ns, slow.upstream_duration_ns) == (
        "GET",
        "/portal/",
        2707 * MS,
        43 * MS,
    )
    # line 15, logged at 16:20:16: the date HAProxy writes is when the request began
    late = requests[10]
    assert late.start_ns == utc_ns("2019-02-25T16:20:12.321")
    assert attributes(late)["client_port"] == 50188
    assert {r.upstream for r in requests} == {"bk_admin", "bk_ktest_kt", "bk_ktest_sonst"}
    assert {r.gateway for r in requests} == {"haproxy"}


def test_named_captures_give_consumer_and_attributes_on_the_corpus():
    configured = Settings(
        consumer="header:user-agent", fields={"request_headers": "User-Agent"}, timezone=60
    )
    first = requests_of(records(corpus("haproxy", "logfile_haproxy.0"), configured))[0]
    agent = "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:65.0) Gecko/20100101 Firefox/65.0"
    assert first.consumer == agent
    assert first.client == "141.35.244.171"
    assert attributes(first)["user_agent"] == agent  # as NGINX's and the others' records say it
    assert "request_headers" not in attributes(first)
    # the accept date is the host's local time: at UTC+1 it is an hour earlier in UTC
    assert first.start_ns == utc_ns("2019-02-25T15:19:48.143")


# --- Which files are HAProxy's ------------------------------------------------------------------


def test_the_syslog_sample_is_detected():
    assert collector().detect(head(corpus("haproxy", "logfile_haproxy.0")))


def test_the_crowdsec_sample_is_detected():
    """3 of its 5 lines are TLS events (BadLine): lines a format recognises count as its own."""
    assert collector().detect(head(corpus("haproxy", "haproxy-logs.log")))


def test_clf_files_are_detected_and_mixed_files_read(tmp_path):
    path = write(tmp_path, CLF_LINE, CLF_LINE, MANUAL_HTTPLOG)
    assert collector().detect(head(path))
    recs = records(path)
    assert len(requests_of(recs)) == 3 and not quarantined_of(recs)


# --- Lines the corpus lacks ---------------------------------------------------------------------

# The manual's example (8.2.3), its header capture named below.
MANUAL_HTTPLOG = (
    "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750"
    ' - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"'
)
CLF_LINE = (
    '10.0.1.2 - - [06/Feb/2009:11:14:14 +0000] "GET /index.html?sid=1 HTTP/1.1" 200 2750 "" ""'
    ' 33317 655 "http-in~" "static" "srv1" 10 0 30 69 109 "----" 1 1 1 1 0 0 0 "-" "-"'
    ' "1wt.eu" "Mozilla/5.0" "text/html"'
)
CAPTURES = Settings(fields={"request_headers": "host", "response_headers": "content-type"})


def parse(line: str, configured: Settings | None = None) -> GatewayRequest:
    return parse_httplog(line, configured or Settings())


def test_manual_example_is_read_with_named_captures():
    request = parse(MANUAL_HTTPLOG, Settings(fields={"request_headers": "Host"}))
    assert (request.host, request.path, request.upstream, request.status) == (
        "1wt.eu",
        "/index.html",
        "static",
        200,
    )
    assert (request.start_ns, request.duration_ns, request.upstream_duration_ns) == (
        utc_ns("2009-02-06T12:14:14.655"),
        109 * MS,
        69 * MS,
    )
    assert "tls" not in attributes(request)  # no ~ after the frontend


def test_request_refused_before_routing_is_kept_without_method_or_path():
    request = parse(
        "10.0.0.9:44100 [19/Aug/2024:18:06:39.001] fe fe/<NOSRV> -1/-1/-1/-1/0 400 187 - - PR--"
        ' 1/1/0/0/0 0/0 "<BADREQ>"'
    )
    assert (request.method, request.path, request.status, request.upstream) == (
        None,
        None,
        400,
        "fe",
    )
    assert (request.duration_ns, request.upstream_duration_ns) == (0, None)
    assert attributes(request)["server"] == "<NOSRV>"
    assert attributes(request)["bad_request"] == "<BADREQ>"


def test_aborted_request_without_response_has_no_status():
    # manual 8.9: the client never completed its request, nothing was sent to any server
    request = parse(
        "127.0.0.1:34548 [15/Oct/2003:15:18:55.798] px-http px-http/<NOSRV> -1/-1/-1/-1/8490 -1 0"
        ' - - CR-- 2/2/2/0/0 0/0 ""'
    )
    assert (request.status, request.duration_ns, request.bytes_sent) == (None, 8490 * MS, 0)
    assert attributes(request)["bad_request"] == "(empty)"


def test_logasap_and_redispatch_are_read_and_marked():
    early = parse(
        "127.0.0.1:33320 [15/Oct/2003:08:32:17.654] px-http px-http/srv1 9/0/7/14/+30 200 +243"
        ' - - ---- 3/3/3/1/0 0/0 "GET /image.iso HTTP/1.0"'
    )
    assert (early.duration_ns, early.bytes_sent) == (30 * MS, 243)
    assert attributes(early)["logasap"] is True
    assert attributes(early)["timers"] == "9/0/7/14/+30"

    redispatched = parse(
        "10.0.0.1:34552 [15/Oct/2003:15:26:31.462] px-http px-http/srv1 3183/-1/-1/-1/11215 503 0"
        ' - - SC-- 205/202/202/115/+3 0/0 "HEAD / HTTP/1.0"'
    )
    assert (redispatched.status, redispatched.upstream_duration_ns) == (503, None)
    assert attributes(redispatched)["retries"] == 3
    assert attributes(redispatched)["redispatched"] is True
    assert attributes(redispatched)["termination_state"] == "SC--"


def test_ipv6_client_loses_its_port_and_a_date_may_have_no_milliseconds():
    request = parse(MANUAL_HTTPLOG.replace("10.0.1.2:33317", "2001:db8::1:40000"))
    assert request.client == "2001:db8::1"
    assert attributes(request)["client_port"] == 40000
    whole_second = parse(MANUAL_HTTPLOG.replace(":14.655]", ":14]"))
    assert whole_second.start_ns == utc_ns("2009-02-06T12:14:14")


def test_captures_of_both_sides_by_name():
    # the manual's 8.8 example: five request and five response captures, HTTP/0.9-style request
    line = (
        "127.0.0.1:34014 [09/Aug/2004:20:26:09] proxy-out proxy-out/cache1 0/0/0/162/+162 200"
        " +350 - - ---- 0/0/0/0/0 0/0 {fr.adserver.yahoo.co||http://fr.f416.mail.}"
        ' {|864|private||} "GET http://fr.adserver.yahoo.com/"'
    )
    unnamed = parse(line)
    assert (unnamed.host, unnamed.path, unnamed.method) == ("fr.adserver.yahoo.com", "/", "GET")
    assert attributes(unnamed)["request_headers"] == [
        "fr.adserver.yahoo.co",
        "",
        "http://fr.f416.mail.",
    ]
    assert "protocol" not in attributes(unnamed)

    named = parse(
        line,
        Settings(
            fields={
                "request_headers": "Host, Content-Length, Referer",
                "response_headers": "server,content-length,cache-control,via,location",
            }
        ),
    )
    assert named.host == "fr.adserver.yahoo.co"  # the captured Host, cut at its capture length
    assert attributes(named)["request_headers"] == {"host": "fr.adserver.yahoo.co"}
    assert attributes(named)["referer"] == "http://fr.f416.mail."
    assert attributes(named)["response_headers"] == {
        "content-length": "864",
        "cache-control": "private",
    }


TRACED = (
    "192.0.2.10:51000 [06/Feb/2024:12:14:14.655] api~ be_orders/orders1 2/0/1/45/48 201 512 - -"
    " ---- 5/5/2/1/0 0/0 {shop.example.com|curl/8.5.0|198.51.100.7, 10.0.0.1|Bearer abc"
    "|00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01} {application/json}"
    ' "POST /orders?token=s3cr3t HTTP/1.1"'
)
TRACED_FIELDS = {
    "request_headers": "host,user-agent,x-forwarded-for,authorization,traceparent",
    "response_headers": "content-type",
}


def test_trace_host_and_headers_without_secrets():
    request = parse(TRACED, Settings(fields=TRACED_FIELDS))
    assert (request.trace_id, request.host, request.path, request.method) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "shop.example.com",
        "/orders",
        "POST",
    )
    assert attributes(request)["request_headers"] == {
        "host": "shop.example.com",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    assert attributes(request)["user_agent"] == "curl/8.5.0"
    assert attributes(request)["x_forwarded_for"] == "198.51.100.7, 10.0.0.1"
    assert attributes(request)["response_headers"] == {"content-type": "application/json"}
    assert "s3cr3t" not in request.attributes and "Bearer" not in request.attributes


def test_hashed_clients_hide_the_address_and_its_forwarded_copies():
    configured = Settings(hash_clients=True, hash_key="k", fields=TRACED_FIELDS, consumer="client")
    request = parse(TRACED, configured)
    assert request.client == configured.client("192.0.2.10") != "192.0.2.10"
    assert request.consumer == request.client
    assert "198.51.100.7" not in request.attributes
    assert "x_forwarded_for" not in attributes(request)
    assert attributes(request)["user_agent"] == "curl/8.5.0"


def test_consumer_modes():
    by_header = parse(TRACED, Settings(consumer="header:User-Agent", fields=TRACED_FIELDS))
    assert by_header.consumer == "curl/8.5.0"
    missing = parse(TRACED, Settings(consumer="header:x-api-key", fields=TRACED_FIELDS))
    assert missing.consumer == "192.0.2.10"
    assert parse(TRACED, Settings(consumer="client", fields=TRACED_FIELDS)).consumer == (
        "192.0.2.10"
    )
    # HAProxy logs no caller identity: "auto" leaves the caller to the map's generic client
    assert parse(TRACED).consumer is None


def test_gateway_name_is_configurable(tmp_path):
    [request] = requests_of(records(write(tmp_path, MANUAL_HTTPLOG), Settings(gateway="edge-lb")))
    assert request.gateway == "edge-lb"


def test_names_that_do_not_fit_the_captures_quarantine_the_line():
    with pytest.raises(BadLine, match=r"5 captured request headers, but .* names 2: host, via"):
        parse(TRACED, Settings(fields={"request_headers": "host,via"}))


def test_a_lone_block_is_the_side_that_has_names_or_stays_unknown():
    line = MANUAL_HTTPLOG.replace(" {1wt.eu} {}", " {text/html}")
    assert attributes(parse(line))["captured_headers"] == ["text/html"]
    responses = Settings(fields={"response_headers": "content-type"})
    assert attributes(parse(line, responses))["response_headers"] == {"content-type": "text/html"}


def test_escapes_are_decoded_where_printable():
    line = MANUAL_HTTPLOG.replace("{1wt.eu}", "{Mozilla#7C5.0 #22caf#C3#A9#22 #01}").replace(
        "/index.html", "/a#23frag"
    )
    request = parse(line)
    assert attributes(request)["request_headers"] == ['Mozilla|5.0 "café" #01']
    assert request.path == "/a"


def test_httpslog_tls_fields_and_custom_suffixes():
    secure = parse(
        MANUAL_HTTPLOG.replace("http-in ", "https-in~ ")
        + " 0/0/0/0/1 api.example.com/TLSv1.3/TLS_AES_256_GCM_SHA384"
    )
    assert {key: value for key, value in attributes(secure).items() if key.startswith("tls")} == {
        "tls": True,
        "tls_sni": "api.example.com",
        "tls_version": "TLSv1.3",
        "tls_cipher": "TLS_AES_256_GCM_SHA384",
        "tls_resumed": True,
    }
    custom = parse(MANUAL_HTTPLOG + " 7f3a-req-42")
    assert attributes(custom)["suffix"] == "7f3a-req-42"
    assert custom.path == "/index.html"


def test_request_cut_off_by_the_syslog_size_keeps_what_is_whole():
    cut = MANUAL_HTTPLOG.removesuffix(' HTTP/1.1"')
    assert (parse(cut).method, parse(cut).path) == ("GET", None)  # the cut may be in the path
    assert attributes(parse(cut))["request_truncated"] is True
    query = cut.replace("/index.html", "/search?q=abc&x=")
    assert parse(query).path == "/search"
    protocol = MANUAL_HTTPLOG.removesuffix('1.1"')
    assert (parse(protocol).path, parse(protocol).method) == ("/index.html", "GET")


def test_connect_names_a_host_not_a_path():
    request = parse(MANUAL_HTTPLOG.replace("GET /index.html", "CONNECT example.com:443"))
    assert (request.method, request.host, request.path) == ("CONNECT", "example.com:443", None)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            MANUAL_HTTPLOG.replace(" 200 ", " 2x0 "),
            "status '2x0' is not a 3-digit number or -1",
        ),
        (
            MANUAL_HTTPLOG.replace("10/0/30/69/109", "10/0/abc/69/109"),
            "timer 'abc' is neither -1 nor milliseconds",
        ),
        (MANUAL_HTTPLOG.replace("10/0/30/69/109", "10/0/30/109"), "are not TR/Tw/Tc/Tr/Ta"),
        (MANUAL_HTTPLOG.replace(" 2750 ", " 27k "), "byte count '27k' is not a number"),
        (MANUAL_HTTPLOG.replace("06/Feb/2009", "31/Feb/2009"), "is not a valid time"),
        (MANUAL_HTTPLOG.replace("06/Feb/2009", "06/Foo/2009"), "is not a time like"),
        (MANUAL_HTTPLOG.replace("/2009:", "/0019:"), "is outside the years 1678 to 2261"),
        (MANUAL_HTTPLOG.replace(":33317", ":333170"), "client port '333170' is not a port"),
        (MANUAL_HTTPLOG.replace("10.0.1.2:33317", "10.0.1.2"), "is not ADDRESS:PORT"),
        (MANUAL_HTTPLOG.replace("1/1/1/1/0 0/0", "1/1/1/0 0/0"), "are not actconn/feconn"),
        (
            "10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0",
            "a TCP session (option tcplog), not an HTTP request",
        ),
        (
            "127.0.0.1:56059 [03/Dec/2012:17:35:10.380] frt/f1: Connection error during SSL"
            " handshake",
            "a connection event (Connection error during SSL handshake), not an HTTP request",
        ),
        (
            "Server be_app/app1 is DOWN, reason: Layer4 connection problem, info: refused",
            "a proxy event (Server be_app/app1 is DOWN",
        ),
        ("[WARNING]  (1) : config : missing timeouts", "a proxy event ([WARNING]"),
        ("Stopping frontend fe_http in 0 ms.", "a proxy event (Stopping frontend"),
    ],
)
def test_broken_fields_and_other_events_are_quarantined_with_what_they_are(line, reason):
    with pytest.raises(BadLine, match=re.escape(reason)):
        parse(line)


@pytest.mark.parametrize(
    "line",
    [
        '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326 "-" "curl/8"',
        '{"time": "2024-01-01T00:00:00Z", "status": 200}',
        '[2024-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200 - 0 12 3 2 "-" "curl"',
        "",
        "Proxy",
    ],
)
def test_other_products_lines_are_not_this_format(line):
    for line_format in FORMATS:
        with pytest.raises(NotThisFormat):
            line_format.parse(line, Settings())


# --- option httplog clf -------------------------------------------------------------------------


def test_clf_line_is_read():
    request = parse_clf(CLF_LINE, Settings())
    assert (request.start_ns, request.client, request.method, request.path, request.status) == (
        utc_ns("2009-02-06T11:14:14"),  # %trg: UTC, to the second
        "10.0.1.2",
        "GET",
        "/index.html",
        200,
    )
    assert (request.duration_ns, request.upstream_duration_ns, request.upstream) == (
        109 * MS,
        69 * MS,
        "static",
    )
    assert attributes(request) | {"captured_headers": None} == {
        "frontend": "http-in",
        "tls": True,
        "client_port": 33317,
        "server": "srv1",
        "termination_state": "----",
        "timers": "10/0/30/69/109",
        "connections": "1/1/1/1/0",
        "queues": "0/0",
        "protocol": "HTTP/1.1",
        "captured_headers": None,
    }
    assert attributes(request)["captured_headers"] == ["1wt.eu", "Mozilla/5.0", "text/html"]


def test_clf_captures_split_by_the_request_names():
    named = parse_clf(CLF_LINE, Settings(fields={"request_headers": "host,user-agent"}))
    assert named.host == "1wt.eu"
    assert attributes(named)["request_headers"] == {"host": "1wt.eu"}
    assert attributes(named)["user_agent"] == "Mozilla/5.0"
    assert attributes(named)["response_headers"] == ["text/html"]
    # names for both sides must account for every value: here 1 request and 2 response values
    with pytest.raises(BadLine, match=r"2 captured response headers, but .* names 1: content-type"):
        parse_clf(CLF_LINE, CAPTURES)
    both = parse_clf(CLF_LINE.replace(' "Mozilla/5.0"', ""), CAPTURES)
    assert both.host == "1wt.eu"
    assert attributes(both)["response_headers"] == {"content-type": "text/html"}
    responses = parse_clf(CLF_LINE, Settings(fields={"response_headers": "content-type"}))
    assert attributes(responses)["response_headers"] == {"content-type": "text/html"}
    assert attributes(responses)["request_headers"] == ["1wt.eu", "Mozilla/5.0"]


def test_clf_broken_field_is_named():
    with pytest.raises(BadLine, match="timer 'x' is neither"):
        parse_clf(CLF_LINE.replace(" 10 0 30 ", " 10 x 30 "), Settings())
    with pytest.raises(NotThisFormat):
        parse_clf(MANUAL_HTTPLOG, Settings())


# --- Robustness ---------------------------------------------------------------------------------

SAMPLES = [MANUAL_HTTPLOG, CLF_LINE, TRACED] + [
    strip_prefix(line)[0]
    for path in sorted((CORPUS / "haproxy").glob("*"))  # none when the corpus is missing
    for line in path.read_text().splitlines()
]
SETTINGS = [
    Settings(),
    Settings(fields=TRACED_FIELDS, consumer="header:user-agent", hash_clients=True),
    Settings(fields={"request_headers": "host", "response_headers": "a,b"}, timezone=-600),
]
NOISE = [*' "{}|/:[]+-#.~0179xAé٣\t', "#22", "#0", "-1", "<NOSRV>", "\x00"]


def check(line: str) -> None:
    """Only NotThisFormat or BadLine may escape a format; a request it reads is sound."""
    for configured in SETTINGS:
        for request in parses_or_refuses(line, configured, *(f.parse for f in FORMATS)):
            for value in (request.start_ns, request.duration_ns, request.bytes_sent):
                assert value is None or -(2**63) <= value < 2**63
            assert request.attributes is None or isinstance(orjson.loads(request.attributes), dict)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=300))
def test_random_text_only_raises_the_format_errors(text):
    check(text)


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400),
            st.sampled_from(["insert", "delete", "replace"]),
            st.sampled_from(NOISE) | st.characters(),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_real_lines_only_raise_the_format_errors(line, edits):
    for position, edit, text in edits:
        position %= len(line) + 1
        if edit == "insert":
            line = line[:position] + text + line[position:]
        elif edit == "delete":
            line = line[:position] + line[position + len(text) :]
        else:
            line = line[:position] + text + line[position + len(text) :]
    check(line)
