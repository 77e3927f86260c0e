"""Traefik access logs: JSON (``accessLog.format: json``) and Traefik's Common Log Format (the
default, ``common``).

Times. Traefik stamps a request with its start: ``StartUTC`` is "the time at which request
processing started" and ``Duration`` "the total time taken by processing the response, including
the origin server's time" (Traefik's ``pkg/middlewares/accesslog/logdata.go``, and the access-logs
page of its documentation). Its CLF formatter writes ``StartUTC`` (else ``StartLocal``, in local
time) as the line's time, to the second, and ``Duration`` in whole milliseconds, truncated.

The client. Traefik's ``ClientHost`` is the connection's address, or the request's
X-Forwarded-For header when it has one (``logger.go``), which an entry point keeps only from the
proxies its ``forwardedHeaders.trustedIPs`` trust (it deletes it from any other). Clew takes
Traefik at its word: the client is ``ClientHost``'s first address, the client those trusted
proxies report. The whole list goes to ``x_forwarded_for`` and, in JSON, the connection's own
address (``ClientAddr``) to ``peer_address`` when it is not the client.

``traefik_json``
    One JSON object a line, with Traefik's field names: ``StartUTC`` (RFC 3339, nanoseconds; else
    ``StartLocal``, else the entry's ``time`` − ``Duration``) is the start; ``Duration`` and
    ``OriginDuration`` (nanoseconds) the duration and upstream duration; ``DownstreamStatus`` the
    status; ``RequestMethod``, ``RequestHost``, ``RequestPath`` (its query string dropped);
    ``DownstreamContentSize`` bytes sent and ``RequestContentSize`` bytes received;
    ``ServiceName`` the upstream (else the service URL); ``ClientUsername`` the identity behind
    ``consumer`` when it is not ``-``. ``ServiceURL`` is read as a string or as the Go ``url.URL``
    object older versions serialised, without its user info and query. Captured request headers
    (``request_<Canonical-Name>``, as Go writes header names) serve ``consumer="header:NAME"``
    and the trace id: Traefik's own ``trace_id``/``TraceId``, else ``request_Traceparent``,
    ``request_X-B3-Traceid``, ``request_B3``, or a trace-shaped ``request_X-Request-Id``.

``traefik_clf``
    ``CLIENT_HOST - USER [START] "METHOD PATH PROTOCOL" STATUS SIZE "REFERER" "USER_AGENT"
    COUNT "ROUTER" "SERVICE_URL" DURATIONms``. STATUS and SIZE are what was sent to the client
    (``DownstreamStatus``/``DownstreamContentSize``; Traefik before v2.10 wrote the origin's
    status and size here), ``-`` when not known. COUNT, the requests Traefik received since it
    started, is not kept. There is no service name in this format: the upstream is SERVICE_URL,
    the server the request went to.

    Traefik's ``genericCLF`` format is plain ``combined``, which the NGINX collector reads (its
    time, without a duration, is taken as the start there too); set ``Settings.gateway`` to name
    the gateway.

Attributes, where the line says so: ``router`` (``RouterName``, a ``parent -> child`` chain for
nested routers), ``entry_point``, ``service_url``, ``protocol``, ``scheme``, ``origin_status``
(0: no origin answered), ``retries``, ``tls_version``, ``tls_cipher``, ``user_agent``,
``referer`` (without its query string), ``x_forwarded_for``, ``peer_address``, ``request_id``
(``request_X-Request-Id``). The route stays empty: a router is a name, not a route template.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

import orjson

from clew.records import GatewayRequest
from collectors.access_logs import (
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    clf_time_ns,
    iso_time_ns,
    path_of,
    trace_id_of,
    version_header_of,
    without_port,
)

GATEWAY = "traefik"

# The line up to "[START]" is "CLIENT_HOST - USER ", split in Python at its first " - ".
_CLF = re.compile(
    r"(?P<prefix>[^\[]*)\[(?P<time>[^\]]+)\] "
    r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\S+) (?P<size>\S+) '
    r'"(?P<referer>[^"]*)" "(?P<user_agent>.*)" (?P<count>\S+) '
    r'"(?P<router>[^"]*)" "(?P<service_url>[^"]*)" (?P<milliseconds>[0-9]{1,12})ms'
)

# Keys only Traefik's access log writes: a JSON line with none of them is not one.
_JSON_MARKS = frozenset(("StartUTC", "StartLocal", "DownstreamStatus"))
# Fields that go to the attributes as logged: (attribute, Traefik's key).
_KEPT_AS_LOGGED = (
    ("router", "RouterName"),
    ("entry_point", "entryPointName"),
    ("protocol", "RequestProtocol"),
    ("scheme", "RequestScheme"),
    ("origin_status", "OriginStatus"),
    ("tls_version", "TLSVersion"),
    ("tls_cipher", "TLSCipher"),
    ("user_agent", "request_User-Agent"),
    ("request_id", "request_X-Request-Id"),
)
# Request headers that carry a trace id, as Traefik names their captures (Go's canonical form).
_TRACE_HEADERS = ("request_Traceparent", "request_X-B3-Traceid", "request_B3")
_ADDRESS = re.compile(r"[\w.:%\[\]-]+")
# The fraction of a second of an RFC 3339 time, after "2021-12-08T14:02:43".
_FRACTION = re.compile(r"\.([0-9]{1,9})[0-9]*")
_whole_seconds_ns = functools.lru_cache(maxsize=4096)(iso_time_ns)
_clf_time_ns = functools.lru_cache(maxsize=4096)(clf_time_ns)
_LARGEST = 10**18  # no count or duration a request has comes near it (nanoseconds: 31 years)


def parse_json(line: str, settings: Settings) -> GatewayRequest:
    """A line of Traefik's JSON access log."""
    if not line.startswith("{"):
        raise NotThisFormat
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise BadLine(f"not valid JSON: {error}") from None
    if not isinstance(record, dict) or _JSON_MARKS.isdisjoint(record):
        raise NotThisFormat
    duration = _nanoseconds(record.get("Duration"), "Duration")
    client_host = _text(record.get("ClientHost"), "ClientHost")
    connection = record.get("ClientAddr")
    peer = without_port(connection) if isinstance(connection, str) and connection else None
    address = _first_address(client_host) or peer
    service_url = _service_url(record.get("ServiceURL"))
    identity = _text(record.get("ClientUsername"), "ClientUsername")
    attributes = {name: record[key] for name, key in _KEPT_AS_LOGGED if key in record}
    if service_url is not None:
        attributes["service_url"] = service_url
    if record.get("RetryAttempts"):
        attributes["retries"] = record["RetryAttempts"]
    if "request_Referer" in record:
        attributes["referer"] = _without_query(record["request_Referer"])
    if client_host != peer:
        attributes["x_forwarded_for"] = client_host
    if peer != address:
        attributes["peer_address"] = peer
    if "ersion" in line:  # a captured header that pins a version (request_Api-Version)
        pin = version_header_of(k[8:] for k in record if k.startswith("request_"))
        if pin is not None:
            attributes["version_header"] = pin
    return GatewayRequest(  # by position, as it is a third faster than by keyword
        _start_ns(record, duration, settings),
        GATEWAY,
        settings.consumer_of(address, identity, _header(record, settings.consumer)),
        settings.client(address),
        _text(record.get("RequestMethod"), "RequestMethod"),
        _text(record.get("RequestHost") or record.get("RequestAddr"), "RequestHost"),
        path_of(_text(record.get("RequestPath"), "RequestPath")),
        None,  # route: a router is a name, not a route template
        _status(record.get("DownstreamStatus")),
        duration,
        _nanoseconds(record.get("OriginDuration"), "OriginDuration"),
        _text(record.get("ServiceName"), "ServiceName") or service_url,
        _count(record.get("DownstreamContentSize"), "DownstreamContentSize"),
        _count(record.get("RequestContentSize"), "RequestContentSize"),
        _trace_id(record),
        attributes_json(attributes),
    )


def parse_clf(line: str, settings: Settings) -> GatewayRequest:
    """A line of Traefik's Common Log Format."""
    if not line.endswith("ms"):
        raise NotThisFormat
    match = _CLF.fullmatch(line)
    if match is None:
        raise NotThisFormat
    client_host, separator, user = match["prefix"].partition(" - ")
    if not separator or not user.endswith(" "):
        raise NotThisFormat
    client_host = _text(client_host, "client")
    address = _first_address(client_host)
    identity = _text(user[:-1], "user")
    service_url = _text(match["service_url"], "service URL")
    return GatewayRequest(
        start_ns=_clf_time_ns(match["time"], settings.timezone),
        gateway=GATEWAY,
        consumer=settings.consumer_of(address, identity),
        client=settings.client(address),
        method=_text(match["method"], "method"),
        host=None,
        path=path_of(match["path"]),
        route=None,
        status=_status(match["status"]),
        duration_ns=int(match["milliseconds"]) * 1_000_000,
        upstream_duration_ns=None,
        upstream=service_url,
        bytes_sent=_count(match["size"], "size"),
        bytes_received=None,
        trace_id=None,
        attributes=attributes_json(
            {
                "router": match["router"],
                "protocol": match["protocol"],
                "user_agent": match["user_agent"],
                "referer": _without_query(match["referer"]),
                "x_forwarded_for": client_host if client_host != address else None,
            }
        ),
    )


def _start_ns(record: Mapping[str, object], duration: int | None, settings: Settings) -> int:
    for key in ("StartUTC", "StartLocal"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return _time_ns(value, settings.timezone)
    logged = record.get("time")  # when the entry was written: the request's end
    if isinstance(logged, str) and logged:
        return _time_ns(logged, settings.timezone) - (duration or 0)
    raise BadLine("no start time: none of StartUTC, StartLocal and time")


def _time_ns(text: str, offset_minutes: int) -> int:
    """``iso_time_ns``, its whole seconds remembered: each start has nanoseconds of its own, but
    requests share their second by the hundreds."""
    fraction = _FRACTION.match(text, 19)
    try:
        if fraction is None:
            return _whole_seconds_ns(text, offset_minutes)
        whole = text[:19] + text[fraction.end() :]
        return _whole_seconds_ns(whole, offset_minutes) + int(fraction[1].ljust(9, "0"))
    except BadLine:
        return iso_time_ns(text, offset_minutes)  # raises, naming the time as logged


def _first_address(client_host: str | None) -> str | None:
    """The client of a ``ClientHost``: the address, or an X-Forwarded-For list's first one
    (without a port either way); None when that is no address."""
    if client_host is None:
        return None
    first = client_host.split(",", 1)[0].strip()
    return without_port(first) if _ADDRESS.fullmatch(first) else None


def _header(record: Mapping[str, object], consumer: str) -> dict[str, str] | None:
    """The request header ``consumer="header:NAME"`` names, as Traefik captured it."""
    if not consumer.startswith("header:"):
        return None
    name = consumer[7:].lower()
    canonical = "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
    value = record.get("request_" + canonical)
    return {name: value} if isinstance(value, str) else None


def _trace_id(record: Mapping[str, object]) -> str | None:
    for key in ("trace_id", "TraceId", *_TRACE_HEADERS, "request_X-Request-Id"):
        value = record.get(key)
        if isinstance(value, str) and (trace_id := trace_id_of(value)) is not None:
            return trace_id
    return None


def _service_url(value: object) -> str | None:
    """A service URL without user info or query: from a string, or from the fields of the Go
    ``url.URL`` that older Traefik versions serialised (``Scheme``, ``Host``, ``Path``)."""
    if isinstance(value, dict):
        scheme, host, path = value.get("Scheme"), value.get("Host"), value.get("Path")
        if not isinstance(host, str) or not host:
            return None
        path = path if isinstance(path, str) else ""
        return f"{scheme}://{host}{path}" if isinstance(scheme, str) and scheme else host + path
    if not isinstance(value, str) or value in ("", "-"):
        return None
    scheme, separator, rest = value.partition("://")
    if not separator:
        return _without_query(value)
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path.split('?', 1)[0]}"


def _status(value: object) -> int | None:
    """A status sent to the client; None when missing, ``-`` or 0 (none was sent)."""
    if value is None or value == "-":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999:
        return value or None
    raise BadLine(f"status {value!r} is not a number")


def _count(value: object, what: str) -> int | None:
    if value is None or value == "-":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LARGEST:
        return value
    raise BadLine(f"{what} {value!r} is not a number")


def _nanoseconds(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LARGEST:
        return value
    if isinstance(value, float) and math.isfinite(value) and 0 <= value < _LARGEST:
        return round(value)
    raise BadLine(f"{what} {value!r} is not a duration in nanoseconds")


def _text(value: object, what: str) -> str | None:
    if value is None or value == "" or value == "-":
        return None
    if isinstance(value, str):
        return value
    raise BadLine(f"{what} {value!r} is not text")


def _without_query(url: object) -> str | None:
    return url.split("?", 1)[0] if isinstance(url, str) and url else None


TRAEFIK_JSON = LineFormat("traefik_json", parse_json)
TRAEFIK_CLF = LineFormat("traefik_clf", parse_clf)
FORMATS = [TRAEFIK_JSON, TRAEFIK_CLF]


def collector() -> AccessLogCollector:
    """The Traefik access-log collector (the ``clew.collectors`` entry point)."""
    return AccessLogCollector(
        "traefik", "Traefik access logs: JSON and Traefik's Common Log Format", FORMATS
    )
