"""Envoy access logs: the default text format and Envoy Gateway's JSON, apart or in one stream.

Envoy writes a line per request when the request ends; both formats stamp the request's START
(``%START_TIME%``: "Request start time including milliseconds", Envoy docs, "Access logging").
Envoy writes ``-`` for every value it does not have; the JSON format writes ``null`` or ``"-"``.
A container runtime's prefix (``<time> stdout F ``) is removed before a line is read, so a pod's
log, where Envoy Gateway's JSON lines and text lines may mix, is read as it is.

``envoy_text``: Envoy's default format string (Envoy docs, "Access logging", "Default format
string", the same since Envoy 1.5)::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

and its documented variants: without ``%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%`` (Envoy Gateway's
text format, "Proxy Access Logs"), and Istio's default proxy format (Istio 1.8 on), which adds
``%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"``
after the flags and ``%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%`` at the end.

``envoy_json``: Envoy Gateway's default JSON format (its "Proxy Access Logs" task), one object a
line, keys ``start_time``, ``method``, ``x-envoy-origin-path``, ``protocol``, ``response_code``,
``response_flags``, ``response_code_details``, ``connection_termination_details``,
``upstream_transport_failure_reason``, ``bytes_received``, ``bytes_sent``, ``duration``,
``x-envoy-upstream-service-time``, ``x-forwarded-for``, ``user-agent``, ``x-request-id``,
``:authority``, ``upstream_host``, ``upstream_cluster``, ``upstream_local_address``,
``downstream_local_address``, ``downstream_remote_address``, ``requested_server_name``,
``route_name``. Numbers come as numbers or as text ("200"), depending on the Envoy version. The
key names of Istio's JSON format (``path``, ``authority``, ``user_agent``, ``request_id``,
``x_forwarded_for``, ``upstream_service_time``) are read as well. A line is taken for this
format when it is a JSON object naming ``response_code``; a line that names it (or
``x-envoy-origin-path``, ``upstream_cluster``, ``response_flags``) but is no JSON (cut short, say)
is quarantined with the JSON parser's reason.

How the fields become a request, in both formats:

- ``start_ns``: START_TIME (ISO 8601, UTC).
- ``status``: RESPONSE_CODE; ``0`` (no response was sent: the client went away, the flags and
  details say why) is stored as None.
- ``duration_ns``: DURATION, in milliseconds; ``upstream_duration_ns``: the upstream's
  ``x-envoy-upstream-service-time`` response header, in milliseconds, where logged.
- ``bytes_received`` / ``bytes_sent``: BYTES_RECEIVED / BYTES_SENT (bodies).
- ``host``: ``:authority``; ``path``: the original path (before rewrites), query string dropped;
  ``route``: None, as Envoy's route names (``httproute/app/web/rule/0/match/0/web``) are names,
  not templates: they go to the attributes.
- ``upstream``: UPSTREAM_CLUSTER as logged (Envoy Gateway names clusters after the HTTPRoute
  rule, ``httproute/<namespace>/<route>/rule/<n>``), else the upstream host (``10.0.2.1:80``;
  the ``tcp://`` of older Envoy versions dropped).
- ``client``: DOWNSTREAM_REMOTE_ADDRESS without its port. It is Envoy's own view of the client
  (the peer, or the address it took from X-Forwarded-For or the PROXY protocol when configured to
  trust them). Where the line has no such field (the default text format) it is the LAST address
  of X-Forwarded-For: the one Envoy appends for the connection's peer
  (``use_remote_address``, as Envoy Gateway sets it); the leftmost entries are the client's own
  claims.
- ``consumer``: Envoy logs no identity, so ``auto`` gives none; ``header:NAME`` reads a JSON key
  of that name (a header an operator logged with ``%REQ(NAME)%``), or one of the text format's
  header fields.
- ``trace_id``: a ``traceparent``, ``x-b3-traceid`` or ``trace_id`` (``%TRACE_ID%``) key where
  the JSON has one; X-Request-ID only when it is trace-shaped (Envoy makes it a UUID, which is not).
- ``attributes``: protocol, response flags and code details, connection termination details,
  upstream transport failure reason, user agent, request id, route name, upstream host,
  downstream local address (the listener), requested server name (SNI), and X-Forwarded-For
  (left out when client addresses are hashed, as it holds them).
"""

from __future__ import annotations

import re

import orjson

from clew.records import GatewayRequest
from collectors.access_logs import (
    NS_PER_MS,
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    iso_time_ns,
    milliseconds_ns,
    path_of,
    trace_id_of,
    whole_number,
    without_port,
)

# No field of the default format but the request line holds a space, and only the quoted ones a
# quote: ``[^"\s]+`` keeps an unquoted field from swallowing a quoted one, so each variant reads
# one way only.
_TEXT = re.compile(
    r'\[(?P<start>[^\]]*)\] "(?P<method>[^"\s]+) (?P<target>[^"\s]+) (?P<protocol>[^"\s]+)" '
    r"(?P<status>[^\"\s]+) (?P<flags>[^\"\s]+)"
    r'(?: (?P<details>[^"\s]+) (?P<termination>[^"\s]+) "(?P<failure>[^"]*)")?'
    r" (?P<received>[^\"\s]+) (?P<sent>[^\"\s]+) (?P<duration>[^\"\s]+)"
    r"(?: (?P<upstream_time>[^\"\s]+))?"
    r' "(?P<forwarded>[^"]*)" "(?P<agent>[^"]*)" "(?P<request_id>[^"]*)"'
    r' "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)"'
    r"(?: (?P<cluster>\S+) \S+ (?P<local>\S+) (?P<remote>\S+)"
    r" (?P<server_name>\S+) (?P<route_name>\S+))?"
    r"\s*"
)
# What tells an Envoy text line from other text: the bracketed ISO start time, then a quote.
_TEXT_START = re.compile(r'\[\d{4}-\d\d-\d\dT[^\]]*\] "([^"]*)"?')
_REQUEST_LINE = re.compile(r'[^"\s]+ [^"\s]+ [^"\s]+')

_LAYOUT = (
    '[START_TIME] "METHOD PATH PROTOCOL" STATUS FLAGS BYTES_RECEIVED BYTES_SENT DURATION '
    '[UPSTREAM_SERVICE_TIME] "X-FORWARDED-FOR" "USER-AGENT" "X-REQUEST-ID" "AUTHORITY" '
    '"UPSTREAM_HOST"'
)

_TRACE_KEYS = ("traceparent", "x-b3-traceid", "trace_id")
# Keys that only Envoy's JSON formats name: a line that has one but is no JSON is Envoy's, broken.
_JSON_MARKS = ('"response_code"', '"x-envoy-origin-path"', '"upstream_cluster"', '"response_flags"')


def parse_text(line: str, settings: Settings) -> GatewayRequest:
    """A line of Envoy's default text format or one of its documented variants."""
    match = _TEXT.fullmatch(line)
    if match is None:
        start = _TEXT_START.match(line)
        if start is None:
            raise NotThisFormat
        if _REQUEST_LINE.fullmatch(start.group(1)) is None:
            raise BadLine(f"request line {start.group(1)!r} is not METHOD PATH PROTOCOL")
        raise BadLine(f"the fields do not follow Envoy's default format, {_LAYOUT}")
    (
        start, method, target, protocol, status, flags, details, termination, failure, received,
        sent, duration, upstream_time, forwarded, agent, request_id, authority, upstream_host,
        cluster, local, remote, server_name, route_name,
    ) = match.groups()  # fmt: skip
    # Envoy writes "-" for a value it does not have; the helpers and attributes_json know it.
    forwarded, authority, upstream_host = _some(forwarded), _some(authority), _some(upstream_host)
    client = _ip_of(_some(remote) or _last_forwarded(forwarded))
    headers = None
    if settings.consumer.startswith("header:"):
        headers = {
            "x-forwarded-for": forwarded,
            "user-agent": _some(agent),
            "x-request-id": _some(request_id),
            ":authority": authority,
        }
    return GatewayRequest(
        start_ns=_start_ns(start),
        gateway="envoy",
        consumer=settings.consumer_of(client, None, headers),
        client=settings.client(client),
        method=_some(method),
        host=authority,
        path=path_of(target),
        route=None,
        status=_status(status),
        duration_ns=_milliseconds("DURATION", duration),
        upstream_duration_ns=_milliseconds("X-ENVOY-UPSTREAM-SERVICE-TIME", upstream_time),
        upstream=_some(cluster) or _upstream_host(upstream_host),
        bytes_sent=_count("BYTES_SENT", sent),
        bytes_received=_count("BYTES_RECEIVED", received),
        trace_id=trace_id_of(request_id),
        attributes=attributes_json(
            {
                "protocol": protocol,
                "response_flags": flags,
                "response_code_details": details,
                "connection_termination_details": termination,
                "upstream_transport_failure_reason": failure,
                "user_agent": agent,
                "request_id": request_id,
                "route_name": route_name,
                "upstream_host": upstream_host,
                "downstream_local_address": local,
                "requested_server_name": server_name,
                "x_forwarded_for": None if settings.hash_clients else forwarded,
            }
        ),
    )


def parse_json(line: str, settings: Settings) -> GatewayRequest:
    """A line of Envoy Gateway's default JSON access log (or Istio's JSON key names)."""
    if line[:1] != "{":
        raise NotThisFormat
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        if any(key in line for key in _JSON_MARKS):
            raise BadLine(f"not JSON: {error}") from None
        raise NotThisFormat from None  # some other JSON, or too little of it to tell
    if "response_code" not in record:
        raise NotThisFormat
    get = record.get
    start = _text("start_time", get("start_time"))
    if start is None:
        raise BadLine("start_time is missing")
    # Envoy Gateway's key, else Istio's: a line has one or the other.
    forwarded = _text("x-forwarded-for", get("x-forwarded-for") or get("x_forwarded_for"))
    request_id = _text("x-request-id", get("x-request-id") or get("request_id"))
    upstream_host = _text("upstream_host", get("upstream_host"))
    upstream_time = get("x-envoy-upstream-service-time")
    if upstream_time is None:  # not "or": a time of 0 is a time
        upstream_time = get("upstream_service_time")
    client = _ip_of(
        _text("downstream_remote_address", get("downstream_remote_address"))
        or _last_forwarded(forwarded)
    )
    headers = None
    if settings.consumer.startswith("header:"):
        name = settings.consumer[7:].lower()
        headers = {name: _text(name, get(name))}
    trace_id = None
    for key in _TRACE_KEYS:
        if key in record and (trace_id := trace_id_of(_text(key, record[key]))):
            break
    else:
        trace_id = trace_id_of(request_id)
    return GatewayRequest(
        start_ns=_start_ns(start),
        gateway="envoy",
        consumer=settings.consumer_of(client, None, headers),
        client=settings.client(client),
        method=_text("method", get("method")),
        host=_text(":authority", get(":authority") or get("authority")),
        path=path_of(_text("x-envoy-origin-path", get("x-envoy-origin-path") or get("path"))),
        route=None,
        status=_status(get("response_code")),
        duration_ns=_milliseconds("duration", get("duration")),
        upstream_duration_ns=_milliseconds("x-envoy-upstream-service-time", upstream_time),
        upstream=_text("upstream_cluster", get("upstream_cluster"))
        or _upstream_host(upstream_host),
        bytes_sent=_count("bytes_sent", get("bytes_sent")),
        bytes_received=_count("bytes_received", get("bytes_received")),
        trace_id=trace_id,
        # Values only kept as attributes are kept as logged (attributes_json drops "-" and null).
        attributes=attributes_json(
            {
                "protocol": get("protocol"),
                "response_flags": get("response_flags"),
                "response_code_details": get("response_code_details"),
                "connection_termination_details": get("connection_termination_details"),
                "upstream_transport_failure_reason": get("upstream_transport_failure_reason"),
                "user_agent": get("user-agent") or get("user_agent"),
                "request_id": request_id,
                "route_name": get("route_name"),
                "upstream_host": upstream_host,
                "downstream_local_address": get("downstream_local_address"),
                "requested_server_name": get("requested_server_name"),
                "x_forwarded_for": None if settings.hash_clients else forwarded,
            }
        ),
    )


def _some(text: str | None) -> str | None:
    """A text field's value; None for Envoy's "-" (or nothing at all)."""
    return None if not text or text == "-" else text


def _text(key: str, value: object) -> str | None:
    """A text field of a JSON line; None when Envoy had no value (``null``, ``"-"``)."""
    if type(value) is str:
        return None if not value or value == "-" else value
    if value is None:
        return None
    if type(value) is int or type(value) is float:
        return str(value)
    raise BadLine(f"{key} {value!r} is not text")


def _count(name: str, value: object) -> int | None:
    """A whole, non-negative number, as a JSON number or as text; None for ``-`` or null."""
    if value is None or value == "-" or value == "":
        return None
    return whole_number(name, value)


def _milliseconds(name: str, value: object) -> int | None:
    if value is None or value == "-" or value == "":
        return None
    return milliseconds_ns(name, value)


def _status(value: object) -> int | None:
    status = _count("response code", value)
    return status or None  # 0: Envoy sent no response


# START_TIME is to the millisecond, in UTC ("2025-12-31T16:37:40.479Z"), and the requests of one
# second differ in the fraction only: each second is converted once.
_SECONDS: dict[str, int] = {}
_SECONDS_KEPT = 4096


def _start_ns(text: str) -> int:
    second, _, fraction = text.partition(".")
    if len(fraction) == 4 and fraction[3] == "Z" and fraction[:3].isdigit() and text.isascii():
        milliseconds = int(fraction[:3]) * NS_PER_MS
        start = _SECONDS.get(second)
        if start is None:
            start = iso_time_ns(text) - milliseconds
            if len(_SECONDS) >= _SECONDS_KEPT:
                _SECONDS.clear()
            _SECONDS[second] = start
        return start + milliseconds
    return iso_time_ns(text)


def _ip_of(address: str | None) -> str | None:
    """An address without its port (``without_port``); None for none."""
    return without_port(address) if address else None


def _last_forwarded(forwarded: str | None) -> str | None:
    """The last address of an X-Forwarded-For list: the one the nearest proxy appended."""
    if not forwarded:
        return None
    return forwarded.rpartition(",")[2].strip() or None


def _upstream_host(host: str | None) -> str | None:
    if host is not None and host.startswith("tcp://"):
        return host[6:] or None
    return host


ENVOY_TEXT = LineFormat("envoy_text", parse_text)
ENVOY_JSON = LineFormat("envoy_json", parse_json)
FORMATS = [ENVOY_JSON, ENVOY_TEXT]


def collector() -> AccessLogCollector:
    """Envoy's access logs, text and JSON."""
    return AccessLogCollector(
        "envoy",
        "Envoy access logs: the default text format (and Envoy Gateway's and Istio's variants) "
        "and Envoy Gateway's JSON",
        FORMATS,
    )
