"""Jaeger JSON trace files: what Jaeger's query API and UI export, one document per file.

Three layouts are read: the query API's ``{"data": [trace, ...]}``, a single trace object
(``traceID``, ``spans``, ``processes``), and a bare array of spans that carry their ``process``
inline (the anonymizer's output; an array of trace objects is read too). Times are microseconds;
ids are hex with leading zeros possibly stripped, and are padded to 32/16 digits. Ids that are not
hex at all (the Jaeger UI's fixtures use "trace-123", "span-1") become the first hex digits of
their SHA-256, so the trace still ingests and pairs; the original is kept as the ``jaeger.trace_id``
or ``jaeger.span_id`` attribute. An empty or all-zero id quarantines its span, and so does an id
that an earlier, different span of the document already has (the store keeps one span per id).

Tags are typed (string, bool, int64, float64, binary) but the types lie: a value is read as its
declared type when it can be ("true" in a bool, "9223372036854775222" in an int64), and kept as the
file has it otherwise. OpenTracing tag names are renamed to the current OpenTelemetry names here
(``peer.hostname``, ``peer.ipv4``, ``db.type``, ...); the OpenTelemetry ones are left to
``semconv``. The kind comes from the ``span.kind`` tag only, never from references. The status is
``otel.status_code`` when it says ERROR or OK, else ERROR when the OpenTracing ``error`` tag is
true. (The Collector's jaeger translator lets ``error=true`` win over ``otel.status_code``; a span
carrying both, contradicting each other, does not occur in practice.) An HTTP status is not turned
into a span status here.

The parent is the first CHILD_OF reference within the span's trace, else the first FOLLOWS_FROM
within it: that is Jaeger's own ``Span.ParentSpanID`` (jaeger-idl ``model/v1/span.go``), which the
OpenTelemetry Collector's jaeger translator (``pkg/translator/jaeger/jaegerproto_to_traces.go``)
uses for the OTLP parent. (The Jaeger UI's trace tree takes ``references[0]`` whatever its type or
trace.) Every other reference is a ``SpanLink``; the legacy ``parentSpanID`` field is the parent
when no reference gives one. ``logs``, ``warnings`` and ``flags`` are ignored, except that an
error span without a status description takes the message of its error log.

A document is one unit: a grown file is read again from byte 0 and the spans already stored are
skipped by their unique key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Iterator
from typing import Any

from clew.records import (
    UNKNOWN_SERVICE,
    Quarantined,
    Record,
    Resource,
    Span,
    SpanKind,
    SpanLink,
    StatusCode,
    excerpt,
)
from collectors import Source
from collectors.json_document import BOM, document_records
from collectors.semconv import build_span, json_text, normalise, resource_from, text_or_none

#: ``span.kind`` values and ``otel.status_code`` names, as the plain integers a ``Span`` holds.
_KINDS = {kind.name.lower(): kind.value for kind in SpanKind if kind != SpanKind.UNSPECIFIED}
_OTEL_STATUS = {"ERROR": StatusCode.ERROR.value, "OK": StatusCode.OK.value}

#: OpenTracing tag names and the current OpenTelemetry names they map to; the first wins a tie.
OPENTRACING_NAMES = {
    "peer.ipv4": "network.peer.address",
    "peer.ipv6": "network.peer.address",
    "peer.address": "network.peer.address",
    "peer.port": "network.peer.port",
    "db.type": "db.system.name",
    "db.instance": "db.namespace",
    "message_bus.destination": "messaging.destination.name",
}
#: ``peer.hostname`` is the remote side: the server for a caller, the client for a server span.
_PEER_HOSTNAME = "peer.hostname"
_OPENTRACING_KEYS = frozenset(OPENTRACING_NAMES) | {_PEER_HOSTNAME}
#: Log fields that carry an error's message (OpenTracing's, then OpenTelemetry's exception event).
_ERROR_LOG_FIELDS = ("message", "error.object", "exception.message")

_HEX = re.compile(r"[0-9a-fA-F]+")
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_DATA_WRAPPER = re.compile(rb'\s*\{\s*"data"\s*:')
#: Nanosecond times and durations must fit the store's signed 64-bit columns.
_NS_LIMIT = 1 << 63

_UNKNOWN_RESOURCE = Resource(UNKNOWN_SERVICE, None, None, None)


class _BadSpan(ValueError):
    pass


def jaeger_id(value: Any, digits: int) -> tuple[str, bool] | None:
    """``(id, derived)``: hex padded to ``digits``, or the SHA-256 digits of a non-hex id.

    None when ``value`` is not a string, is empty or is all zeros.
    """
    if type(value) is not str or not value.strip().strip("0"):
        return None
    if len(value) <= digits and _HEX.fullmatch(value):
        return value.lower().rjust(digits, "0"), False
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:digits], True


def _flag(value: Any) -> bool | None:
    """A boolean from a bool, "true"/"false" (any case) or 0/1; None when it is none of these."""
    if type(value) is bool:
        return value
    if type(value) is str:
        text = value.strip().lower()
        return True if text == "true" else False if text == "false" else None
    if type(value) is int and value in (0, 1):
        return bool(value)
    return None


def _integer(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str and _INTEGER.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            return None
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if type(value) not in (int, float, str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def tag_value(declared: Any, value: Any) -> Any:
    """A tag's value read as its declared type when it can be; as the file has it otherwise."""
    kind = declared.lower() if type(declared) is str else ""
    if kind == "string":
        if type(value) in (bool, int, float):
            return json_text(value)
        return value
    converted: Any = None
    if kind == "bool":
        converted = _flag(value)
    elif kind == "int64":
        converted = _integer(value)
    elif kind == "float64":
        converted = _float(value)
    return value if converted is None else converted  # binary (base64) and unknown types as is


def tags_of(items: Any) -> dict[str, Any]:
    """Decode a list of Jaeger ``{"key", "type", "value"}`` tags; a repeated key keeps the last."""
    out: dict[str, Any] = {}
    if type(items) is not list:
        return out
    for tag in items:
        if type(tag) is dict:
            key = tag.get("key")
            if type(key) is str:
                value = tag.get("value")
                if type(value) is str and tag.get("type") == "string":
                    out[key] = value  # the common case, without the general decoder
                else:
                    out[key] = tag_value(tag.get("type"), value)
    return out


def resource_of(process: Any) -> Resource:
    """The service a Jaeger process describes: its ``serviceName``, and its tags as attributes."""
    if not isinstance(process, dict):
        return _UNKNOWN_RESOURCE
    attributes = tags_of(process.get("tags"))
    name = process.get("serviceName")
    if isinstance(name, str) and name:
        attributes["service.name"] = name
    return resource_from(attributes)


def _ipv4(value: Any) -> Any:
    """An IPv4 address given as an integer (Jaeger's Java client, even signed) in dotted form."""
    if type(value) is int and -(1 << 31) <= value < (1 << 32):
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return value


def opentracing(attributes: dict[str, Any], kind: int) -> dict[str, Any]:
    """Rename OpenTracing tags to the current OpenTelemetry names (names already there win)."""
    if attributes.keys().isdisjoint(_OPENTRACING_KEYS):
        return attributes
    for old, new in OPENTRACING_NAMES.items():
        if old in attributes:
            value = attributes.pop(old)
            attributes.setdefault(new, _ipv4(value) if old == "peer.ipv4" else value)
    if _PEER_HOSTNAME in attributes:
        side = "client.address" if kind == SpanKind.SERVER else "server.address"
        attributes.setdefault(side, attributes.pop(_PEER_HOSTNAME))
    return attributes


def _micros_as_ns(value: Any) -> int | None:
    if type(value) is float:
        return round(value * 1000) if math.isfinite(value) else None
    micros = _integer(value)
    return None if micros is None else micros * 1000


def _status(attributes: dict[str, Any], logs: Any) -> tuple[int, str | None]:
    """The span status from ``otel.status_code`` or the ``error`` tag (both dropped once read)."""
    otel = attributes.pop("otel.status_code", None)
    description = attributes.pop("otel.status_description", None)
    error = _flag(attributes.get("error"))
    if error is not None:
        del attributes["error"]
    code = _OTEL_STATUS.get(otel.strip().upper()) if isinstance(otel, str) else None
    if code is None:
        code = StatusCode.ERROR.value if error else StatusCode.UNSET.value
    message = text_or_none(description) or None
    if message is None and code == StatusCode.ERROR:
        message = _error_log_message(logs)
    return code, message


def _error_log_message(logs: Any) -> str | None:
    """The message of a span's first error log (``event: error`` or an exception event)."""
    if type(logs) is not list:
        return None
    for log in logs:
        fields = tags_of(log.get("fields")) if type(log) is dict else {}
        if fields.get("event") in ("error", "exception") or "error.object" in fields:
            for key in _ERROR_LOG_FIELDS:
                if fields.get(key) not in (None, ""):
                    return text_or_none(fields[key])
    return None


def _references(
    raw: dict, trace_id: str, span_id: str, original_trace: Any
) -> tuple[str | None, list[SpanLink]]:
    """The parent span id and the links a span's references give (see the module docstring)."""
    refs: list[tuple[str, str, str]] = []
    references = raw.get("references")
    for ref in references if type(references) is list else ():
        if type(ref) is not dict:
            continue
        ref_span = jaeger_id(ref.get("spanID"), 16)
        ref_trace = jaeger_id(ref.get("traceID", original_trace), 32)
        if ref_span is not None and ref_trace is not None:
            ref_type = ref.get("refType")
            refs.append((str(ref_type).upper(), ref_trace[0], ref_span[0]))
    parent_at = None  # Jaeger's Span.ParentSpanID: the first CHILD_OF, else the first FOLLOWS_FROM
    for i, (kind, trace, _) in enumerate(refs):
        if trace == trace_id:
            if kind == "CHILD_OF":
                parent_at = i
                break
            if kind == "FOLLOWS_FROM" and parent_at is None:
                parent_at = i
    links = [
        SpanLink(trace_id, span_id, trace, linked)
        for i, (_, trace, linked) in enumerate(refs)
        if i != parent_at
    ]
    if parent_at is not None:
        return refs[parent_at][2], links
    legacy = jaeger_id(raw.get("parentSpanID"), 16)
    return (legacy[0] if legacy is not None else None), links


def span_of(raw: Any, service: str, trace_hint: Any = None) -> tuple[Span, list[SpanLink]]:
    """One ``Span`` (and its links) from a Jaeger JSON span object; ``_BadSpan`` if unusable.

    ``trace_hint`` is the enclosing trace's ``traceID``, for a span that lacks its own.
    """
    if not isinstance(raw, dict):
        raise _BadSpan("span is not a JSON object")
    original_trace = raw.get("traceID", trace_hint)
    trace = jaeger_id(original_trace, 32)
    if trace is None:
        raise _BadSpan(f"traceID {original_trace!r} is not an id (a non-empty, non-zero string)")
    span = jaeger_id(raw.get("spanID"), 16)
    if span is None:
        raise _BadSpan(f"spanID {raw.get('spanID')!r} is not an id (a non-empty, non-zero string)")
    start = _micros_as_ns(raw.get("startTime"))
    if start is None or not 0 < start < _NS_LIMIT:
        raise _BadSpan(f"startTime {raw.get('startTime')!r} is not a time in microseconds")
    duration = _micros_as_ns(raw.get("duration"))
    duration = duration if duration is not None and duration > 0 else 0
    if start + duration >= _NS_LIMIT:
        raise _BadSpan(f"duration {raw.get('duration')!r} is not a duration in microseconds")
    (trace_id, trace_derived), (span_id, span_derived) = trace, span
    parent_span_id, links = _references(raw, trace_id, span_id, original_trace)

    attributes = tags_of(raw.get("tags"))
    kind = _KINDS.get(str(attributes.pop("span.kind", "")).strip().lower(), 0)  # UNSPECIFIED
    code, message = _status(attributes, raw.get("logs"))
    if trace_derived:
        attributes["jaeger.trace_id"] = original_trace
    if span_derived:
        attributes["jaeger.span_id"] = raw["spanID"]
    # Older OpenTelemetry names first, so they win over the OpenTracing names of the same thing.
    attributes = opentracing(normalise(attributes, kind), kind)
    name = raw.get("operationName")
    built = build_span(
        trace_id,
        span_id,
        parent_span_id,
        service,
        name if isinstance(name, str) else "",
        kind,
        start,
        duration,
        code,
        message,
        attributes,
    )
    return built, links


#: The first span of each (trace id, span id) in a document, and where it was.
_Firsts = dict[tuple[str, str], tuple[str, Span]]


def _span_records(
    raw: Any,
    position: str,
    resources: dict[str, Resource],
    trace_hint: Any,
    seen: set[Resource],
    firsts: _Firsts,
) -> Iterator[Record]:
    """A span's records, its process's ``Resource`` first (once per document).

    A span whose ids an earlier, different span of the document already has is quarantined: the
    store keeps one span per id, and which of the two the children meant cannot be told. An exact
    repeat is yielded again, for the store to skip as a duplicate.
    """
    resource = _UNKNOWN_RESOURCE
    if isinstance(raw, dict):
        process = raw.get("process")
        if isinstance(process, dict):
            resource = resource_of(process)
        else:
            process_id = raw.get("processID")
            if isinstance(process_id, str):
                resource = resources.get(process_id, _UNKNOWN_RESOURCE)
    try:
        span, links = span_of(raw, resource.service, trace_hint)
    except _BadSpan as bad:
        yield Quarantined(position, str(bad), excerpt(json_text(raw)))
        return
    first = firsts.setdefault((span.trace_id, span.span_id), (position, span))
    if first[1] != span:
        reason = (
            f"spanID {raw.get('spanID')!r} is already used in this trace by a different span"
            f" at {first[0]}, which is kept"
        )
        yield Quarantined(position, reason, excerpt(json_text(raw)))
        return
    if resource not in seen:
        seen.add(resource)
        yield resource
    yield span
    yield from links


def _trace_records(
    trace: Any, where: str, seen: set[Resource], firsts: _Firsts
) -> Iterator[Record]:
    """The records of one trace object; ``where`` is its position ("" for a whole document)."""
    if not isinstance(trace, dict):
        yield Quarantined(where, "trace is not a JSON object", excerpt(json_text(trace)))
        return
    spans = trace.get("spans")
    if not isinstance(spans, list):
        position = where or "document"
        yield Quarantined(position, "trace has no spans list", excerpt(json_text(trace)))
        return
    processes = trace.get("processes")
    resources = (
        {key: resource_of(process) for key, process in processes.items()}
        if isinstance(processes, dict)
        else {}
    )
    prefix = f"{where}.spans" if where else "spans"
    trace_hint = trace.get("traceID")
    for i, raw in enumerate(spans):
        yield from _span_records(raw, f"{prefix}[{i}]", resources, trace_hint, seen, firsts)


def _is_trace(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("spans"), list) and "spanID" not in item


def records_of_document(document: Any) -> Iterator[Record]:
    """The records of one decoded Jaeger JSON document, in any of the three layouts."""
    seen: set[Resource] = set()
    firsts: _Firsts = {}
    if isinstance(document, list):
        for i, item in enumerate(document):
            if _is_trace(item):
                yield from _trace_records(item, f"[{i}]", seen, firsts)
            else:
                yield from _span_records(item, f"[{i}]", {}, None, seen, firsts)
    elif isinstance(document, dict) and "data" in document:
        errors = document.get("errors")
        for i, error in enumerate(errors if isinstance(errors, list) else ()):
            reason = f"the query API reported an error: {json_text(error)}"
            yield Quarantined(f"errors[{i}]", excerpt(reason), excerpt(json_text(error)))
        data = document["data"]
        if isinstance(data, list):
            for i, trace in enumerate(data):
                yield from _trace_records(trace, f"data[{i}]", seen, firsts)
        elif data is not None:
            yield Quarantined("data", "data is not a list of traces", excerpt(json_text(data)))
    elif isinstance(document, dict) and "spans" in document:
        yield from _trace_records(document, "", seen, firsts)
    else:
        reason = "not Jaeger JSON: no data list, trace object or span array"
        yield Quarantined("document", reason, excerpt(json_text(document)))


class JaegerJsonCollector:
    """Jaeger JSON trace files: the query API's ``data`` wrapper, one trace, or a span array."""

    name = "jaeger_json"
    description = "Jaeger JSON traces (query API / UI download, a single trace, or a span array)"

    def detect(self, head: bytes) -> bool:
        head = head.removeprefix(BOM)
        if head.lstrip()[:1] not in (b"{", b"[") or b'"traceID"' not in head:
            return False
        if b'"resourceSpans"' in head or b'"localEndpoint"' in head:
            return False  # OTLP/JSON, Zipkin v2
        return b'"spanID"' in head or _DATA_WRAPPER.match(head) is not None

    def collect(self, source: Source) -> Iterator[Record]:
        return document_records(source, records_of_document)
