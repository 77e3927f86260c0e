"""Kong Gateway access logs: the JSON object its logging plugins write for each request.

``kong_json``: one JSON object a line, as the file-log plugin writes it (http-log, tcp-log,
udp-log and syslog send the same object; Kong docs, "Log format" of the logging plugins, Kong 1.x
to 3.8). A line is taken for this format when it is a JSON object naming ``started_at`` and
``latencies``; a line that names either but is no JSON (cut short, say) is quarantined with the
JSON parser's reason. The fields read:

- ``started_at``: when Kong began to handle the request, Unix milliseconds: the START
  (``start_ns``).
- ``latencies.request``: the whole request as Kong timed it, ms (``duration_ns``);
  ``latencies.proxy``: the upstream's part, ms (``upstream_duration_ns``; Kong logs -1 when no
  upstream was contacted, stored as None); ``latencies.kong`` (Kong's own time, plugins
  included) and ``latencies.receive`` (3.7 on) go to the attributes. Latencies may be fractional.
- ``request.method``; ``request.uri`` (the path, its query string dropped); the ``host`` request
  header, else the host of ``request.url``; ``request.size`` / ``response.size``: bytes received
  and sent, headers included (numbers, or text in Kong 1.x); ``response.status``.
- ``service.name``, else ``service.host`` for an unnamed service: the ``upstream``, unless Kong
  answered the request itself (no proxy latency, or ``source`` kong): then none.
- ``route``: None. Kong routes match by path prefixes or regexes (``route.paths``), not
  templates; the route's name (else its id) goes to the attributes.
- ``client_ip``: the ``client``, as Kong resolved it (its ``real_ip`` settings apply).
- The consumer's identity: ``consumer.username``, else ``consumer.custom_id``, else
  ``consumer.id``, else ``authenticated_entity.id`` (a credential with no consumer).
  ``header:NAME`` reads the logged request header of that name.
- ``trace_id``: from the ``traceparent``, ``x-b3-traceid`` or ``b3`` request header, or an
  ``x-request-id`` header when it is trace-shaped. ``request.id`` (3.5 on) is Kong's own id for
  the request, which Kong does not propagate as trace context: it goes to the attributes.
- ``attributes``: user agent, request id, route name, ``upstream_uri``, ``upstream_status`` (text;
  several comma-separated statuses after retries), ``source`` (3.6 on: who produced the response,
  ``upstream`` or ``kong``), Kong and receive latencies (ms), the balancer's tries as
  ``ip:port``, the workspace (name, else id), the TLS version, the service's protocol.

No header is kept but the user agent (Kong logs every request header, ``authorization`` and
``cookie`` included in some versions), nor the query string.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from clew.records import GatewayRequest
from collectors.access_logs import (
    MAX_MS,
    NS_PER_MS,
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    path_of,
    trace_id_of,
    version_header_of,
    whole_number,
)

_TRACE_HEADERS = ("traceparent", "x-b3-traceid", "b3", "x-request-id")


def parse(line: str, settings: Settings) -> GatewayRequest:
    """A line of Kong's logging plugins' JSON."""
    if line[:1] != "{":
        raise NotThisFormat
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        if '"started_at"' in line or '"latencies"' in line:
            raise BadLine(f"not JSON: {error}") from None
        raise NotThisFormat from None  # some other JSON, or too little of it to tell
    if "started_at" not in record or "latencies" not in record:
        raise NotThisFormat
    started_at = _milliseconds("started_at", record.get("started_at"))
    if started_at is None:
        raise BadLine("started_at is missing")
    request = _object(record, "request")
    response = _object(record, "response")
    latencies = _object(record, "latencies")
    service = _object(record, "service")
    route = _object(record, "route")
    headers = _object(request, "headers", "request.headers")
    client = _text(record, "client_ip")
    identity = _consumer_identity(record)
    captured = _header_values(headers) if settings.consumer.startswith("header:") else None
    upstream_duration = _milliseconds("latencies.proxy", latencies.get("proxy"), unknown=-1)
    # Kong names the route's service on requests it answers itself (a plugin's 401 or 429):
    # those never reached it (no upstream time, 3.6 on: ``source`` kong).
    answered_by_kong = upstream_duration is None or record.get("source") == "kong"
    return GatewayRequest(
        start_ns=started_at,
        gateway="kong",
        consumer=settings.consumer_of(client, identity, captured),
        client=settings.client(client),
        method=_text(request, "method"),
        host=_header(headers, "host") or _host_of(_text(request, "url")),
        path=path_of(_text(request, "uri")),
        route=None,
        status=_count("response.status", response.get("status")),
        duration_ns=_milliseconds("latencies.request", latencies.get("request")),
        upstream_duration_ns=upstream_duration,
        upstream=None if answered_by_kong else _text(service, "name") or _text(service, "host"),
        bytes_sent=_count("response.size", response.get("size")),
        bytes_received=_count("request.size", request.get("size")),
        trace_id=_trace_id(headers),
        # Values only kept as attributes are kept as logged (attributes_json drops null).
        attributes=attributes_json(
            {
                "user_agent": _header(headers, "user-agent"),
                "request_id": request.get("id"),
                "route_name": route.get("name") or route.get("id"),
                "upstream_uri": record.get("upstream_uri"),
                "upstream_status": record.get("upstream_status"),
                "source": record.get("source"),
                "kong_latency_ms": latencies.get("kong"),
                "receive_latency_ms": latencies.get("receive"),
                "tries": _tries(record.get("tries")),
                "workspace": record.get("workspace_name") or record.get("workspace"),
                "tls_version": _object(request, "tls", "request.tls").get("version"),
                "service_protocol": service.get("protocol"),
                "version_header": version_header_of(_header_values(headers)),
            }
        ),
    )


def _consumer_identity(record: Mapping[str, object]) -> str | None:
    consumer = _object(record, "consumer")
    return (
        _text(consumer, "username")
        or _text(consumer, "custom_id")
        or _text(consumer, "id")
        or _text(_object(record, "authenticated_entity"), "id")
    )


def _object(
    record: Mapping[str, object], key: str, name: str | None = None
) -> Mapping[str, object]:
    """The nested object under ``key`` (``name`` is its full name, for the reason); empty when
    absent."""
    value = record.get(key)
    if type(value) is dict:
        return value
    if value is None:
        return {}
    raise BadLine(f"{name or key} is not an object")


def _text(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    if type(value) is str:
        return value or None
    if value is None:
        return None
    if type(value) is int or type(value) is float:
        return str(value)
    raise BadLine(f"{key} {value!r} is not text")


def _count(name: str, value: object) -> int | None:
    """A whole, non-negative number; Kong 1.x logs sizes as text (``"46"``)."""
    return None if value is None else whole_number(name, value)


def _milliseconds(name: str, value: object, unknown: int | None = None) -> int | None:
    """Nanoseconds of a time or duration Kong logged in milliseconds (whole or fractional); None
    for ``unknown``."""
    if value is None or (unknown is not None and value == unknown):
        return None
    if (type(value) is int or type(value) is float) and 0 <= value <= MAX_MS:
        return round(value * NS_PER_MS)
    raise BadLine(f"{name} {value!r} is not a number of milliseconds")


def _header(headers: Mapping[str, object], name: str) -> str | None:
    """A request header as Kong logged it: text, or a list of texts for a repeated header."""
    value = headers.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _header_values(headers: Mapping[str, object]) -> dict[str, str]:
    values = {}
    for name in headers:
        value = _header(headers, name)
        if value is not None:
            values[name.lower()] = value
    return values


def _trace_id(headers: Mapping[str, object]) -> str | None:
    for name in _TRACE_HEADERS:
        if trace_id := trace_id_of(_header(headers, name)):
            return trace_id
    return None


def _host_of(url: str | None) -> str | None:
    """The host (and port) of an absolute URL."""
    if url is None or "://" not in url:
        return None
    authority = url.partition("://")[2]
    for mark in "/?#":
        authority = authority.partition(mark)[0]
    return authority.rpartition("@")[2] or None


def _tries(tries: object) -> list[str] | None:
    """The balancer's tries, ``ip:port`` each, in order: more than one means retries."""
    if tries is None:
        return None
    if not isinstance(tries, list):
        raise BadLine("tries is not a list")
    addresses = []
    for attempt in tries:
        if not isinstance(attempt, dict):
            raise BadLine("an entry of tries is not an object")
        ip, port = _text(attempt, "ip"), _text(attempt, "port")
        if ip is not None:
            address = f"[{ip}]" if ":" in ip else ip
            addresses.append(f"{address}:{port}" if port is not None else ip)
    return addresses or None


KONG_JSON = LineFormat("kong_json", parse)
FORMATS = [KONG_JSON]


def collector() -> AccessLogCollector:
    """Kong's logging plugins' JSON."""
    return AccessLogCollector(
        "kong",
        "Kong Gateway access logs: the JSON of the file-log (and http-log, tcp-log, ...) plugins",
        FORMATS,
    )
