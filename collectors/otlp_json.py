"""OTLP/JSON trace files: ``ExportTraceServiceRequest`` documents.

Two layouts are read: one (possibly pretty-printed) document per file, and the OpenTelemetry
Collector file exporter's one request per line. The OTLP/JSON rules apply: ids are hex (either
case), 64-bit integers may be strings or numbers, enums may be integers or their names, ``status``
and ``parentSpanId`` may be empty, unknown fields are ignored. Attribute names of both
semantic-convention generations are normalised to the current ones. One exporter in both a traces
and a metrics pipeline writes both signals to one file (the Collector shares it): a line that is
a request of metrics is read as ``collectors.otlp_metrics`` reads it.

Each request is first read by the compiled reader ``collectors._otlp_native`` (when
``collectors.native`` has it), straight from the text into records, then by msgspec into typed
structs (``_Request`` and below), which is several times faster than building dicts. These fast
paths only accept the regular shapes and return nothing when anything is unusual (a value of an
unexpected type, an unknown field, a span that would be quarantined); the request is then
decoded again with orjson and read by the dict-based ``records_of_request``, which owns every
quarantine reason and position. All paths share the code that turns a validated span into
records (the compiled one its twin), so their output is the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec
import orjson
from msgspec import UNSET, UnsetType
from msgspec.structs import astuple

from clew.records import (
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
from collectors import CollectorError, Source, lines, native, otlp_metrics
from collectors.lines import split_lines
from collectors.semconv import (
    build_span,
    json_text,
    resource_from,
    text_or_none,
)

_KIND_NAMES = {f"SPAN_KIND_{kind.name}": kind.value for kind in SpanKind}
_STATUS_NAMES = {f"STATUS_CODE_{code.name}": code.value for code in StatusCode}

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


def _hex_id(value: Any, length: int) -> str | None:
    """A lowercase hex id of ``length`` digits, or None when ``value`` is not one (or all zeros)."""
    if type(value) is not str or len(value) != length:
        return None
    if not (_HEX_32 if length == 32 else _HEX_16).fullmatch(value) or value in _ZERO_IDS:
        return None
    return value.lower()


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


def resource_of(resource: Any) -> Resource:
    """The service a resource describes; ``unknown_service`` when it has no ``service.name``."""
    attributes = key_values(resource.get("attributes")) if isinstance(resource, dict) else {}
    return resource_from(attributes)


class _BadSpan(ValueError):
    pass


def span_of(raw: Any, service: str) -> tuple[Span, list[SpanLink]]:
    """One ``Span`` (and its links) from an OTLP/JSON span object; ``_BadSpan`` if unusable."""
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

    links = [
        SpanLink(trace_id, span_id, linked_trace, linked_span)
        for link in _list(raw.get("links"))
        if isinstance(link, dict)
        and (linked_trace := _hex_id(link.get("traceId"), 32))
        and (linked_span := _hex_id(link.get("spanId"), 16))
    ]
    name = raw.get("name")
    span = build_span(
        trace_id,
        span_id,
        parent_span_id,
        service,
        name if isinstance(name, str) else "",
        kind,
        start,
        duration,
        code,
        text_or_none(message),
        key_values(raw.get("attributes")),
    )
    return span, links


def records_of_request(request: Any, where: str) -> Iterator[Record]:
    """The records of one ``ExportTraceServiceRequest``; ``where`` prefixes quarantine positions."""
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans"), list):
        raise _BadSpan("not an OTLP ExportTraceServiceRequest: no resourceSpans list")
    for r, resource_spans in enumerate(request["resourceSpans"]):
        at = f"{where}resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            reason = "resourceSpans entry is not an object"
            yield Quarantined(at, reason, excerpt(repr(resource_spans)))
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
                    yield Quarantined(position, str(bad), excerpt(json_text(raw)))
                    continue
                yield span
                yield from links


# --- The fast path: typed decoding ---------------------------------------------------------------
#
# Every struct forbids unknown fields and declares every OTLP field, even the ones not used. That
# is deliberate: msgspec skips an unknown field without the checks orjson applies (UTF-8, numbers
# too large for a double, nesting depth), so skipping could accept a line that orjson rejects. A
# line with an unknown field (or any unexpected type) takes the dict path instead.


class _Struct(msgspec.Struct, forbid_unknown_fields=True, gc=False, rename="camel"):
    pass


class _KeyValue(_Struct):
    key: str
    value: _AnyValue | None = None


class _ArrayValue(_Struct):
    values: list[_AnyValue] | None = None


class _KeyValueList(_Struct):
    values: list[_KeyValue] | None = None


class _AnyValue(_Struct):
    """At most one field is set; ``UNSET`` tells an absent field from a JSON null."""

    string_value: str | UnsetType = UNSET
    int_value: int | str | UnsetType = UNSET
    bool_value: bool | UnsetType = UNSET
    double_value: int | float | UnsetType = UNSET
    array_value: _ArrayValue | UnsetType = UNSET
    kvlist_value: _KeyValueList | UnsetType = UNSET
    bytes_value: str | UnsetType = UNSET


class _Status(_Struct):
    code: int | str = 0
    message: str | None = None


class _Event(_Struct):
    time_unix_nano: int | str | None = None
    name: str | None = None
    attributes: list[_KeyValue] | None = None
    dropped_attributes_count: int | None = None


class _Link(_Struct):
    trace_id: str | None = None
    span_id: str | None = None
    trace_state: str | None = None
    attributes: list[_KeyValue] | None = None
    dropped_attributes_count: int | None = None
    flags: int | None = None


class _SpanStruct(_Struct):
    trace_id: str = ""
    span_id: str = ""
    trace_state: str | None = None
    parent_span_id: str | None = None
    flags: int | None = None
    name: str | None = None
    kind: int | str = 0
    start_time_unix_nano: int | str | None = None
    end_time_unix_nano: int | str | None = None
    attributes: list[_KeyValue] | None = None
    dropped_attributes_count: int | None = None
    events: list[_Event] | None = None
    dropped_events_count: int | None = None
    links: list[_Link] | None = None
    dropped_links_count: int | None = None
    status: _Status | None = None


class _Scope(_Struct):
    name: str | None = None
    version: str | None = None
    attributes: list[_KeyValue] | None = None
    dropped_attributes_count: int | None = None


class _ScopeSpans(_Struct):
    spans: list[_SpanStruct]
    scope: _Scope | None = None
    schema_url: str | None = None


class _ResourceStruct(_Struct):
    attributes: list[_KeyValue] | None = None
    dropped_attributes_count: int | None = None


class _ResourceSpans(_Struct):
    resource: _ResourceStruct | None = None
    scope_spans: list[_ScopeSpans] | None = None
    schema_url: str | None = None


class _Request(_Struct):
    resource_spans: list[_ResourceSpans]


_decode_request = msgspec.json.Decoder(_Request).decode


class _Fallback(Exception):
    """The typed path cannot vouch for this request: read it with the dict path instead."""


#: orjson reads integers outside this range as floats (msgspec keeps them exact).
_INT_MIN, _INT_LIMIT = -(1 << 63), 1 << 64
#: Deeper ``arrayValue``/``kvlistValue`` nesting is left to the dict path, which owns orjson's
#: depth limit (1024 JSON levels; each AnyValue level is at least three).
_MAX_VALUE_DEPTH = 100
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _typed_value(value: _AnyValue, depth: int) -> Any:
    """``any_value`` for a typed ``AnyValue``; ``_Fallback`` where the result could differ."""
    fields = astuple(value)  # one C call, cheaper than reading the seven fields one by one
    unset = fields.count(UNSET)
    if unset == 7:
        return None
    if unset != 6:
        raise _Fallback  # several fields: the dict path takes the first in the file's order
    string, integer, boolean, double, array, kvlist, raw = fields
    if string is not UNSET:
        return string
    if integer is not UNSET:
        if type(integer) is str:
            try:
                return int(integer)
            except ValueError:
                return integer
        if not _INT_MIN <= integer < _INT_LIMIT:
            raise _Fallback
        return integer
    if double is not UNSET:
        if type(double) is int and not _INT_MIN <= double < _INT_LIMIT:
            raise _Fallback
        return float(double)
    if boolean is not UNSET:
        return boolean
    if raw is not UNSET:
        return raw
    if depth >= _MAX_VALUE_DEPTH:
        raise _Fallback
    if array is not UNSET:
        return [_typed_value(v, depth + 1) for v in array.values or ()]
    return _typed_key_values(kvlist.values, depth + 1)


def _typed_key_values(items: list[_KeyValue] | None, depth: int = 0) -> dict[str, Any]:
    """``key_values`` for typed ``KeyValue`` items."""
    out: dict[str, Any] = {}
    if items:
        for kv in items:
            value = kv.value
            if value is None:
                out[kv.key] = None
            elif (fields := astuple(value)).count(UNSET) == 6 and fields[0] is not UNSET:
                out[kv.key] = fields[0]  # the common case, a string, inline
            else:
                out[kv.key] = _typed_value(value, depth)
    return out


def _typed_id(value: str | None, length: int) -> str:
    """``_hex_id`` for the typed path: ``_Fallback`` instead of None (the span is quarantined)."""
    if value is None or len(value) != length or value.strip(_HEX_DIGITS) or value in _ZERO_IDS:
        raise _Fallback
    return value.lower()


def _typed_time(value: int | str | None) -> int | None:
    if type(value) is int:
        if not _INT_MIN <= value < _INT_LIMIT:
            raise _Fallback  # orjson would have read a float: not a time
        return value
    return _int(value)


def _typed_span(raw: _SpanStruct, service: str, out: list[Record]) -> None:
    """Append the span (and links) to ``out`` as ``span_of`` would; ``_Fallback`` if it is bad.

    ``_typed_id``, ``_typed_time`` and ``_typed_key_values`` are written out inline for the
    common cases: this runs once per span, and the calls cost more than the checks.
    """
    trace_id, span_id, parent = raw.trace_id, raw.span_id, raw.parent_span_id
    if len(trace_id) != 32 or trace_id.strip(_HEX_DIGITS) or trace_id in _ZERO_IDS:
        raise _Fallback
    if len(span_id) != 16 or span_id.strip(_HEX_DIGITS) or span_id in _ZERO_IDS:
        raise _Fallback
    if parent:
        if len(parent) != 16 or parent.strip(_HEX_DIGITS) or parent in _ZERO_IDS:
            raise _Fallback
        parent_span_id = parent.lower()
    else:
        parent_span_id = None
    start = raw.start_time_unix_nano
    if type(start) is str:
        try:
            start = int(start)
        except ValueError:
            raise _Fallback from None
    else:
        start = _typed_time(start)
    if start is None or start <= 0:
        raise _Fallback
    end = raw.end_time_unix_nano
    if type(end) is str:
        try:
            end = int(end)
        except ValueError:
            end = None
    else:
        end = _typed_time(end)
    kind = raw.kind
    if type(kind) is str:
        kind = _KIND_NAMES.get(kind)
    if kind is None or not 0 <= kind <= 5:
        raise _Fallback
    status = raw.status
    if status is None:
        code, message = 0, None
    else:
        code = status.code
        if type(code) is str:
            code = _STATUS_NAMES.get(code)
        if code is None or not 0 <= code <= 2:
            raise _Fallback
        message = status.message or None
    attributes: dict[str, Any] = {}
    if raw.attributes:
        for kv in raw.attributes:
            value = kv.value
            if value is None:
                attributes[kv.key] = None
            elif (fields := astuple(value)).count(UNSET) == 6 and fields[0] is not UNSET:
                attributes[kv.key] = fields[0]  # the common case, a string
            elif type(integer := fields[1]) is str and fields.count(UNSET) == 6:
                try:  # the next most common: an integer, as a string (``_typed_value``'s rule)
                    attributes[kv.key] = int(integer)
                except ValueError:
                    attributes[kv.key] = integer
            else:
                attributes[kv.key] = _typed_value(value, 0)
    name = raw.name
    trace_id, span_id = trace_id.lower(), span_id.lower()
    out.append(
        build_span(
            trace_id,
            span_id,
            parent_span_id,
            service,
            name if name is not None else "",
            kind,
            start,
            end - start if end is not None and end >= start else 0,
            code,
            message,
            attributes,
        )
    )
    if raw.links:
        for link in raw.links:
            linked_trace = _hex_id(link.trace_id, 32)
            linked_span = _hex_id(link.span_id, 16)
            if linked_trace and linked_span:
                out.append(SpanLink(trace_id, span_id, linked_trace, linked_span))


def typed_records(data: bytes) -> list[Record] | None:
    """The records of one request by the typed path, or None when the dict path must read it."""
    try:
        request = _decode_request(data)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return None  # not the regular shape (or not JSON): the dict path says why
    out: list[Record] = []
    try:
        for resource_spans in request.resource_spans:
            resource = resource_spans.resource
            resource_record = resource_from(
                _typed_key_values(resource.attributes) if resource is not None else {}
            )
            out.append(resource_record)
            service = resource_record.service
            for scope_spans in resource_spans.scope_spans or ():
                for raw in scope_spans.spans:
                    _typed_span(raw, service, out)
    except _Fallback:
        return None
    return out


#: The compiled reader that ``fast_records`` tries first; None when it is not built or
#: ``CLEW_NO_NATIVE`` is set.
_native = native.reader


def fast_records(data: bytes) -> list[Record] | None:
    """The records of one request by the compiled reader, else by the typed path; None when the
    dict path must read it."""
    if _native is not None and (records := _native.json_records(data)) is not None:
        return records
    return typed_records(data)


class OtlpJsonCollector:
    """OTLP/JSON ``ExportTraceServiceRequest`` files: one document, or one request per line."""

    name = "otlp_json"
    description = "OTLP/JSON trace exports (a document per file, or the Collector's one per line)"
    #: Reads a file still being written (``Source.growing``) a line at a time, as the
    #: Collector's file exporter writes it: a half-written last line waits for the next read.
    reads_growing = True

    def detect(self, head: bytes) -> bool:
        if head.lstrip()[:1] != b"{":
            return False
        spans, metrics = head.find(b'"resourceSpans"'), head.find(b'"resourceMetrics"')
        # A file both signals are written to is whichever comes first (otlp_metrics_json
        # reads it too).
        return spans >= 0 and (metrics < 0 or spans < metrics)

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.path.open("rb")
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            first_line = handle.readline()
            second_line = handle.readline()
            handle.seek(0)
            if not second_line.strip() or looks_like_one_request(first_line):
                yield from self._lines(handle, source.offset, source.growing)
            else:
                # A pretty-printed document is one unit: a grown file is read again from the
                # start and the spans already stored are skipped by their unique key.
                yield from self._document(handle.read(), source.growing and source.settling())

    def _document(self, data: bytes, growing: bool = False) -> Iterator[Record]:
        fast = fast_records(data)
        if fast is not None:
            yield from fast
            yield Checkpoint(len(data))
            return
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            if growing:
                return  # changed a moment ago, maybe half written: read again, whole, later
            position = f"line {error.lineno} column {error.colno}"
            yield Quarantined(position, f"invalid JSON: {error.msg}", excerpt(data[:200]))
        else:
            yield from _read(request, "document", data)
        yield Checkpoint(len(data))

    def _lines(self, handle: BinaryIO, offset: int, growing: bool = False) -> Iterator[Record]:
        # Count the lines before the checkpoint so positions stay true on a resumed read.
        line_number = lines.lines_before(handle, offset)
        position = offset
        for line in split_lines(handle):
            if growing and line[-1:] != b"\n":
                return  # still being written: read with the rest of it next time
            line_number += 1
            position += len(line)
            # A blank line is no request either: the compiled reader declines it as cheaply.
            if (fast := fast_records(line)) is not None:
                yield from fast
            elif not (line := bytes(line)).isspace():
                try:
                    request = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    reason = f"invalid JSON at column {error.colno}: {error.msg}"
                    yield Quarantined(f"line {line_number}", reason, excerpt(line))
                else:
                    yield from _read(request, f"line {line_number}", line)
            yield Checkpoint(position)


def _read(request: Any, where: str, text: bytes) -> Iterator[Record]:
    """A decoded request the fast paths declined: of spans, or of metrics (``where`` is
    ``document`` for a file's one request)."""
    if type(request) is dict and "resourceMetrics" in request and "resourceSpans" not in request:
        yield from otlp_metrics.records_of_document_at(request, where, text)
    else:
        yield from _guarded(request, "" if where == "document" else f"{where}: ")


def read_request(request: Any, where: str) -> Iterator[Record]:
    """The records of a decoded ``ExportTraceServiceRequest`` read at ``where`` in a file
    (``line 12``; for ``otlp_metrics_json``, which meets them in a file both signals are written
    to); an unusable one quarantined there."""
    yield from _guarded(request, f"{where}: ")


def _guarded(request: Any, where: str) -> Iterator[Record]:
    try:
        yield from records_of_request(request, where)
    except _BadSpan as bad:
        yield Quarantined(where.rstrip(": ") or "document", str(bad), excerpt(json_text(request)))


def looks_like_one_request(line: bytes) -> bool:
    """A first line that holds a whole object: the one-request-per-line layout."""
    line = line.strip()
    return line.startswith(b"{") and line.endswith(b"}")


def records_of_body(data: bytes) -> list[Record]:
    """The records of one OTLP/HTTP JSON request body (``POST /v1/traces``), unusable spans as
    ``Quarantined``; ``CollectorError`` with the reason when it is no ``ExportTraceServiceRequest``.
    """
    fast = fast_records(data)
    if fast is not None:
        return fast
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}"
        raise CollectorError(f"invalid JSON at {position}: {error.msg}") from None
    if isinstance(request, dict) and "resourceSpans" not in request:
        return []  # proto3 JSON leaves out empty fields: an export with no spans
    try:
        return list(records_of_request(request, ""))
    except _BadSpan as bad:
        raise CollectorError(str(bad)) from None
