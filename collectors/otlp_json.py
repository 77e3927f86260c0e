"""OTLP/JSON trace files: ``ExportTraceServiceRequest`` documents.

Two layouts are read: one (possibly pretty-printed) document per file, and the OpenTelemetry
Collector file exporter's one request per line. The OTLP/JSON rules apply: ids are hex (either
case), 64-bit integers may be strings or numbers, enums may be integers or their names, ``status``
and ``parentSpanId`` may be empty, unknown fields are ignored. Attribute names of both
semantic-convention generations are normalised to the current ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from clew.records import (
    UNKNOWN_SERVICE,
    Checkpoint,
    Quarantined,
    Record,
    Resource,
    Span,
    SpanKind,
    SpanLink,
    StatusCode,
    excerpt,
)
from collectors import CollectorError, Source

_KIND_NAMES = {f"SPAN_KIND_{kind.name}": kind.value for kind in SpanKind}
_STATUS_NAMES = {f"STATUS_CODE_{code.name}": code.value for code in StatusCode}

#: Older semantic-convention names and the current names they map to, whatever the span kind.
LEGACY_NAMES = {
    "http.method": "http.request.method",
    "http.status_code": "http.response.status_code",
    "http.url": "url.full",
    "http.scheme": "url.scheme",
    "http.user_agent": "user_agent.original",
    "http.request_content_length": "http.request.body.size",
    "http.response_content_length": "http.response.body.size",
    "net.sock.peer.addr": "network.peer.address",
    "net.sock.peer.port": "network.peer.port",
    "net.peer.ip": "network.peer.address",
    "net.protocol.name": "network.protocol.name",
    "net.protocol.version": "network.protocol.version",
    "net.transport": "network.transport",
    "db.system": "db.system.name",
    "db.name": "db.namespace",
    "db.operation": "db.operation.name",
    "db.statement": "db.query.text",
    "peer.service": "service.peer.name",
    "messaging.destination": "messaging.destination.name",
    "messaging.operation": "messaging.operation.type",
}
#: ``net.peer.*`` is the remote side: the server for a client span, the client for a server span.
_LEGACY_CLIENT_SIDE = {"net.peer.name": "server.address", "net.peer.port": "server.port"}
_LEGACY_SERVER_SIDE = {
    "net.peer.name": "client.address",
    "net.peer.port": "client.port",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
}
_LEGACY_KEYS = frozenset(LEGACY_NAMES) | frozenset(_LEGACY_SERVER_SIDE) | {"http.target"}
_CALLER_KINDS = (SpanKind.CLIENT, SpanKind.PRODUCER)
_HEX_32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX_16 = re.compile(r"[0-9a-fA-F]{16}")
_ZERO_IDS = frozenset(("0" * 32, "0" * 16))


def any_value(value: Any) -> Any:
    """Decode an OTLP ``AnyValue`` object to a plain JSON value."""
    if not value or not isinstance(value, dict):
        return None
    for key, item in value.items():
        if key == "stringValue":
            return item
        if key == "intValue":
            try:
                return int(item)
            except (TypeError, ValueError):
                return item
        if key == "boolValue":
            return item if isinstance(item, bool) else str(item).lower() == "true"
        if key == "doubleValue":
            try:
                return float(item)
            except (TypeError, ValueError):
                return item
        if key == "arrayValue":
            values = item.get("values") if isinstance(item, dict) else None
            return [any_value(v) for v in values] if isinstance(values, list) else []
        if key == "kvlistValue":
            return key_values(item.get("values") if isinstance(item, dict) else None)
        if key == "bytesValue":
            return item  # base64, kept as the file has it
    return None


def key_values(items: Any) -> dict[str, Any]:
    """Decode a list of OTLP ``KeyValue`` objects."""
    out: dict[str, Any] = {}
    if type(items) is not list:
        return out
    for kv in items:
        if type(kv) is dict:
            key = kv.get("key")
            if type(key) is str:
                value = kv.get("value")
                # Most attributes are strings: take them without the general decoder.
                if type(value) is dict and len(value) == 1 and "stringValue" in value:
                    out[key] = value["stringValue"]
                else:
                    out[key] = any_value(value)
    return out


def normalise(attributes: dict[str, Any], kind: int) -> dict[str, Any]:
    """Rename older semantic-convention attributes to the current names (current names win)."""
    if attributes.keys().isdisjoint(_LEGACY_KEYS):
        return attributes
    for old, new in LEGACY_NAMES.items():
        if old in attributes:
            value = attributes.pop(old)
            attributes.setdefault(new, value)
    side = _LEGACY_SERVER_SIDE if kind == SpanKind.SERVER else _LEGACY_CLIENT_SIDE
    for old, new in side.items():
        if old in attributes:
            value = attributes.pop(old)
            attributes.setdefault(new, value)
    target = attributes.pop("http.target", None)
    if isinstance(target, str) and "url.path" not in attributes:
        attributes["url.path"] = target.split("?", 1)[0]
    return attributes


def _hex_id(value: Any, length: int) -> str | None:
    """A lowercase hex id of ``length`` digits, or None when ``value`` is not one (or all zeros)."""
    if type(value) is not str or len(value) != length:
        return None
    if not (_HEX_32 if length == 32 else _HEX_16).fullmatch(value) or value in _ZERO_IDS:
        return None
    return value.lower()


def _json(value: Any) -> str:
    """JSON text of decoded input; integers beyond 64 bits fall back to the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _enum(value: Any, names: dict[str, int]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return names.get(value)
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _status_code(value: Any) -> int | None:
    code = _int(value)
    return code if code is not None and 100 <= code <= 599 else None


def resource_of(resource: Any) -> Resource:
    """The service a resource describes; ``unknown_service`` when it has no ``service.name``."""
    attributes = key_values(resource.get("attributes")) if isinstance(resource, dict) else {}
    name = attributes.get("service.name")
    return Resource(
        service=name if isinstance(name, str) and name else UNKNOWN_SERVICE,
        namespace=_str(attributes.get("service.namespace")),
        environment=_str(
            attributes.get("deployment.environment.name", attributes.get("deployment.environment"))
        ),
        version=_str(attributes.get("service.version")),
    )


class _BadSpan(ValueError):
    pass


def span_of(raw: Any, service: str) -> tuple[Span, list[SpanLink]]:
    """Build one ``Span`` (and its links) from an OTLP/JSON span object; ``_BadSpan`` if unusable."""
    if not isinstance(raw, dict):
        raise _BadSpan("span is not a JSON object")
    trace_id = _hex_id(raw.get("traceId"), 32)
    if trace_id is None:
        raise _BadSpan(f"traceId {raw.get('traceId')!r} is not 32 hex digits (nor non-zero)")
    span_id = _hex_id(raw.get("spanId"), 16)
    if span_id is None:
        raise _BadSpan(f"spanId {raw.get('spanId')!r} is not 16 hex digits (nor non-zero)")
    parent = raw.get("parentSpanId")
    parent_span_id = None
    if parent:
        parent_span_id = _hex_id(parent, 16)
        if parent_span_id is None:
            raise _BadSpan(f"parentSpanId {parent!r} is not 16 hex digits")
    start = _int(raw.get("startTimeUnixNano"))
    if start is None or start <= 0:
        raise _BadSpan(f"startTimeUnixNano {raw.get('startTimeUnixNano')!r} is not a time")
    end = _int(raw.get("endTimeUnixNano"))
    duration = end - start if end is not None and end >= start else 0
    kind = _enum(raw.get("kind", 0), _KIND_NAMES)
    if kind is None or not 0 <= kind <= 5:
        raise _BadSpan(f"kind {raw.get('kind')!r} is not a span kind")
    status = raw.get("status") or {}
    code = _enum(status.get("code", 0), _STATUS_NAMES) if isinstance(status, dict) else None
    if code is None or not 0 <= code <= 2:
        raise _BadSpan(f"status {status!r} is not a span status")
    message = status.get("message") or None

    attrs = normalise(key_values(raw.get("attributes")), kind)
    pop = attrs.pop
    method, route, http_status, url_path, server_address, peer_service, db_system = (
        pop("http.request.method", None),
        pop("http.route", None),
        _status_code(pop("http.response.status_code", None)),
        pop("url.path", None),
        pop("server.address", None),
        pop("service.peer.name", None),
        pop("db.system.name", None),
    )
    messaging_system = pop("messaging.system", None)
    destination = pop("messaging.destination.name", None)
    rpc_service, rpc_method = pop("rpc.service", None), pop("rpc.method", None)
    if server_address is None and kind in _CALLER_KINDS and "network.peer.address" in attrs:
        # For a caller the network peer is the server: the last name for it before the system.
        address, port = attrs["network.peer.address"], attrs.get("network.peer.port")
        server_address = f"{address}:{port}" if port is not None else address
    links = [
        SpanLink(trace_id, span_id, linked_trace, linked_span)
        for link in _list(raw.get("links"))
        if isinstance(link, dict)
        and (linked_trace := _hex_id(link.get("traceId"), 32))
        and (linked_span := _hex_id(link.get("spanId"), 16))
    ]
    name = raw.get("name")
    span = Span(
        trace_id,
        span_id,
        parent_span_id,
        service,
        name if isinstance(name, str) else "",
        kind,
        start,
        duration,
        code,
        _str(message),
        _str(method),
        _str(route),
        http_status,
        _str(url_path),
        _str(server_address),
        _str(peer_service),
        _str(db_system),
        _str(messaging_system),
        _str(destination),
        _str(rpc_service),
        _str(rpc_method),
        _json(attrs) if attrs else None,
    )
    return span, links


def records_of_request(request: Any, where: str) -> Iterator[Record]:
    """The records of one ``ExportTraceServiceRequest``; ``where`` prefixes quarantine positions."""
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans"), list):
        raise _BadSpan("not an OTLP ExportTraceServiceRequest: no resourceSpans list")
    for r, resource_spans in enumerate(request["resourceSpans"]):
        at = f"{where}resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            yield Quarantined(at, "resourceSpans entry is not an object", excerpt(repr(resource_spans)))
            continue
        resource = resource_of(resource_spans.get("resource"))
        yield resource
        for s, scope_spans in enumerate(_list(resource_spans.get("scopeSpans"))):
            spans = scope_spans.get("spans") if isinstance(scope_spans, dict) else None
            if not isinstance(spans, list):
                yield Quarantined(f"{at}.scopeSpans[{s}]", "scopeSpans has no spans list", "")
                continue
            for i, raw in enumerate(spans):
                try:
                    span, links = span_of(raw, resource.service)
                except _BadSpan as bad:
                    position = f"{at}.scopeSpans[{s}].spans[{i}]"
                    yield Quarantined(position, str(bad), excerpt(_json(raw)))
                    continue
                yield span
                yield from links


class OtlpJsonCollector:
    """OTLP/JSON ``ExportTraceServiceRequest`` files: one document, or one request per line."""

    name = "otlp_json"
    description = "OTLP/JSON trace exports (a document per file, or the Collector's one per line)"

    def detect(self, head: bytes) -> bool:
        return head.lstrip()[:1] == b"{" and b'"resourceSpans"' in head

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.path.open("rb")
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            first_line = handle.readline()
            second_line = handle.readline()
            handle.seek(0)
            if not second_line.strip() or _looks_like_one_request(first_line):
                yield from self._lines(handle, source.offset)
            else:
                # A pretty-printed document is one unit: a grown file is read again from the
                # start and the spans already stored are skipped by their unique key.
                yield from self._document(handle.read())

    def _document(self, data: bytes) -> Iterator[Record]:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            position = f"line {error.lineno} column {error.colno}"
            yield Quarantined(position, f"invalid JSON: {error.msg}", excerpt(data[:200]))
        else:
            yield from _guarded(request, "")
        yield Checkpoint(len(data))

    def _lines(self, handle: BinaryIO, offset: int) -> Iterator[Record]:
        line_number = 0
        if offset:
            # Count the lines before the checkpoint so positions stay true on a resumed read.
            remaining = offset
            while remaining > 0:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                line_number += chunk.count(b"\n")
                remaining -= len(chunk)
            handle.seek(offset)
        position = offset
        for line in handle:
            line_number += 1
            position += len(line)
            if line.strip():
                try:
                    request = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    reason = f"invalid JSON at column {error.colno}: {error.msg}"
                    yield Quarantined(f"line {line_number}", reason, excerpt(line))
                else:
                    yield from _guarded(request, f"line {line_number}: ")
            yield Checkpoint(position)


def _guarded(request: Any, where: str) -> Iterator[Record]:
    try:
        yield from records_of_request(request, where)
    except _BadSpan as bad:
        yield Quarantined(where.rstrip(": ") or "document", str(bad), excerpt(_json(request)))


def _looks_like_one_request(line: bytes) -> bool:
    """A first line that holds a whole object: the one-request-per-line layout."""
    line = line.strip()
    return line.startswith(b"{") and line.endswith(b"}")
