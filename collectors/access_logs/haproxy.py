"""HAProxy access logs: ``option httplog`` (and ``option httpslog``) and ``option httplog clf``.

HAProxy writes its logs through syslog; the syslog header (``Feb 25 16:19:49 lb haproxy[7]: ``)
is removed before a line is read (``strip_prefix``). What the formats below say rests on the
HAProxy configuration manual, sections 8.2 (log formats), 8.4 (timers), 8.5 (termination state),
8.6 (non-printable characters) and 8.8 (header captures), and on the default log-format strings
in HAProxy's ``src/log.c``.

``haproxy_httplog``: the default HTTP format, ``%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST
%B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r``::

    10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in~ static/srv1 10/0/30/69/109 200 2750 \\
        - - ---- 1/1/1/1/0 0/0 {1wt.eu|Mozilla/5.0} {} "GET /index.html HTTP/1.1"

- ``client_ip:client_port``: ``client`` is the address (an IPv6 address is logged bare,
  ``2001:db8::1:40000``: the port is what follows the last colon); the port goes to attributes.
  Behind ``accept-proxy`` it is the address the PROXY protocol passed on. A captured
  X-Forwarded-For is not taken for the client: the format does not say it is one.
- ``[request_date]``: when the first byte of the request arrived (``%tr``, HAProxy 1.7 and
  later; before, the date the connection was accepted). It is the host's local time without a
  zone: ``Settings.timezone`` says the offset (minutes east of UTC, default 0). It is
  ``start_ns``, to the millisecond HAProxy writes (a date without one is read to the second).
- ``frontend_name``: to attributes (``frontend``); a trailing ``~`` means the client connection
  is TLS (attribute ``tls``).
- ``backend_name/server_name``: the backend is ``upstream``; the server goes to attributes as
  logged, ``<NOSRV>`` when no server was reached (the backend is then the one HAProxy had chosen:
  the frontend's own name when the request was refused before any routing), ``<STATS>`` for
  the stats page.
- ``TR/Tw/Tc/Tr/Ta`` in milliseconds (``Tq/Tw/Tc/Tr/Tt`` before 1.7, same shape). The last timer
  is ``duration_ns``: Ta, from the request's first byte to the response's last byte (Tt, before,
  from the accept to the close), so both run from the logged date. ``Tr`` is
  ``upstream_duration_ns``: from the connection to the server being established to the
  server's complete response headers, its processing time without the body's transfer (for a
  POST it also holds the upload of the body); ``-1`` (no response headers came) leaves it
  None; so does ``-1`` for the last timer, which the manual says never happens. A ``+``
  before the last timer means ``option logasap``: the log was written before the body was
  sent, the duration and byte count are lower bounds (attribute ``logasap``). All five are kept
  as logged in attribute ``timers``.
- ``status_code``: ``status``; ``-1`` (no response) is None.
- ``bytes_read``: despite its name, the bytes sent TO the client, headers included (manual
  8.2.3; ``%B``, "from server to client"): ``bytes_sent``. The format has no count of bytes
  received from the client: ``bytes_received`` is None.
- ``captured_request_cookie captured_response_cookie``: session cookies, so never kept.
- ``termination_state``: four flags (``----``, ``CD--``, ``sH--``...): attribute
  ``termination_state``.
- ``actconn/feconn/beconn/srv_conn/retries`` and ``srv_queue/backend_queue``: attributes
  ``connections`` and ``queues`` as logged; ``retries`` also as a number when there were any,
  and ``redispatched`` when a ``+`` before it says the request went to another server after
  them.
- ``{captured request headers} {captured response headers}``: each block is there only when the
  frontend captures headers of that side, values separated by ``|`` in the order the
  configuration declares them, without their names. Name them through ``Settings.fields``:
  ``{"request_headers": "host,user-agent,x-forwarded-for,traceparent", "response_headers":
  "content-type"}`` (comma-separated, in ``capture ... header`` order, any case). Named request
  headers give ``host`` (Host), ``trace_id`` (the first trace-shaped one of traceparent, b3,
  X-B3-TraceId, X-Request-ID) and ``consumer`` (``Settings.consumer = "header:NAME"``). In
  attributes, User-Agent, Referer, X-Forwarded-For and X-Request-ID are ``user_agent``,
  ``referer``, ``x_forwarded_for`` and ``request_id`` as in the other gateways' records; the
  others are ``request_headers``/``response_headers`` objects. Authorization, Cookie and
  Set-Cookie are never kept, nor, when clients are hashed, the forwarded-address headers.
  A line whose number of values differs from the number of names is quarantined: the names
  would be wrong. Unnamed values are kept as lists; a lone block nobody named is
  ``captured_headers`` (it is either side).
- ``"http_request"``: ``METHOD TARGET PROTOCOL`` (or ``METHOD TARGET``, HTTP/0.9): ``method``,
  ``path`` (the query string dropped), the protocol to attributes; the host of an absolute-form
  target when no Host was captured; a CONNECT target is the host, no path. ``"<BADREQ>"`` (or
  ``""`` in old versions, or anything that is no request line) means HAProxy read no valid
  request, yet it answered (400, 408): the line is kept, without method and path, the logged
  text (query string cut) in attribute ``bad_request``. A request cut off by the syslog message
  size (no closing quote) keeps its method, and its path when the cut falls after it
  (attribute ``request_truncated``).
- after the request, ``option httpslog`` (HAProxy 2.5+) adds ``%[fc_err]/%[ssl_fc_err,hex]/
  %[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] %[ssl_fc_sni]/%sslv/%sslc``: attributes
  ``tls_sni``, ``tls_version``, ``tls_cipher``, ``tls_resumed`` and the error codes when not 0.
  Anything else a custom ``log-format`` appends after the request goes to attribute ``suffix``.

``haproxy_clf``: ``option httplog clf``, the Common Log Format followed by HAProxy's fields,
``%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc
%bc %sc %rc %sq %bq %CC %CS %hrl %hsl``::

    10.0.1.2 - - [06/Feb/2009:11:14:14 +0000] "GET /index.html HTTP/1.1" 200 2750 "" "" 33317 \\
        655 "http-in" "static" "srv1" 10 0 30 69 109 "----" 1 1 1 1 0 0 0 "-" "-" "1wt.eu" ""

The fields mean what they mean above. The date is the request's start in UTC, to the second
only: ``%ms`` is the millisecond of the connection's accept date, which on a kept-alive
connection is not the request's. Captured headers are one quoted string each, request headers
then response headers with nothing between them: the names in ``Settings.fields`` say how many
are the request's (or, with response names only, the response's); without names the values
are kept as ``captured_headers``.

In both formats, a number longer than HAProxy can write or a 64-bit column can hold (timers
past 12 digits, counts past 18, dates outside 1678-2261) makes the line broken. Escapes are
decoded where they spell printable text (HAProxy writes ``#22`` for ``"``, ``#7C`` for ``|``,
``#C3#A9`` for ``é``); control bytes stay written as ``#XX``.

Lines that are in HAProxy's logs but are no requests are quarantined with what they are:
connection errors (8.2.5, ``10.0.0.1:5000 [date] fe/bind: SSL handshake failure``), TCP sessions
(``option tcplog``) and process messages (``Proxy fe started.``, server state changes).
Other ``log-format`` layouts are not read (their lines are "not a line of" these formats);
neither are lines whose quotes syslog-ng escaped as ``\\"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from operator import itemgetter

from clew.records import GatewayRequest
from collectors.access_logs import (
    NS_PER_MS,
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    clf_time_ns,
    path_of,
    trace_id_of,
)

GATEWAY = "haproxy"

# Both formats are read by a strict pattern whose numbers need no further checks; a line it does
# not match is read again by a loose one (every field \S+), only to say which field is broken.
# ASCII: \d must not match other scripts' digits, which int() would take. Lengths are bounded
# so that every number fits a signed 64-bit column, in nanoseconds for timers (12 digits of
# milliseconds are 31 years).
_TIMERS = (
    r"(?P<timers>(?:-1|\d{{1,12}}){sep}(?:-1|\d{{1,12}}){sep}(?:-1|\d{{1,12}}){sep}"
    r"(?P<Tr>-1|\d{{1,12}}){sep}(?P<logasap>\+?)(?P<Ta>-1|\d{{1,12}}))"
)
_COUNTS = (
    r"(?P<connections>\d{{1,18}}{sep}\d{{1,18}}{sep}\d{{1,18}}{sep}\d{{1,18}}"
    r"{sep}(?P<redispatched>\+?)(?P<retries>\d{{1,18}})) (?P<queues>\d{{1,18}}{sep}\d{{1,18}})"
)
_HTTPLOG = re.compile(
    r"(?P<address>\S+):(?P<port>\d{0,5})"
    r" \[(?P<date>[^\].]*)(?:\.(?P<fraction>\d{1,9}))?\]"
    r" (?P<frontend>\S+) (?P<backend>[^\s/]+)/(?P<server>\S+) "
    + _TIMERS.format(sep="/")
    + r" (?P<status>-1|\d{3}) \+?(?P<bytes>\d{1,18}) \S+ \S+ (?P<termination>\S+) "
    + _COUNTS.format(sep="/")
    + r"(?: \{(?P<first>[^{}]*)\})?(?: \{(?P<second>[^{}]*)\})? \"(?P<rest>.*)",
    re.ASCII,
)
_HTTPLOG_FIELDS = re.compile(
    r"(?P<address>\S+) \[(?P<date>[^\]]*)\] \S+ [^\s/]+/\S+ (?P<timers>\S+) (?P<status>\S+)"
    r" (?P<bytes>\S+) \S+ \S+ \S+ (?P<connections>\S+) (?P<queues>\S+)(?: \{[^{}]*\}){0,2} \""
)
_CLF = re.compile(
    r"(?P<address>\S+) - - \[(?P<date>[^\]]*)\]"
    r' "(?P<request>[^"]*)" (?P<status>-1|\d{3}) \+?(?P<bytes>\d{1,18}) "" "" (?P<port>\d{1,5}) \d+'
    r' "(?P<frontend>[^"]*)" "(?P<backend>[^"]*)" "(?P<server>[^"]*)" '
    + _TIMERS.format(sep=" ")
    + r' "(?P<termination>[^"]*)" '
    + _COUNTS.format(sep=" ")
    + r' "[^"]*" "[^"]*"(?P<headers>(?: "[^"]*")*) *$',
    re.ASCII,
)
_CLF_FIELDS = re.compile(
    r'(?P<address>\S+) - - \[(?P<date>[^\]]*)\] "[^"]*" (?P<status>\S+) (?P<bytes>\S+) "" ""'
    r' (?P<port>\S+) \S+ "[^"]*" "[^"]*" "[^"]*" (?P<timers>\S+ \S+ \S+ \S+ \S+) "[^"]*"'
    r' (?P<connections>\S+ \S+ \S+ \S+ \S+) (?P<queues>\S+ \S+) "'
)
# The fields both formats log, in the order _gateway_request takes them.
_COMMON = (
    "address", "port", "frontend", "backend", "server", "timers", "Tr", "logasap", "Ta",
    "status", "bytes", "termination", "connections", "redispatched", "retries", "queues",
)  # fmt: skip
_HTTPLOG_COMMON = itemgetter(*(_HTTPLOG.groupindex[name] - 1 for name in _COMMON))
_CLF_COMMON = itemgetter(*(_CLF.groupindex[name] - 1 for name in _COMMON))
_QUOTED = re.compile(r'"([^"]*)"')
# option httpslog's fields after the request (HAProxy 2.5+, src/log.c default_https_log_format).
_HTTPS_SUFFIX = re.compile(
    r" (?P<fc_err>\S+)/(?P<ssl_fc_err>\S+)/(?P<ssl_c_err>\S+)/(?P<ssl_c_ca_err>\S+)"
    r"/(?P<resumed>\S+) (?P<sni>[^\s/]*)/(?P<version>[^\s/]+)/(?P<cipher>\S+)$"
)

# HAProxy lines that are no HTTP requests, recognised to be quarantined with what they are.
_CONNECTION_EVENT = re.compile(r"\S+:\S* \[[^\]]*\] [^\s/]+/\S*?: (?P<message>.+)")
_TCPLOG = re.compile(
    r"\S+:\S* \[[^\]]*\] \S+ [^\s/]+/\S+ [-+\d]+/[-+\d]+/[-+\d]+ \+?\d+ \S\S \S+ \S+$"
)
_PROCESS_EVENT = re.compile(
    r"(?:Proxy|Frontend|Backend) \S+ (?:started|stopped|paused|resumed)"
    r"|Stopping (?:proxy|frontend|backend) \S+ in \d+ ms"
    r"|Pausing (?:proxy|frontend) \S+"
    r"|(?:Backup )?Server \S+/\S+ is \S"
    r"|(?:backend|proxy) \S+ has no server available"
    r"|Health check for (?:backup )?server \S+/\S+"
    r"|\[(?:NOTICE|WARNING|ALERT)\] +\(\d+\) : "
)

_ESCAPES = re.compile(r"(?:#[0-9A-Fa-f]{2})+")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method (RFC 9110 token)

# Captured request headers that carry a trace, in the order they are trusted.
_TRACE_HEADERS = ("traceparent", "b3", "x-b3-traceid", "x-request-id")
# Never stored: credentials and sessions.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# Client addresses by another name: not stored when client addresses are hashed.
_ADDRESS_HEADERS = frozenset(
    {"x-forwarded-for", "forwarded", "x-real-ip", "true-client-ip", "cf-connecting-ip"}
)
# Captured request headers kept under the attribute names the other gateways' records use.
_WELL_KNOWN = {
    "user-agent": "user_agent",
    "referer": "referer",
    "x-forwarded-for": "x_forwarded_for",
    "x-request-id": "request_id",
}

Headers = dict[str, str] | list[str] | None


def parse_httplog(line: str, settings: Settings) -> GatewayRequest:
    """One line of ``option httplog`` (or ``httpslog``); see the module's docstring."""
    match = _HTTPLOG.match(line)
    if match is None:
        raise _why_not_httplog(line, settings)
    date, fraction, first, second, rest = match.group("date", "fraction", "first", "second", "rest")
    start_ns = _second_ns(date, settings.timezone)
    if fraction is not None:
        start_ns += int(fraction.ljust(9, "0"))
    request, closed, suffix = rest.partition('"')
    return _gateway_request(
        settings,
        _HTTPLOG_COMMON(match.groups()),
        start_ns,
        request,
        not closed,
        *_blocks(first, second, settings),
        _suffix_attributes(suffix) if suffix else {},
    )


def parse_clf(line: str, settings: Settings) -> GatewayRequest:
    """One line of ``option httplog clf``; see the module's docstring."""
    match = _CLF.match(line)
    if match is None:
        raise _why_not_clf(line, settings)
    date, request, headers = match.group("date", "request", "headers")
    values = [_unescaped(value) for value in _QUOTED.findall(headers)] if headers else []
    return _gateway_request(
        settings,
        _CLF_COMMON(match.groups()),
        _second_ns(date, settings.timezone),  # %trg: UTC, with its +0000
        request,
        False,
        *_listed(values, settings),
        {},
    )


HTTPLOG = LineFormat("haproxy_httplog", parse_httplog)
CLF = LineFormat("haproxy_clf", parse_clf)
FORMATS = [HTTPLOG, CLF]


def collector() -> AccessLogCollector:
    """The HAProxy access-log collector."""
    return AccessLogCollector(
        GATEWAY,
        "HAProxy HTTP logs: option httplog, httpslog and httplog clf, syslog-prefixed or bare",
        FORMATS,
    )


def _gateway_request(
    settings: Settings,
    common: tuple[str, ...],
    start_ns: int,
    request: str,
    truncated: bool,
    request_headers: Headers,
    response_headers: Headers,
    unnamed_headers: list[str] | None,
    attributes: dict[str, object],
) -> GatewayRequest:
    """The record of one request from the fields both formats log (``_COMMON``, their numbers
    checked by the strict patterns); ``attributes`` holds what only one format says."""
    (address, port, frontend, backend, server, timers, response_time, logasap, total, status,
     sent, termination, connections, redispatched, retries, queues) = common  # fmt: skip
    if address[0] == "[" and address[-1] == "]":
        address = address[1:-1]
    total, response_time, status = int(total), int(response_time), int(status)
    retries = int(retries)
    named = request_headers if isinstance(request_headers, dict) else {}
    method, target, protocol = _request_line(request, truncated, attributes)
    attributes |= {
        "frontend": frontend.removesuffix("~"),
        "tls": True if frontend.endswith("~") else None,
        "client_port": int(port) if port else None,
        "server": server,
        "termination_state": termination,
        # as HAProxy's httplog writes them (CLF separates them by spaces)
        "timers": timers.replace(" ", "/"),
        "connections": connections.replace(" ", "/"),
        "queues": queues.replace(" ", "/"),
        "logasap": True if logasap else None,
        "retries": retries if retries else None,
        "redispatched": True if redispatched else None,
        "protocol": protocol,
        "request_headers": _kept(request_headers, settings, _WELL_KNOWN),
        "response_headers": _kept(response_headers, settings, {}),
        "captured_headers": unnamed_headers if unnamed_headers and any(unnamed_headers) else None,
    }
    if named:
        for name, key in _WELL_KNOWN.items():
            value = named.get(name)
            if value and not (settings.hash_clients and name in _ADDRESS_HEADERS):
                attributes[key] = value
    return GatewayRequest(  # positional, in the order of its fields: the hot path of a file
        start_ns,
        GATEWAY,
        settings.consumer_of(address, None, named),
        settings.client(address),
        method,
        named.get("host") or _authority(target, method),
        path_of(target) if method != "CONNECT" else None,
        None,  # route: HAProxy routes by ACL rules and logs no route template
        status if status >= 0 else None,
        total * NS_PER_MS if total >= 0 else None,
        response_time * NS_PER_MS if response_time >= 0 else None,  # upstream_duration_ns: Tr
        backend or None,
        int(sent),  # bytes_sent: bytes_read is what the client was sent
        None,  # bytes_received: %U (bytes from the client) is in neither format
        _trace_id(named) if named else None,
        attributes_json(attributes),
    )


def _why_not_httplog(line: str, settings: Settings) -> Exception:
    """Why a line the strict httplog pattern refused is quarantined, or NotThisFormat."""
    fields = _HTTPLOG_FIELDS.match(line)
    if fields is not None:
        return _broken_field(fields, fields["timers"].split("/"), "/", settings)
    if (match := _CONNECTION_EVENT.match(line)) is not None:
        return BadLine(f"a connection event ({match['message'][:200]}), not an HTTP request")
    if _TCPLOG.match(line) is not None:
        return BadLine("a TCP session (option tcplog), not an HTTP request")
    if _PROCESS_EVENT.match(line) is not None:
        return BadLine(f"a proxy event ({line[:200]}), not an HTTP request")
    return NotThisFormat()


def _why_not_clf(line: str, settings: Settings) -> Exception:
    """Why a line the strict CLF pattern refused is quarantined, or NotThisFormat."""
    fields = _CLF_FIELDS.match(line)
    if fields is None:
        return NotThisFormat()
    return _broken_field(fields, fields["timers"].split(" "), " ", settings)


def _broken_field(
    fields: re.Match[str], timers: list[str], separator: str, settings: Settings
) -> BadLine:
    """The first field of a line in the format's shape that holds no valid value."""
    address = fields["address"]
    port = fields.groupdict().get("port")
    if port is None:
        address, colon, port = address.rpartition(":")
        if not colon or not address:
            return BadLine(f"client {fields['address']!r} is not ADDRESS:PORT")
    if port != "" and not _is_count(port, 5):
        return BadLine(f"client port {port!r} is not a port number")
    try:
        clf_time_ns(fields["date"], settings.timezone)
    except BadLine as error:
        return error
    if len(timers) != 5:
        return BadLine(f"timers {fields['timers']!r} are not TR/Tw/Tc/Tr/Ta")
    for timer in [*timers[:4], timers[4].removeprefix("+")]:
        if timer != "-1" and not _is_count(timer, 12):
            return BadLine(f"timer {timer!r} is neither -1 nor milliseconds (up to 12 digits)")
    status = fields["status"]
    if status != "-1" and not (len(status) == 3 and _is_count(status)):
        return BadLine(f"status {status!r} is not a 3-digit number or -1")
    if not _is_count(fields["bytes"].removeprefix("+")):
        return BadLine(f"byte count {fields['bytes']!r} is not a number (up to 18 digits)")
    connections = fields["connections"].split(separator)
    queues = fields["queues"].split(separator)
    if (
        len(connections) != 5
        or len(queues) != 2
        or not all(_is_count(value) for value in connections[:4] + queues)
        or not _is_count(connections[4].removeprefix("+"))
    ):
        return BadLine(
            f"connection counts {fields['connections']!r} and queues {fields['queues']!r} are"
            " not actconn/feconn/beconn/srv_conn/retries and srv_queue/backend_queue"
        )
    return BadLine("the fields do not follow HAProxy's layout")


def _is_count(text: str, digits: int = 18) -> bool:
    """Whether a field is a decimal number of 1 to ``digits`` digits."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


@lru_cache(maxsize=4096)
def _second_ns(date: str, timezone: int) -> int:
    """Unix nanoseconds of a log date to the second, its fraction apart: the lines of one second
    share it, and it is read (and checked) once."""
    return clf_time_ns(date, timezone)  # years 1678 to 2261 only: the base checks


def _request_line(
    request: str, truncated: bool, attributes: dict[str, object]
) -> tuple[str | None, str | None, str | None]:
    """Method, target and protocol of the logged request line; a line that is no request
    (``<BADREQ>``) or was cut off records so in the attributes."""
    parts = _unescaped(request).split(" ")
    method = parts[0]
    if _TOKEN.fullmatch(method) is None or len(parts) > 3 or (len(parts) < 2 and not truncated):
        # HAProxy read no valid request: keep what it logged (escaped, so printable), without
        # a query string
        attributes["bad_request"] = request.partition("?")[0][:200] or "(empty)"
        return None, None, None
    if truncated:
        attributes["request_truncated"] = True
        if len(parts) == 1:
            return None, None, None  # the cut may fall inside the method
        if len(parts) == 2 and "?" not in parts[1]:
            return method, None, None  # or inside the path
        return method, parts[1], None
    return method, parts[1], parts[2] if len(parts) == 3 else None


def _authority(target: str | None, method: str | None) -> str | None:
    """The host an absolute-form or CONNECT request target names."""
    if target is None:
        return None
    if method == "CONNECT":
        return target
    if "://" in target[:10]:
        return target.split("://", 1)[1].partition("/")[0].partition("?")[0] or None
    return None


def _trace_id(headers: dict[str, str]) -> str | None:
    """The trace id of the first captured propagation header that carries one."""
    for name in _TRACE_HEADERS:
        trace_id = trace_id_of(headers.get(name))
        if trace_id is not None:
            return trace_id
    return None


def _blocks(
    first: str | None, second: str | None, settings: Settings
) -> tuple[Headers, Headers, list[str] | None]:
    """Request headers, response headers and headers of an unknown side, from httplog's
    ``{...}`` blocks: two blocks are both sides, one is the side that has names."""
    if first is None:
        return None, None, None
    request_names = _names(settings.fields.get("request_headers"))
    response_names = _names(settings.fields.get("response_headers"))
    values = _captures(first)
    if second is not None:
        return (
            _named(values, request_names, "request"),
            _named(_captures(second), response_names, "response"),
            None,
        )
    if request_names:
        return _named(values, request_names, "request"), None, None
    if response_names:
        return None, _named(values, response_names, "response"), None
    return None, None, values


def _captures(block: str) -> list[str]:
    """The values of a ``{...}`` block."""
    values = block.split("|")
    return [_unescaped(value) for value in values] if "#" in block else values


def _listed(values: list[str], settings: Settings) -> tuple[Headers, Headers, list[str] | None]:
    """Request headers, response headers and headers of an unknown side, from CLF's one list
    of quoted values: the request's names say where the request's values end."""
    if not values:
        return None, None, None
    request_names = _names(settings.fields.get("request_headers"))
    response_names = _names(settings.fields.get("response_headers"))
    if request_names:
        split = len(request_names)
    elif response_names:
        split = len(values) - len(response_names)
    else:
        return None, None, values
    if not 0 <= split <= len(values):
        raise BadLine(
            f"{len(values)} captured headers, but Settings.fields names"
            f" {len(request_names) + len(response_names)}"
        )
    request, response = values[:split], values[split:]
    return (
        _named(request, request_names, "request") if request else None,
        _named(response, response_names, "response") if response else None,
        None,
    )


def _named(values: list[str], names: tuple[str, ...], side: str) -> dict[str, str] | list[str]:
    """Captured values by their configured names, or as they are when none are configured."""
    if not names:
        return values
    if len(names) != len(values):
        raise BadLine(
            f"{len(values)} captured {side} headers, but Settings.fields['{side}_headers'] names"
            f" {len(names)}: {', '.join(names)}"
        )
    return dict(zip(names, values, strict=True))


@lru_cache(maxsize=64)
def _names(text: str | None) -> tuple[str, ...]:
    """Header names from a comma-separated setting, lower-cased."""
    if not text:
        return ()
    return tuple(name.strip().lower() for name in text.split(","))


def _kept(headers: Headers, settings: Settings, elsewhere: Mapping[str, str]) -> Headers:
    """Captured headers as attributes keep them: no secrets, no empty values, no client
    addresses under another name when clients are hashed, none kept ``elsewhere``."""
    if headers is None:
        return None
    if isinstance(headers, list):
        return headers if any(headers) else None
    kept = {
        name: value
        for name, value in headers.items()
        if value
        and name not in _SECRET_HEADERS
        and name not in elsewhere
        and not (settings.hash_clients and name in _ADDRESS_HEADERS)
    }
    return kept or None


def _suffix_attributes(suffix: str) -> dict[str, object]:
    """What follows the request: option httpslog's TLS fields, or a custom suffix as logged."""
    match = _HTTPS_SUFFIX.match(suffix)
    if match is None:
        return {"suffix": suffix.strip()}
    errors = {
        name: match[name]
        for name in ("fc_err", "ssl_fc_err", "ssl_c_err", "ssl_c_ca_err")
        if match[name] not in ("0", "-")
    }
    return {
        "tls_sni": match["sni"],
        "tls_version": match["version"],
        "tls_cipher": match["cipher"],
        "tls_resumed": {"1": True, "0": False}.get(match["resumed"]),
        "tls_errors": errors or None,
    }


def _unescaped(text: str) -> str:
    """A logged string with HAProxy's ``#XX`` escapes decoded where they spell printable text
    (``#22`` is ``"``, ``#C3#A9`` is ``é``); control bytes and invalid UTF-8 stay escaped."""
    if "#" not in text:
        return text
    return _ESCAPES.sub(_decoded, text)


def _decoded(escapes: re.Match[str]) -> str:
    """A run of ``#XX`` escapes as text, or as it is unless it is printable UTF-8."""
    try:
        text = bytes.fromhex(escapes[0].replace("#", "")).decode()
    except UnicodeDecodeError:
        return escapes[0]
    return text if text.isprintable() else escapes[0]
