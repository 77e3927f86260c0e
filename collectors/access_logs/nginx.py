"""NGINX access logs: ``combined`` and the fields operators add to it, Nginx Proxy Manager's two
formats, and JSON lines (``log_format ... escape=json``).

Times. NGINX stamps a line when it writes it, after the last byte of the response went out:
``$time_local``, ``$time_iso8601`` and ``$msec`` are among the variables that the log module
documents as existing "at the time of a log write", and ``$request_time`` is the time "between
the first bytes were read from the client and the log write after the last bytes were sent to
the client" (nginx.org, ngx_http_log_module). A request's start is therefore the logged time
minus ``$request_time`` where the line has it, else the logged time itself. ``$time_local`` has
whole seconds, so such a start is good to the second.

Escapes. In its default escaping NGINX writes ``"``, ``\\`` and every byte below 0x20 or above
0x7E as ``\\xHH``, so a quoted field never holds a quote. The path, user, user agent and referer
are read back to text (the escaped bytes as UTF-8); an unreadable request line is kept escaped.

``nginx_combined``
    ``[HOST ]ADDRESS - USER [TIME] "REQUEST" STATUS BYTES ["REFERER" "USER_AGENT" [TRAILING]]``:
    NGINX's ``combined`` (``common`` without the last two fields), optionally led by
    ``$host``/``$server_name`` (as crowdsec's vhost variant writes it; ``host``, kept as logged,
    port included). ADDRESS is ``$remote_addr``; where an operator logged an X-Forwarded-For list
    there instead (``A, B, C``, ``A, B C`` or ``"A, B" C``), the client is the connection's
    address: the address after the list, or else the list's last one (what
    ``$proxy_add_x_forwarded_for`` appends is ``$remote_addr``); the list goes to the attributes.
    A missing USER field (``ADDRESS - [TIME]``) is accepted. USER ``-`` is no user; a user is the
    identity behind ``consumer``. REQUEST is ``METHOD TARGET [PROTOCOL]``; BYTES is
    ``$body_bytes_sent`` (``bytes_sent``).

    When NGINX could not read a request line (a TLS handshake on a plain port, a scanner's
    binary, an empty ``""``) it answers 4xx itself and still logs the connection. Such a line is a
    request with no method and no path, its status counted like any other, and the first 64
    characters of what was received (up to any ``?``) kept as ``unreadable_request``. An
    unreadable request line with a status that is not 4xx is no line NGINX writes: quarantined.

    TRAILING fields after the user agent, in any order and mix:

    - quoted values, by position: ``"$http_x_forwarded_for"``, then ``"$host"`` (NGINX
      Amplify's ``main_ext``); further quoted values are not read;
    - bare times in seconds with milliseconds (``0.057``, ``-``, ``0.010, 0.020``): the first is
      ``$request_time`` (``duration``), the second ``$upstream_response_time``
      (``upstream_duration``, the sum when several upstreams were tried); further ones are not
      read, as no convention says what they are. Any other bare value makes the line another
      product's: Traefik's CLF is ``combined`` followed by ``COUNT "ROUTER" "URL" 12ms``;
    - ``key=value`` and ``key="value"`` pairs: ``rt``/``request_time`` (duration),
      ``urt``/``ut``/``upstream_response_time`` (upstream duration), ``uct``/``uht`` (upstream
      connect and header times, as ``upstream_connect_ns``/``upstream_header_ns``),
      ``ua``/``upstream_addr`` (the upstream address: ``ua`` is ``$upstream_addr`` in Amplify's
      ``main_ext``, whose user agent is already positional), ``us``/``upstream_status``,
      ``cs``/``upstream_cache_status``, ``sn``/``server_name``, ``host``, ``request_id``/
      ``req_id``, ``traceparent``/``http_traceparent``/``trace_id``, ``request_length``
      (``bytes_received``). Other keys are not read: a format may carry cookies or tokens.
    - or, as a whole, ingress-nginx's ``upstreaminfo`` tail: ``$request_length $request_time
      [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
      $upstream_response_length $upstream_response_time $upstream_status $req_id``, whose
      ``$proxy_upstream_name`` (``namespace-service-port``) is the upstream.

    ``upstream`` is ``$upstream_addr`` where logged: the last address when NGINX tried several,
    the one whose response was sent (the list stays in ``upstream_addr``). The trace id is read
    from ``traceparent``, else from ``$request_id`` when it is trace-shaped (32 hex digits).

``nginx_proxy_manager``
    Nginx Proxy Manager's ``proxy`` and ``standard`` formats (its ``log-proxy.conf``):
    ``[TIME] CACHE UPSTREAM_STATUS STATUS - METHOD SCHEME HOST "URI" [Client ADDRESS]
    [Length BYTES] [Gzip RATIO] [Sent-to SERVER] "USER_AGENT" "REFERER"``, the ``standard``
    one without CACHE, UPSTREAM_STATUS and ``[Sent-to ...]``. SERVER (the forward host) is the
    upstream; no duration is logged, so the start is the logged (end) time.

``nginx_json``
    One JSON object a line. Its keys are whatever the operator named them, so each field is read
    from the first of its usual keys present (not ``null``, ``""`` or ``-``), or from exactly the
    key ``Settings.fields`` names for it:

    ==================== ============================================================
    Clew field           keys tried
    ==================== ============================================================
    time                 time_iso8601, time_local, @timestamp, timestamp, time, msec
    client               remote_addr, client_ip, remote_ip, client
    user                 remote_user
    request              request (the request line)
    method               request_method, method
    path                 request_uri, uri, path
    protocol             server_protocol, protocol
    scheme               scheme
    host                 host, http_host, server_name
    status               status, status_code
    bytes_sent           body_bytes_sent, bytes_sent, body_bytes
    bytes_received       request_length, bytes_received
    duration             request_time, response_time, duration (seconds)
    upstream_duration    upstream_response_time, upstream_time (seconds)
    upstream             upstream_addr, upstream
    upstream_status      upstream_status
    user_agent           http_user_agent, user_agent, ua, agent
    referer              http_referer, referer, referrer
    x_forwarded_for      http_x_forwarded_for, x_forwarded_for, xff
    request_id           request_id, req_id
    traceparent          http_traceparent, traceparent, trace_id
    ==================== ============================================================

    A line is NGINX JSON when it has a time, a status and a request line or path (as text);
    without them it is some other product's JSON line. Times may be ISO 8601, Common Log
    Format or epoch seconds (``$msec``); all of them are the log write (end) time.
    With ``consumer="header:NAME"`` the header is read from the key ``http_NAME`` (dashes as
    underscores), as NGINX names request-header variables. Other keys are not kept.

Attributes, where the line says so: ``user``, ``protocol``, ``scheme``, ``user_agent``,
``referer`` (without its query string), ``x_forwarded_for``, ``request_id``, ``upstream_addr``,
``upstream_status``, ``cache_status``, ``server_name``, ``upstream_connect_ns``,
``upstream_header_ns``, ``alternative_upstream``, ``gzip_ratio``, ``unreadable_request``.

A file whose first line is an NGINX *error* log line (``2021/09/30 09:23:53 [error] 1#1: ...``)
is refused; an error line amid access lines is quarantined as such.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from clew.records import GatewayRequest
from collectors import native
from collectors.access_logs import (
    AccessLogCollector,
    BadLine,
    BlockReader,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    clf_time_ns,
    iso_time_ns,
    path_of,
    seconds_ns,
    trace_id_of,
    without_port,
)

GATEWAY = "nginx"

# "2021/09/30 09:23:53 [error] 1925800#1925800: *17 user ..." (pid#thread: [*connection] text).
_ERROR_LINE = re.compile(
    r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)

# The line up to "[TIME]" is "HEAD - USER " (HEAD holds no "[" but a leading bracketed IPv6
# address, "[::1]:8080"); Python splits it at its first " - ", which a regex would find only by
# backtracking through every " - " of a long X-Forwarded-For.
_COMBINED = re.compile(
    r"(?P<prefix>(?>(?:\[[^\]\s]*\])?[^\[]*))\[(?P<time>[^\]]*)\] "
    r'"(?:(?P<method>[A-Z_-]+) (?P<path>[^ "]+)(?: (?P<protocol>HTTP/[0-9.]+))?'
    r'|(?P<request>[^"]*))" '
    r"(?P<status>\S+) (?P<bytes>\S+)"
    r'(?: "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)")?(?P<rest>.*)'
)
_LINE_START = ("prefix", "time", "method", "path", "protocol", "request")
_LINE_END = ("status", "bytes", "referer", "user_agent", "rest")
# Enough of combined's shape ('... - ... [10/Oct/2000:13:55:36 -0700] "') to say that a line
# which does not read is a broken combined line.
_COMBINED_SHAPE = re.compile(r'([^\[]*)\[\d\d/[A-Z][a-z]{2}/\d{4}:[^\]]*\] "')

# NGINX reads methods of capital letters, "_" and "-" only (ngx_http_parse_request_line); an
# HTTP/0.9 request line has no protocol. (_COMBINED splits its request line alike.)
_METHOD = re.compile(r"[A-Z_-]+")
_REQUEST_LINE = re.compile(r"([A-Z_-]+) ([^ ]+)(?: (HTTP/[0-9.]+))?")

# A value NGINX writes once per upstream tried: "0.010, 0.020" (several servers) or
# "0.010 : 0.020" (an internal redirect to another upstream group). No item starts with "," or
# ":", so that where a list ends is never in doubt (and never backtracked over).
_LIST = r"[^\s,\":][^\s,\"]*(?:(?:, | : )[^\s,\":][^\s,\"]*)*"
_LIST_SEPARATOR = re.compile(r", | : ")
# A trailing field: "quoted", key=value, key="value" or a bare value; atomic, as a field once
# read is not read again another way.
_FIELD = rf'(?> +(?:([A-Za-z_][\w.-]*)=)?(?:"([^"]*)"|({_LIST})))'
_TRAILING_FIELD = re.compile(_FIELD)
_TRAILING_FIELDS = re.compile(f"{_FIELD}*")
_BARE_TIME = "(?:[0-9]{1,7}\\.[0-9]{3}|-)"
_BARE_SECONDS = re.compile(rf"{_BARE_TIME}(?:(?:, | : ){_BARE_TIME})*")
_INGRESS_TAIL = re.compile(
    rf" (?P<bytes_received>[0-9]+) (?P<duration>[0-9.]+|-) \[(?P<upstream_name>[^\]]*)\] "
    rf"\[(?P<alternative_upstream>[^\]]*)\] (?P<upstream>{_LIST}) (?:{_LIST}) "
    rf"(?P<upstream_duration>{_LIST}) (?P<upstream_status>{_LIST}) (?P<request_id>\S+)"
)

# Trailing key=value names of the widely used extended formats, as Clew fields.
_KEYED_FIELDS = {
    "rt": "duration",
    "request_time": "duration",
    "urt": "upstream_duration",
    "ut": "upstream_duration",
    "upstream_response_time": "upstream_duration",
    "uct": "upstream_connect",
    "upstream_connect_time": "upstream_connect",
    "uht": "upstream_header",
    "upstream_header_time": "upstream_header",
    "ua": "upstream",
    "upstream_addr": "upstream",
    "us": "upstream_status",
    "upstream_status": "upstream_status",
    "cs": "cache_status",
    "upstream_cache_status": "cache_status",
    "sn": "server_name",
    "server_name": "server_name",
    "host": "host",
    "request_id": "request_id",
    "req_id": "request_id",
    "traceparent": "traceparent",
    "http_traceparent": "traceparent",
    "trace_id": "traceparent",
    "request_length": "bytes_received",
}

_NPM = re.compile(
    r"\[(?P<time>[^\]]+)\] "
    rf"(?:(?P<cache_status>\S+) (?P<upstream_status>{_LIST}) )?"
    r"(?P<status>\S+) - (?P<method>\S+) (?P<scheme>\S+) (?P<host>\S+) "
    r'"(?P<path>[^"]*)" \[Client (?P<client>[^\]]*)\] \[Length (?P<bytes_sent>[^\]]*)\] '
    r"\[Gzip (?P<gzip_ratio>[^\]]*)\](?: \[Sent-to (?P<upstream>[^\]]*)\])? "
    r'"(?P<user_agent>[^"]*)" "(?P<referer>[^"]*)"'
)

# Each Clew field of a JSON line, and the keys it is read from, the first present first.
_JSON_KEYS: dict[str, tuple[str, ...]] = {
    "time": ("time_iso8601", "time_local", "@timestamp", "timestamp", "time", "msec"),
    "client": ("remote_addr", "client_ip", "remote_ip", "client"),
    "user": ("remote_user",),
    "request": ("request",),
    "method": ("request_method", "method"),
    "path": ("request_uri", "uri", "path"),
    "protocol": ("server_protocol", "protocol"),
    "scheme": ("scheme",),
    "host": ("host", "http_host", "server_name"),
    "status": ("status", "status_code"),
    "bytes_sent": ("body_bytes_sent", "bytes_sent", "body_bytes"),
    "bytes_received": ("request_length", "bytes_received"),
    "duration": ("request_time", "response_time", "duration"),
    "upstream_duration": ("upstream_response_time", "upstream_time"),
    "upstream": ("upstream_addr", "upstream"),
    "upstream_status": ("upstream_status",),
    "user_agent": ("http_user_agent", "user_agent", "ua", "agent"),
    "referer": ("http_referer", "referer", "referrer"),
    "x_forwarded_for": ("http_x_forwarded_for", "x_forwarded_for", "xff"),
    "request_id": ("request_id", "req_id"),
    "traceparent": ("http_traceparent", "traceparent", "trace_id"),
}
# The same, by key: the field a key holds and its rank among the field's keys.
_JSON_FIELD_OF = {
    key: (name, rank) for name, keys in _JSON_KEYS.items() for rank, key in enumerate(keys)
}
# JSON fields read as text (the others are numbers, times, or kept as logged).
_JSON_TEXT_FIELDS = frozenset(
    {
        "client",
        "user",
        "request",
        "method",
        "path",
        "protocol",
        "host",
        "upstream",
        "referer",
        "x_forwarded_for",
        "request_id",
        "traceparent",
    }
)
# Fields that go to the attributes as logged.
_KEPT_AS_LOGGED = frozenset(
    {
        "user",
        "x_forwarded_for",
        "request_id",
        "scheme",
        "user_agent",
        "upstream_status",
        "cache_status",
        "server_name",
        "alternative_upstream",
        "gzip_ratio",
    }
)

_ESCAPED_BYTE = re.compile(r"\\x([0-9A-Fa-f]{2})")
_SECONDS = "(?:[0-9]{1,7}(?:\\.[0-9]{1,9})?|-)"
_SECONDS_LIST = re.compile(rf"{_SECONDS}(?:\s*[,:]\s*{_SECONDS})*")
_EPOCH_SECONDS = re.compile(r"([0-9]{1,11})(?:\.([0-9]{1,9}))?")
_ADDRESS = re.compile(r"[\w.:%\[\]-]+")
_UNREADABLE_KEPT = 64
_LONGEST_SECONDS = 1e7  # 115 days: anything longer is no request time
_LARGEST_COUNT = 10**18  # beyond any byte count, and within what a 64-bit column holds
_LAST_EPOCH_SECOND = 9_223_372_036  # 2262: times are stored as 64-bit nanoseconds

# Lines of a log share their second by the hundreds: parse each time text once.
_clf_time_ns = functools.lru_cache(maxsize=4096)(clf_time_ns)
_iso_time_ns = functools.lru_cache(maxsize=4096)(iso_time_ns)


def rejects(first_line: str) -> str | None:
    """Why a file that starts with ``first_line`` is refused: it is an NGINX error log."""
    if _ERROR_LINE.match(first_line):
        return "an NGINX error log, not an access log"
    return None


def parse_combined(line: str, settings: Settings) -> GatewayRequest:
    """A ``combined`` line, with its optional leading host and trailing fields."""
    match = _COMBINED.fullmatch(line)
    if match is None:
        if (error := _ERROR_LINE.match(line)) is not None:
            raise BadLine(f"an NGINX error log line ([{error.group(1)}]), not a request")
        if (shape := _COMBINED_SHAPE.match(line)) is not None and " - " in shape.group(1):
            raise BadLine(
                'the line breaks off or is out of order after [TIME]: expected "REQUEST"'
                " STATUS BYTES"
            )
        raise NotThisFormat
    prefix, time, method, path, protocol, request = match.group(*_LINE_START)
    status, body_bytes, referer, user_agent, rest = match.group(*_LINE_END)
    head, separator, user = prefix.partition(" - ")
    if not separator or not prefix.endswith(" "):
        raise NotThisFormat
    user = user.rstrip(" ")
    fields = _trailing_fields(rest.rstrip()) if rest else {}
    if " " in head or "," in head:
        vhost, head, forwarded = _head_of(head)
        if vhost is not None:
            fields["host"] = vhost
        if forwarded is not None:
            fields["x_forwarded_for"] = forwarded
    fields["client"] = head
    if method is not None:
        fields["method"] = method
        fields["path"] = path
        fields["protocol"] = protocol
    else:
        fields["request"] = request  # no request line NGINX could read
    fields["status"] = status
    fields["bytes_sent"] = body_bytes
    if user and user != "-":
        fields["user"] = _unescaped(user)
    if referer is not None:
        fields["referer"] = _unescaped(referer)
        fields["user_agent"] = _unescaped(user_agent)
    return _request(_clf_time_ns(time, settings.timezone), fields, settings)


def parse_proxy_manager(line: str, settings: Settings) -> GatewayRequest:
    """A line of Nginx Proxy Manager's ``proxy`` or ``standard`` format."""
    match = _NPM.fullmatch(line)
    if match is None:
        if line.startswith("[") and "[Client " in line:
            raise BadLine(
                "not an Nginx Proxy Manager line: expected [TIME] [CACHE UPSTREAM_STATUS]"
                ' STATUS - METHOD SCHEME HOST "URI" [Client ...] [Length ...] [Gzip ...]'
            )
        raise NotThisFormat
    fields = {name: value for name, value in match.groupdict().items() if value is not None}
    for name in ("path", "user_agent", "referer"):
        fields[name] = _unescaped(fields[name])
    _check_method(fields)
    return _request(_clf_time_ns(match["time"], settings.timezone), fields, settings)


def parse_json(line: str, settings: Settings) -> GatewayRequest:
    """A JSON line of an NGINX ``log_format ... escape=json``."""
    if not line.startswith("{"):
        raise NotThisFormat
    record = _json_object(line)
    field_of = _JSON_FIELD_OF if not settings.fields else _configured(settings.fields)
    fields = _json_fields(record, field_of)
    target = fields.get("request", fields.get("path"))
    if "time" not in fields or "status" not in fields or not isinstance(target, str):
        raise NotThisFormat  # another product's JSON (Kong's "request" is an object)
    for name in _JSON_TEXT_FIELDS & fields.keys():
        fields[name] = _text(fields[name], name.replace("_", " "))
    _check_method(fields)
    headers = None
    if settings.consumer.startswith("header:"):
        name = settings.consumer[7:].lower()
        value = record.get("http_" + name.replace("-", "_"))
        if isinstance(value, str):
            headers = {name: value}
    return _request(_json_time_ns(fields["time"], settings), fields, settings, headers)


def _check_method(fields: dict[str, Any]) -> None:
    """A method logged apart that NGINX cannot have read: the request line was unreadable."""
    method = fields.get("method")
    if method is not None and "request" not in fields and _METHOD.fullmatch(method) is None:
        fields["request"] = f"{fields.pop('method')} {fields.pop('path', '')}".rstrip()


def _request(
    end_ns: int,
    fields: Mapping[str, Any],
    settings: Settings,
    headers: Mapping[str, str] | None = None,
) -> GatewayRequest:
    """The request of one line's fields, logged at ``end_ns``. ``fields`` are named as Clew
    names them, only those the line has, as logged: text (JSON numbers for JSON's numeric
    fields). ``request`` is a whole request line, else ``method``, ``path`` and ``protocol``
    are given apart. ``headers`` are request headers the line captured, by lower-case name."""
    status = _status(fields["status"])
    unreadable = None
    if "request" in fields:
        method, path, protocol, unreadable = _request_line(fields["request"])
        if unreadable is not None and not 400 <= status <= 499:
            raise BadLine(
                f"request line {unreadable!r} is not METHOD TARGET PROTOCOL, yet the status is"
                f" {status} (NGINX answers a request it cannot read with 4xx itself)"
            )
    else:
        method, path, protocol = fields.get("method"), fields.get("path"), fields.get("protocol")
    duration = _seconds(fields.get("duration"), "request time")
    address, forwarded = _client_of(fields.get("client"))
    identity = fields.get("user")
    request_id = fields.get("request_id")
    upstream, upstream_addr = _upstream_of(fields) if "upstream" in fields else (None, None)
    attributes = {name: fields[name] for name in _KEPT_AS_LOGGED & fields.keys()}
    if protocol is not None:
        attributes["protocol"] = protocol
    if "referer" in fields:
        attributes["referer"] = fields["referer"].split("?", 1)[0]
    if forwarded is not None:
        attributes.setdefault("x_forwarded_for", forwarded)
    if upstream_addr is not None:
        attributes["upstream_addr"] = upstream_addr
    if "upstream_connect" in fields:
        attributes["upstream_connect_ns"] = _seconds(fields["upstream_connect"], "connect time")
    if "upstream_header" in fields:
        attributes["upstream_header_ns"] = _seconds(fields["upstream_header"], "header time")
    if unreadable is not None:
        attributes["unreadable_request"] = unreadable
    return GatewayRequest(  # by position, as it is a third faster than by keyword
        end_ns - duration if duration else end_ns,  # start_ns
        GATEWAY,
        settings.consumer_of(address, identity, headers),
        settings.client(address),
        method,
        fields.get("host"),
        path_of(_unescaped(path)) if path is not None else None,
        None,  # route: NGINX names none
        status,
        duration,
        _seconds(fields.get("upstream_duration"), "upstream response time"),
        upstream,
        _count(fields.get("bytes_sent"), "bytes sent"),
        _count(fields.get("bytes_received"), "request length"),
        _trace_id(fields.get("traceparent"), request_id),
        attributes_json(attributes),
    )


def _trace_id(traceparent: str | None, request_id: str | None) -> str | None:
    """The trace of a ``traceparent``, else of a trace-shaped ``$request_id``."""
    if traceparent is not None and (trace_id := trace_id_of(traceparent)) is not None:
        return trace_id
    return trace_id_of(request_id) if request_id is not None else None


def _request_line(request: str) -> tuple[str | None, str | None, str | None, str | None]:
    """Method, path and protocol of a request line, or what was received when it is none (cut
    short, and without a query string)."""
    match = _REQUEST_LINE.fullmatch(request)
    if match is not None:
        return match.group(1), match.group(2), match.group(3), None
    return None, None, None, request.split("?", 1)[0][:_UNREADABLE_KEPT]


def _head_of(head: str) -> tuple[str | None, str, str | None]:
    """The virtual host, the client address(es) and an X-Forwarded-For list logged before
    them, from what precedes `` - USER [TIME]``."""
    if head.startswith('"'):  # "$http_x_forwarded_for" $remote_addr
        end = head.find('"', 1)
        address = head[end + 1 :].strip() if end > 0 else ""
        if not address or " " in address:
            raise BadLine(f"{head!r} is not a quoted X-Forwarded-For list and an address")
        return None, address, head[1:end]
    tokens = head.replace(", ", ",").split(" ")
    if len(tokens) == 1:
        return None, head, None
    if len(tokens) == 2 and "," not in tokens[1]:
        if "," in tokens[0]:  # $http_x_forwarded_for $remote_addr, unquoted
            return None, tokens[1], tokens[0].replace(",", ", ")
        return tokens[0], tokens[1], None
    raise BadLine(f"{head!r} is not [HOST] ADDRESS before ' - USER [TIME]'")


def _client_of(logged: str | None) -> tuple[str | None, str | None]:
    """The client's address (without a port), and ``logged`` when it is an X-Forwarded-For
    list (``A, B, C``), whose last address is the connection's."""
    if logged is None:
        return None, None
    address = logged.rsplit(",", 1)[-1].strip() if "," in logged else logged
    if _ADDRESS.fullmatch(address) is None:
        raise BadLine(f"client address {address!r} is not an address")
    if ":" in address:
        address = without_port(address)
    return address, (logged if "," in logged else None)


def _upstream_of(fields: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The upstream (a named upstream group, else the last address tried) and the addresses
    tried when they are not the upstream itself."""
    addresses = fields["upstream"]
    if "upstream_name" in fields:
        return fields["upstream_name"], addresses
    last = _LIST_SEPARATOR.split(addresses)[-1]
    return (last if last != "-" else None), (addresses if last != addresses else None)


def _trailing_fields(rest: str) -> dict[str, object]:
    """The Clew fields of what follows the user agent (see the module's docstring)."""
    if (ingress := _INGRESS_TAIL.fullmatch(rest)) is not None:
        return {name: value for name, value in ingress.groupdict().items() if value}
    fields: dict[str, object] = {}
    quoted: list[str] = []
    times: list[str] = []
    for key, quoted_value, bare_value in _TRAILING_FIELD.findall(rest):
        if key:
            name = _KEYED_FIELDS.get(key.lower())
            value = bare_value or quoted_value
            if name is not None and value and value != "-":
                fields[name] = _unescaped(value)
        elif not bare_value:
            quoted.append(quoted_value)
        elif _BARE_SECONDS.fullmatch(bare_value):
            times.append(bare_value)
        else:
            # No NGINX format writes it: another product's combined with extras, as Traefik's
            # CLF (COUNT "ROUTER" "URL" DURATIONms).
            raise NotThisFormat
    if _TRAILING_FIELDS.fullmatch(rest) is None:  # what the fields read leave out
        raise BadLine(
            f"the fields after the user agent, {rest.strip()[:60]!r}, are not quoted values,"
            " key=value pairs and times in seconds"
        )
    if quoted and quoted[0] and quoted[0] != "-":
        fields.setdefault("x_forwarded_for", quoted[0])
    if len(quoted) > 1 and _ADDRESS.fullmatch(quoted[1]):
        fields.setdefault("host", quoted[1])
    if times:
        fields.setdefault("duration", times[0])
    if len(times) > 1:
        fields.setdefault("upstream_duration", times[1])
    return fields


def _json_object(line: str) -> dict:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        # Bytes that are not UTF-8 reach the parser as "\xHH" (see AccessLogCollector), which
        # JSON does not allow inside a string: read them as the literal text they are.
        if "\\x" not in line:
            raise BadLine(f"not valid JSON: {error}") from None
        try:
            record = orjson.loads(line.replace("\\x", "\\\\x"))
        except orjson.JSONDecodeError:
            raise BadLine(f"not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise NotThisFormat
    return record


def _json_fields(
    record: Mapping[str, object], field_of: Mapping[str, tuple[str, int]]
) -> dict[str, object]:
    """The Clew fields of a JSON record: each from the first of its keys that has a value
    (not null, empty or ``-``)."""
    fields: dict[str, object] = {}
    ranks: dict[str, int] = {}
    for key, value in record.items():
        found = field_of.get(key)
        if found is None or value is None or value == "" or value == "-":
            continue
        name, rank = found
        if name not in ranks or rank < ranks[name]:
            fields[name] = value
            ranks[name] = rank
    return fields


def _configured(fields: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """The JSON keys read when ``Settings.fields`` names some: a named key is the only one
    read for its field."""
    return _configured_keys(tuple(sorted(fields.items())))


@functools.lru_cache(maxsize=16)
def _configured_keys(fields: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, int]]:
    unknown = [name for name, _ in fields if name not in _JSON_KEYS]
    if unknown:
        raise BadLine(f"fields {unknown} are none of {sorted(_JSON_KEYS)}")
    named = {name for name, _ in fields}
    field_of = {key: found for key, found in _JSON_FIELD_OF.items() if found[0] not in named}
    field_of.update((key, (name, 0)) for name, key in fields)
    return field_of


def _json_time_ns(value: object, settings: Settings) -> int:
    """Unix nanoseconds of a JSON time: ISO 8601, Common Log Format or epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and 0 <= value < _LAST_EPOCH_SECOND):
            raise BadLine(f"time {value!r} is not a time in epoch seconds up to 2262")
        return int(Decimal(repr(value)) * 1_000_000_000)
    if not isinstance(value, str):
        raise BadLine(f"time {value!r} is not a time")
    if (epoch := _EPOCH_SECONDS.fullmatch(value)) is not None:
        seconds, fraction = epoch.groups()
        if int(seconds) >= _LAST_EPOCH_SECOND:
            raise BadLine(f"time {value!r} is not a time in epoch seconds up to 2262")
        return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))
    if value[2:3] == "/":
        return _clf_time_ns(value, settings.timezone)
    return _iso_time_ns(value, settings.timezone)


def _status(value: object) -> int:
    if isinstance(value, str):
        if len(value) == 3 and value.isascii() and value.isdigit():
            return int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999:
        return value
    raise BadLine(f"status {value!r} is not a number")


def _count(value: object, what: str) -> int | None:
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
        if value == "-" or value == "":
            return None
    elif value is None:
        return None
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LARGEST_COUNT:
        return value
    raise BadLine(f"{what} {value!r} is not a number")


def _seconds(value: object, what: str) -> int | None:
    """Nanoseconds of a time NGINX logs in seconds (several, for several upstreams: summed)."""
    if value is None or value == "-" or value == "":
        return None
    nanoseconds = None
    if isinstance(value, str):
        if value.replace(".", "", 1).isdigit() and value.isascii():
            nanoseconds = round(float(value) * 1_000_000_000)  # as seconds_ns reads one time
        elif _SECONDS_LIST.fullmatch(value):
            nanoseconds = seconds_ns(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        nanoseconds = seconds_ns(value) if abs(value) < _LONGEST_SECONDS else None
    if nanoseconds is None or not 0 <= nanoseconds < _LONGEST_SECONDS * 1_000_000_000:
        raise BadLine(f"{what} {value!r} is not a time in seconds")
    return nanoseconds


def _text(value: object, what: str) -> str | None:
    if value is None or value == "-" or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadLine(f"{what} {value!r} is not text")


def _unescaped(text: str) -> str:
    """Text as it was before NGINX escaped its bytes as ``\\xHH`` (kept escaped when those bytes
    are no UTF-8)."""
    if "\\x" not in text:
        return text
    raw = _ESCAPED_BYTE.sub(lambda byte: chr(int(byte.group(1), 16)), text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def combined_block(settings: Settings) -> BlockReader | None:
    """The compiled reader of ``combined`` lines (``collectors/_access_nginx.c``: what it reads
    and hands back), for these settings; None when it is not built or disabled, and when client
    addresses are hashed (the per-line path hashes them)."""
    reader = native.reader
    if reader is None or settings.hash_clients:
        return None
    gateway = settings.gateway if settings.gateway is not None else GATEWAY
    by_client = settings.consumer != "auto"  # else the user: consumer_of without headers
    read = reader.nginx_block
    return lambda data, start, end, most: read(data, start, end, most, gateway, by_client)


NGINX_COMBINED = LineFormat("nginx_combined", parse_combined, combined_block)
NGINX_PROXY_MANAGER = LineFormat("nginx_proxy_manager", parse_proxy_manager)
NGINX_JSON = LineFormat("nginx_json", parse_json)
FORMATS = [NGINX_COMBINED, NGINX_PROXY_MANAGER, NGINX_JSON]


def collector() -> AccessLogCollector:
    """The NGINX access-log collector (the ``clew.collectors`` entry point)."""
    return AccessLogCollector(
        "nginx",
        "NGINX access logs: combined and its extensions, Nginx Proxy Manager, JSON",
        FORMATS,
        rejects=rejects,
    )
