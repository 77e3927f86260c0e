"""Zipkin v2 JSON trace files: a list of spans (``/api/v2/trace/{id}``) or of traces (``/traces``).

Zipkin's own rules are followed where it has them:

* Ids are lower-hex, possibly shorter with their leading zeros left out: they are padded, a 64-bit
  trace id to 32 digits. A parent id of all zeros means no parent; a span that names itself as its
  parent has none. A trace that mixes 64- and 128-bit ids of the same low half takes the 128-bit
  one (``Trace.merge``, "choose the longest trace ID").
* Fragments, one span reported as several objects, are merged as ``zipkin2.internal.Trace.merge``
  and zipkin-lens ``span-cleaner`` ``mergeV2ById`` do: spans of one id are sorted client first,
  shared last, then by local endpoint; neighbours with the same ``shared`` flag and local endpoints
  that do not contradict each other (service, IPs, port) merge. The first in that order wins for
  parent, kind, name, timestamp and duration (0 counts as absent, as in Zipkin), endpoints fill
  each other's gaps, tags are unioned (a later fragment's value wins), annotations are joined.
* A ``shared`` server span reuses its client's id (B3). ``shared`` on a CLIENT span is dropped;
  a SERVER span with a CLIENT span's id counts as shared even without the flag; a shared span
  with no parent and no client half in the data is a root, not a shared half (zipkin-lens).
  The store is unique on (trace id, span id), so a shared half gets a derived id, the first 16
  hex digits of sha256 over trace id, span id, "server" and its local endpoint (two servers may
  answer one client id: smartthings' two pusher instances), with the client's id as its parent
  and the original id kept in ``zipkin.shared_span_id``. Jaeger's ``span_id_deduper`` does the
  same with a counter instead of a hash. Spans whose parent is a shared id and whose local
  endpoint is that server half's are its children, as in ``SpanNode`` (zipkin-lens
  ``span-node.js``); a same-service match is the fallback when the endpoints are written
  differently and the client half runs elsewhere.
* A span still without a timestamp takes its earliest annotation's, else its shared peer's (as
  zipkin-lens ``span-row`` does), else its parent's, and is marked ``zipkin.timestamp_missing``;
  with none at all it is quarantined. A missing duration is 0 with ``zipkin.duration_missing``.

Tags become attributes, Zipkin, Brave and Envoy names mapped to the current OpenTelemetry ones
(``_TAG_NAMES``; ``normalise`` then renames the older OpenTelemetry names). Kafka tags imply
``messaging.system`` kafka, Cassandra tags ``db.system.name`` cassandra, a bare ``sql.query``
OpenTelemetry's ``other_sql``; a CLIENT span without a host tag takes ``server.address`` from its
URL. ``remoteEndpoint.serviceName`` is ``service.peer.name`` whatever the kind (as in the
OpenTelemetry Collector's receiver); the remote address is the caller (``client.*``) of a SERVER
span and ``network.peer.*`` otherwise (a CONSUMER's remote is its broker). The local address is
``network.local.*``, its port also ``server.port`` on a SERVER span. Annotations only serve as
timestamps; ``debug`` is ignored. Names are kept as written (Zipkin lowercases them). Kinds are
taken as given: a span without one stays UNSPECIFIED.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from clew.records import (
    UNKNOWN_SERVICE,
    Quarantined,
    Record,
    Span,
    SpanKind,
    StatusCode,
    excerpt,
)
from collectors import Source
from collectors.json_document import BOM, document_records
from collectors.semconv import build_span, json_text, resource_from

_HEX = frozenset("0123456789abcdef")
_KINDS = {
    "CLIENT": SpanKind.CLIENT,
    "SERVER": SpanKind.SERVER,
    "PRODUCER": SpanKind.PRODUCER,
    "CONSUMER": SpanKind.CONSUMER,
    "INTERNAL": SpanKind.INTERNAL,  # not Zipkin's, but unambiguous when an exporter writes it
}
_STATUS_NAMES = {"OK": StatusCode.OK, "ERROR": StatusCode.ERROR}

#: Zipkin/Brave/Envoy tag names and the current OpenTelemetry names they map to (current names win).
_TAG_NAMES = {
    "http.path": "url.path",
    "http.host": "server.address",
    "user_agent": "user_agent.original",
    "sql.query": "db.query.text",
    "cassandra.query": "db.query.text",
    "cassandra.keyspace": "db.namespace",
    "cassandra.consistency_level": "cassandra.consistency.level",
    "kafka.topic": "messaging.destination.name",
    "kafka.key": "messaging.kafka.message.key",
    "kafka.partition": "messaging.destination.partition.id",
}

#: (serviceName, ipv4, ipv6, port), each None when absent.
Endpoint = tuple[str | None, str | None, str | None, int | None]
_NO_ENDPOINT: Endpoint = (None, None, None, None)


class _BadSpan(ValueError):
    pass


class _Zspan:
    """One Zipkin span object, validated; after merging, the union of its fragments."""

    __slots__ = (
        "annotations",
        "duration",
        "id",
        "kind",
        "local",
        "name",
        "order",
        "parent_id",
        "position",
        "raw",
        "raw_kind",
        "remote",
        "shared",
        "stored_id",
        "tags",
        "timestamp",
        "trace_id",
    )

    def __init__(self, raw: dict, position: str, order: int) -> None:
        self.raw, self.position, self.order = raw, position, order
        self.stored_id = ""  # the id the store keys it by, set once its trace is merged
        self.trace_id = _trace_id(raw.get("traceId"))
        self.id = _span_id(raw.get("id"), "id")
        parent = raw.get("parentId")
        self.parent_id = _span_id(parent, "parentId", zero_is_none=True) if parent else None
        if self.parent_id == self.id:
            self.parent_id = None  # Zipkin undoes self-references
        self.raw_kind = raw.get("kind")
        kind = self.raw_kind.upper() if isinstance(self.raw_kind, str) else None
        self.kind = kind if kind in _KINDS else None
        # ``shared`` is for the server side: Zipkin drops it from a CLIENT span.
        self.shared = raw.get("shared") is True and self.kind != "CLIENT"
        name = raw.get("name")
        self.name = name if isinstance(name, str) and name else None
        self.timestamp = _micros(raw.get("timestamp"), "timestamp")
        self.duration = _micros(raw.get("duration"), "duration")
        self.local = _endpoint(raw.get("localEndpoint"))
        self.remote = _endpoint(raw.get("remoteEndpoint"))
        annotations = raw.get("annotations")
        self.annotations = [
            t
            for a in (annotations if isinstance(annotations, list) else ())
            if (t := _annotation_micros(a))
        ]
        tags = raw.get("tags")
        self.tags = dict(tags) if isinstance(tags, dict) else {}

    def absorb(self, other: _Zspan) -> None:
        """Merge a later fragment in, as Zipkin's ``Span.Builder.merge`` does."""
        self.parent_id = self.parent_id or other.parent_id
        if self.kind is None:
            self.kind, self.raw_kind = other.kind, other.raw_kind
        self.name = self.name or other.name
        self.timestamp = self.timestamp or other.timestamp
        self.duration = self.duration or other.duration
        self.local = _fill(self.local, other.local)
        self.remote = _fill(self.remote, other.remote)
        self.annotations += other.annotations
        self.tags.update(other.tags)
        if other.order < self.order:  # quarantine positions name the first in the file
            self.order, self.position, self.raw = other.order, other.position, other.raw


def _hex(value: Any, longest: int, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _BadSpan(f"{what} {value!r} is not a hex string")
    lowered = value.lower()
    if len(lowered) > longest or not _HEX.issuperset(lowered):
        raise _BadSpan(f"{what} {value!r} is not up to {longest} hex digits")
    return lowered


def _trace_id(value: Any) -> str:
    digits = _hex(value, 32, "traceId").rjust(32, "0")
    if digits == "0" * 32:
        raise _BadSpan("traceId is all zeros")
    return digits


def _span_id(value: Any, what: str, zero_is_none: bool = False) -> str | None:
    digits = _hex(value, 16, what).rjust(16, "0")
    if digits == "0" * 16:
        if zero_is_none:
            return None
        raise _BadSpan(f"{what} is all zeros")
    return digits


def _micros(value: Any, what: str) -> int:
    """Microseconds as Zipkin reads them: an integer; absent, zero or negative is 0 (unset)."""
    if value is None:
        return 0
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadSpan(f"{what} {value!r} is not a number of microseconds")
    return max(value, 0)


def _annotation_micros(annotation: Any) -> int:
    if not isinstance(annotation, dict):
        return 0
    try:
        return _micros(annotation.get("timestamp"), "annotation timestamp")
    except _BadSpan:
        return 0


def _endpoint(value: Any) -> Endpoint:
    if not isinstance(value, dict):
        return _NO_ENDPOINT
    service, ipv4, ipv6, port = (value.get(k) for k in ("serviceName", "ipv4", "ipv6", "port"))
    return (
        service if isinstance(service, str) and service else None,
        ipv4 if isinstance(ipv4, str) and ipv4 else None,
        ipv6 if isinstance(ipv6, str) and ipv6 else None,
        port if isinstance(port, int) and not isinstance(port, bool) and port > 0 else None,
    )


def _fill(mine: Endpoint, theirs: Endpoint) -> Endpoint:
    """``mine`` with its gaps filled from ``theirs``."""
    service, ipv4, ipv6, port = mine
    return (
        service if service is not None else theirs[0],
        ipv4 if ipv4 is not None else theirs[1],
        ipv6 if ipv6 is not None else theirs[2],
        port if port is not None else theirs[3],
    )


def _try_merge(tracker: Endpoint, endpoint: Endpoint) -> Endpoint | None:
    """Zipkin's ``EndpointTracker.tryMerge``: the union of both, or None if a field contradicts."""
    if any(
        a is not None and b is not None and a != b for a, b in zip(tracker, endpoint, strict=True)
    ):
        return None
    return _fill(tracker, endpoint)


def _nulls_last(value: str | None) -> tuple[int, str]:
    return (0, value) if value is not None else (1, "")


def _cleanup_key(span: _Zspan) -> tuple:
    """Zipkin's ``CLEANUP_COMPARATOR`` within one id: client first, shared last, then endpoint."""
    shared = (1, 0) if span.shared else (0, 0 if span.kind == "CLIENT" else 1)
    local = span.local
    if local == _NO_ENDPOINT:
        return (*shared, 0)
    return (*shared, 1, _nulls_last(local[0]), _nulls_last(local[1]), _nulls_last(local[2]))


def _merge(fragments: list[_Zspan]) -> list[_Zspan]:
    """The spans of one trace with their fragments merged (``Trace.merge``)."""
    by_id: dict[str, list[_Zspan]] = {}
    for fragment in fragments:
        by_id.setdefault(fragment.id, []).append(fragment)
    merged: list[_Zspan] = []
    for group in by_id.values():
        group.sort(key=_cleanup_key)  # stable: equal fragments keep the file's order
        i = 0
        while i < len(group):
            span = group[i]
            tracker = span.local
            i += 1
            while i < len(group) and group[i].shared == span.shared:
                tracker = _try_merge(tracker, group[i].local)
                if tracker is None:
                    break
                span.absorb(group[i])
                i += 1
            merged.append(span)
    return merged


def _derived_id(trace_id: str, span: _Zspan) -> str:
    local = "|".join("" if part is None else str(part) for part in span.local)
    seed = f"{trace_id}{span.id}server{local}".encode()
    return hashlib.sha256(seed).hexdigest()[:16]


class _Trace:
    """The merged spans of one trace, with their stored ids and parents worked out."""

    def __init__(self, trace_id: str, fragments: list[_Zspan]) -> None:
        self.trace_id = trace_id
        self.spans = sorted(_merge(fragments), key=lambda s: s.order)
        clients = {s.id for s in self.spans if not s.shared and s.kind == "CLIENT"}
        for span in self.spans:
            if not span.shared and span.kind == "SERVER" and span.id in clients:
                span.shared = True  # backfill the flag some instrumentation leaves out
        self.unshared = {s.id: s for s in reversed(self.spans) if not s.shared}
        for span in self.spans:
            if span.shared and span.parent_id is None and span.id not in self.unshared:
                span.shared = False  # a root that only claims to join a client
        self.unshared = {s.id: s for s in reversed(self.spans) if not s.shared}
        self.halves: dict[str, list[_Zspan]] = {}
        for span in self.spans:
            if span.shared:
                self.halves.setdefault(span.id, []).append(span)
        for span in self.spans:
            span.stored_id = _derived_id(trace_id, span) if span.shared else span.id

    def parent_of(self, span: _Zspan) -> str | None:
        """The stored parent id: a shared half's client; a shared half's child goes under it."""
        if span.shared:
            return span.id
        parent = span.parent_id
        if parent is None or parent not in self.halves:
            return parent
        halves = self.halves[parent]
        for half in halves:
            if half.local == span.local:
                return half.stored_id
        service = span.local[0]
        same_service = [h for h in halves if h.local[0] == service]
        client = self.unshared.get(parent)
        if service and len(same_service) == 1 and (client is None or client.local[0] != service):
            return same_service[0].stored_id
        return parent

    def records(self) -> Iterator[tuple[int, Record]]:
        """(file order, record) of every span, or of its quarantine."""
        seen: set[str] = set()
        kept: list[_Zspan] = []
        for span in self.spans:
            if span.stored_id in seen:
                reason = (
                    f"span id {span.id} is already used in this trace by a span on another local"
                    " endpoint that is neither a fragment of it nor its shared server half"
                )
                yield span.order, _quarantine(span, reason)
                continue
            seen.add(span.stored_id)
            kept.append(span)
        parents = {s.stored_id: self.parent_of(s) for s in kept}
        starts = self._starts(kept, parents)
        for span in kept:
            start = starts[span.stored_id]
            if not start:
                reason = "no timestamp: none in the span, its annotations, shared peer or parent"
                yield span.order, _quarantine(span, reason)
                continue
            yield span.order, self._span(span, parents[span.stored_id], start)

    def _own_start(self, span: _Zspan) -> int:
        """The span's timestamp, else its earliest annotation's, else its shared peer's."""
        start = span.timestamp or min(span.annotations, default=0)
        if not start:
            peers = [self.unshared.get(span.id)] if span.shared else self.halves.get(span.id, [])
            start = next((p.timestamp for p in peers if p is not None and p.timestamp), 0)
        return start

    def _starts(self, kept: list[_Zspan], parents: dict[str, str | None]) -> dict[str, int]:
        """Every span's start in microseconds: its own, else its nearest ancestor's; 0 if none."""
        own = {s.stored_id: self._own_start(s) for s in kept}
        starts: dict[str, int] = {}
        for span in kept:
            chain: dict[str, None] = {}  # spans without a start of their own, walked upwards
            current: str | None = span.stored_id
            while current in own and not own[current] and current not in starts:
                if current in chain:
                    break  # a cycle of parents: no start to inherit
                chain[current] = None
                current = parents[current]
            found = 0 if current in chain else (starts.get(current) or own.get(current, 0))
            starts.update(dict.fromkeys(chain, found))
            starts.setdefault(span.stored_id, own[span.stored_id])
        return starts

    def _span(self, span: _Zspan, parent: str | None, start: int) -> Span:
        kind = _KINDS[span.kind] if span.kind else SpanKind.UNSPECIFIED
        attrs = _attributes(span, kind)
        if not span.timestamp:
            attrs["zipkin.timestamp_missing"] = True
        if not span.duration:
            attrs["zipkin.duration_missing"] = True
        if span.shared:
            attrs["zipkin.shared_span_id"] = span.id
        code, message = _status(attrs)
        return build_span(
            self.trace_id,
            span.stored_id,
            parent,
            span.local[0] or UNKNOWN_SERVICE,
            span.name or "",
            kind,
            start * 1000,
            span.duration * 1000,
            code,
            message,
            attrs,
        )


def _quarantine(span: _Zspan, reason: str) -> Quarantined:
    return Quarantined(span.position, reason, excerpt(json_text(span.raw)))


def _status(attrs: dict[str, Any]) -> tuple[int, str | None]:
    """``otel.status_code`` OK/ERROR when present, else any ``error`` tag is an ERROR."""
    code = attrs.pop("otel.status_code", None)
    description = attrs.pop("otel.status_description", None)
    name = code.upper().removeprefix("STATUS_CODE_") if isinstance(code, str) else None
    if name in _STATUS_NAMES:
        if name == "ERROR":
            return StatusCode.ERROR, str(description) if description else None
        return StatusCode.OK, None
    if code is not None:
        attrs["otel.status_code"] = code  # not a status Clew knows: kept as it was
    if description is not None:
        attrs["otel.status_description"] = description
    if "error" in attrs:
        error = attrs.pop("error")
        return StatusCode.ERROR, str(error) if error not in (None, "") else None
    return StatusCode.UNSET, None


def _attributes(span: _Zspan, kind: int) -> dict[str, Any]:
    """Tags under current OpenTelemetry names, with the endpoints' addresses."""
    attrs = span.tags
    tags = tuple(attrs)
    for old, new in _TAG_NAMES.items():
        if old in attrs:
            value = attrs.pop(old)
            attrs.setdefault(new, value)
    if any(key.startswith("kafka.") for key in tags) or "messaging.kafka.message.key" in attrs:
        attrs.setdefault("messaging.system", "kafka")
    if "db.system" not in attrs and "db.system.name" not in attrs:
        if any(key.startswith("cassandra.") for key in tags):
            attrs["db.system.name"] = "cassandra"
        elif "db.query.text" in attrs:
            attrs["db.system.name"] = "other_sql"  # OpenTelemetry's name for an unnamed SQL db
    if kind == SpanKind.CLIENT and "server.address" not in attrs:
        url = attrs.get("http.url", attrs.get("url.full"))
        if isinstance(url, str) and (host := _url_host(url)):
            attrs["server.address"] = host
    service, ipv4, ipv6, port = span.remote
    if service is not None:
        attrs.setdefault("service.peer.name", service)
    address = ipv4 or ipv6
    side = "client" if kind == SpanKind.SERVER else "network.peer"
    if address is not None:
        attrs.setdefault(f"{side}.address", address)
    if port is not None:
        attrs.setdefault(f"{side}.port", port)
    _, ipv4, ipv6, port = span.local
    if ipv4 or ipv6:
        attrs.setdefault("network.local.address", ipv4 or ipv6)
    if port is not None:
        attrs.setdefault("network.local.port", port)
        if kind == SpanKind.SERVER:
            attrs.setdefault("server.port", port)
    if span.kind is None and span.raw_kind is not None:
        attrs["zipkin.kind"] = span.raw_kind
    return attrs


def _url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def records_of_document(document: Any) -> Iterator[Record]:
    """The records of a decoded Zipkin v2 document: a list of spans, or a list of such lists."""
    if not isinstance(document, list):
        reason = f"not a Zipkin v2 span list: the top level is {_json_type(document)}"
        yield Quarantined("document", reason, excerpt(json_text(document)))
        return
    fragments: list[_Zspan] = []
    for i, item in enumerate(document):
        entries = enumerate(item) if isinstance(item, list) else [(None, item)]
        for j, raw in entries:
            position = f"[{i}]" if j is None else f"[{i}][{j}]"
            if not isinstance(raw, dict):
                reason = f"span is not a JSON object but {_json_type(raw)}"
                yield Quarantined(position, reason, excerpt(json_text(raw)))
                continue
            try:
                fragments.append(_Zspan(raw, position, len(fragments)))
            except _BadSpan as bad:
                yield Quarantined(position, str(bad), excerpt(json_text(raw)))
    _prefer_128_bit_trace_ids(fragments)
    by_trace: dict[str, list[_Zspan]] = {}
    for fragment in fragments:
        by_trace.setdefault(fragment.trace_id, []).append(fragment)
    out = [
        pair for trace_id, group in by_trace.items() for pair in _Trace(trace_id, group).records()
    ]
    out.sort(key=lambda pair: pair[0])
    for service in dict.fromkeys(r.service for _, r in out if type(r) is Span):
        yield resource_from({"service.name": service})
    for _, record in out:
        yield record


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), "a value")


def _prefer_128_bit_trace_ids(fragments: list[_Zspan]) -> None:
    """A 64-bit trace id takes the 128-bit id with its low half, when exactly one is in the data."""
    longer: dict[str, set[str]] = {}
    for fragment in fragments:
        if not fragment.trace_id.startswith("0" * 16):
            longer.setdefault(fragment.trace_id[16:], set()).add(fragment.trace_id)
    if not longer:
        return
    for fragment in fragments:
        if fragment.trace_id.startswith("0" * 16):
            candidates = longer.get(fragment.trace_id[16:])
            if candidates and len(candidates) == 1:
                fragment.trace_id = next(iter(candidates))


class ZipkinV2Collector:
    """Zipkin v2 JSON: the span list of ``/api/v2/trace/{id}``, or ``/api/v2/traces``' lists."""

    name = "zipkin_v2"
    description = "Zipkin v2 JSON traces (a list of spans, or a list of traces' span lists)"

    def detect(self, head: bytes) -> bool:
        head = head.removeprefix(BOM).lstrip()
        if head[:1] != b"[" or b'"traceId"' not in head:
            return False
        if b'"resourceSpans"' in head or b'"traceID"' in head or b'"spanID"' in head:
            return False  # OTLP/JSON, or Jaeger's JSON
        return b'"localEndpoint"' in head or b'"id"' in head

    def collect(self, source: Source) -> Iterator[Record]:
        return document_records(source, records_of_document, quote_head=True)
