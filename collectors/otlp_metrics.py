"""OTLP metrics from the OpenTelemetry Collector's ``servicegraph`` and ``spanmetrics`` connectors:
``ExportMetricsServiceRequest`` bodies (``POST /v1/metrics``), protobuf or OTLP/JSON.

What is read, in every naming the connectors' versions use:

* **servicegraph** (edges): ``traces_service_graph_request_total`` (requests),
  ``traces_service_graph_request_failed_total`` (failed requests), and the latency histograms
  ``traces_service_graph_request_client`` / ``_request_server`` (older versions end them in
  ``_seconds``, and the oldest send ``traces_service_graph_request_duration[_seconds]``, the
  server's, alone), by ``client``, ``server`` and ``connection_type``. The connection types are
  Clew's own (``""`` is ``direct``); the connector's virtual caller of root spans, ``user``, is
  Clew's ``client``; the virtual side is the ``virtual_node`` attribute, or else the ``user``
  client or the peer server of a ``virtual_node`` edge.
* **spanmetrics** (served endpoints): ``calls`` and ``duration`` under any namespace the
  connector's scope (``spanmetricsconnector``) is sent with, or under ``traces.span.metrics.`` /
  ``traces_span_metrics_`` (``calls_total``, ``duration_seconds``, ``duration_milliseconds`` and
  the processor's ``latency`` too), by ``service.name`` (the point's, else the resource's),
  ``span.name``, ``span.kind`` (``SPAN_KIND_SERVER``, ``SERVER`` or the enum's number) and
  ``status.code`` (``STATUS_CODE_ERROR``, ``Error``, ...). Dimensions a deployment adds are used
  where they name the endpoint better: ``http.route`` with ``http.request.method`` (or
  ``http.method``), the HTTP status (5xx fail, 4xx are client errors), a consumer's
  ``messaging.destination.name``. Without them a consumer's endpoint is the destination its span
  name gives (``process orders``, ``orders process``), a server's the span name, which the HTTP
  conventions make ``GET /orders/{id}`` as the traces name it. Points of client, producer and
  internal spans are left: they name no callee, and spanmetrics gives no peer.

Durations are read in the metric's unit (``s``, ``ms``, ``us``, ``ns``; a unit left empty is
told by a ``_seconds`` / ``_milliseconds`` name, else the connector's default: seconds for
servicegraph, milliseconds for spanmetrics) and kept in nanoseconds. Explicit-bucket and
exponential histograms are both read; sums and counters as integers or doubles. Exemplars are not
read. A point flagged "no recorded value" (a series that ended) carries nothing and is left.

Every other metric is valid OTLP that Clew has no use for: its points are counted
(``Export.unread``), not kept. A point of a metric read that cannot be used (a gauge under a
counter's name, a histogram whose buckets do not add up to its count, a unit that is no time)
is quarantined with its position and reason. A point sent without a time (servicegraph's
exponential client histogram has none) takes the latest time of its resource's other points.
A series is named by a digest of its resource, scope, metric and attributes, so two senders
(two Collectors) keep their series apart as long as their resources differ.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from clew.records import (
    ROOT_CALLER,
    SERVICEGRAPH_SOURCE,
    SPANMETRICS_SOURCE,
    ConnectionType,
    ExplicitBuckets,
    ExponentialBuckets,
    Measure,
    MetricPoint,
    Quarantined,
    Resource,
    SpanKind,
    StatusCode,
    UnreadMetric,
    excerpt,
)
from collectors import CollectorError, metrics_json
from collectors.otlp_proto import key_values
from collectors.semconv import resource_from

#: servicegraph's metrics by name (a ``_seconds`` or ``_milliseconds`` ending taken off first).
_SERVICEGRAPH_METRICS = {
    "traces_service_graph_request_total": Measure.REQUESTS,
    "traces_service_graph_request_failed_total": Measure.FAILED,
    "traces_service_graph_request_client": Measure.CLIENT_LATENCY,
    "traces_service_graph_request_server": Measure.SERVER_LATENCY,
    "traces_service_graph_request_duration": Measure.LATENCY,
}
#: servicegraph's ``connection_type`` values and Clew's names for them.
_CONNECTION_TYPES = {
    "": ConnectionType.DIRECT,
    "direct": ConnectionType.DIRECT,
    "messaging_system": ConnectionType.MESSAGING,
    "database": ConnectionType.DATABASE,
    "virtual_node": ConnectionType.VIRTUAL,
}
#: The virtual client servicegraph gives a server span with no client span.
_SERVICEGRAPH_USER = "user"

#: The scope name spanmetrics sends its metrics under, whatever their namespace.
_SPANMETRICS_SCOPE = "spanmetricsconnector"
#: The namespaces spanmetrics names its metrics in (its default, as it reaches Prometheus, none).
_SPANMETRICS_PREFIXES = ("traces.span.metrics.", "traces_span_metrics_")
_SPANMETRICS_METRICS = {
    "calls": Measure.REQUESTS,
    "calls_total": Measure.REQUESTS,
    "duration": Measure.LATENCY,
    "duration_seconds": Measure.LATENCY,
    "duration_milliseconds": Measure.LATENCY,
    "latency": Measure.LATENCY,  # the spanmetrics processor's name, before the connector
}
#: spanmetrics' attributes, and the names the processor and Prometheus gave them.
_SERVICE_KEYS = ("service.name", "service_name")
_SPAN_NAME_KEYS = ("span.name", "span_name", "operation")
_SPAN_KIND_KEYS = ("span.kind", "span_kind")
_STATUS_KEYS = ("status.code", "status_code")
_ROUTE_KEYS = ("http.route", "http_route")
_METHOD_KEYS = ("http.request.method", "http.method", "http_method")
_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code", "http_status_code")
_DESTINATION_KEYS = ("messaging.destination.name", "messaging.destination")
#: Messaging operations a consumer span's name may pair with its destination.
_MESSAGING_OPERATIONS = frozenset(("process", "receive", "deliver", "settle", "consume"))
#: The span kinds whose spans serve an endpoint: spanmetrics' other points are not read.
_SERVING_KINDS = {
    SpanKind.SERVER: ConnectionType.DIRECT,
    SpanKind.CONSUMER: ConnectionType.MESSAGING,
}

#: Nanoseconds per unit of a duration metric.
_UNITS = {"s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1.0}
_DEFAULT_UNITS = {SERVICEGRAPH_SOURCE: "s", SPANMETRICS_SOURCE: "ms"}
_NAME_UNITS = {"_seconds": "s", "_milliseconds": "ms"}

#: The longest duration a point may hold (2**63 ns, some 292 years: what the store's integers
#: hold); beyond it a point is quarantined.
MAX_DURATION_NS = float(2**63)
#: The largest count a point may hold (2**53: a double counts exactly to there).
MAX_COUNT = 2**53

#: The longest metric name a quarantine position quotes: a position is at most 255 characters
#: (``quarantine.position``), and a metric's name may be as long (spanmetrics' namespace is the
#: deployment's).
_POSITION_NAME_LIMIT = 100

_CUMULATIVE, _DELTA = 2, 1
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_MIN_SCALE, _MAX_SCALE = -10, 20


@dataclass
class Export:
    """What one request held: points and resources read (and points quarantined, in order), and
    how many points each metric Clew does not read had."""

    records: list[MetricPoint | Resource | Quarantined] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)


class _Unusable(ValueError):
    """A point of a metric Clew reads that it cannot use; the message says why."""


# --- Bodies ----------------------------------------------------------------------------------


def read_protobuf(data: bytes) -> Export:
    """The metric points of an OTLP/HTTP protobuf body; ``CollectorError`` when it does not
    decode as an ``ExportMetricsServiceRequest``."""
    message = ExportMetricsServiceRequest()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        detail = str(error).rpartition(": ")[2] or "wire format is corrupt"
        raise CollectorError(f"not an OTLP ExportMetricsServiceRequest: {detail}") from None
    return read_message(message)


def read_json(data: bytes) -> Export:
    """The metric points of an OTLP/JSON body; ``CollectorError`` with the position or field
    when it is no JSON, or no ``ExportMetricsServiceRequest``. Unknown fields are ignored, as
    OTLP/JSON asks; exemplars (ids in hex there) are left unread."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}"
        raise CollectorError(f"invalid JSON at {position}: {error.msg}") from None
    return read_document(document)


def read_document(document: Any) -> Export:
    """The same for a decoded OTLP/JSON body (``read_json``); its exemplars are not read."""
    if not isinstance(document, dict):
        raise CollectorError("not an OTLP ExportMetricsServiceRequest: not a JSON object")
    message = metrics_json.request_of(document)  # the regular shape, fast; exemplars skipped
    if message is None:
        _without_exemplars(document)
        message = ExportMetricsServiceRequest()
        try:
            json_format.ParseDict(document, message, ignore_unknown_fields=True)
        except (json_format.ParseError, TypeError, ValueError) as error:
            raise CollectorError(f"not an OTLP ExportMetricsServiceRequest: {error}") from None
    return read_message(message)


def _without_exemplars(document: dict) -> None:
    """Take exemplars out of every data point: OTLP/JSON writes their ids in hex, which proto3's
    JSON reader would take for base64, and Clew does not read them."""
    for resource in _dicts(document.get("resourceMetrics", document.get("resource_metrics"))):
        for scope in _dicts(resource.get("scopeMetrics", resource.get("scope_metrics"))):
            for metric in _dicts(scope.get("metrics")):
                for value in metric.values():
                    if isinstance(value, dict):
                        for point in _dicts(value.get("dataPoints", value.get("data_points"))):
                            point.pop("exemplars", None)


def _dicts(value: Any) -> Iterator[dict]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


# --- Files -----------------------------------------------------------------------------------
#
# A file holds many requests (the Collector's file exporter writes one per line, or one per
# frame): a request that cannot be read is quarantined at its line or byte, and the positions of
# its unusable points begin with that place, so that each is unique in its file.

#: The keys that hold an OTLP/JSON metrics request's records (protobuf's JSON reader takes both).
_RESOURCE_METRICS_KEYS = ("resourceMetrics", "resource_metrics")


#: What a file's export gives.
FileRecord = MetricPoint | Resource | Quarantined | UnreadMetric


def records_at(export: Export, where: str) -> Iterator[FileRecord]:
    """An export's records read at ``where`` in a file (``line 12``, ``byte 4096``): its
    quarantined points' positions begin with it, and the metrics it leaves unread are counted
    (``UnreadMetric``: a file has no sender to warn)."""
    for record in export.records:
        if type(record) is Quarantined:
            yield Quarantined(f"{where}: {record.position}", record.reason, record.excerpt)
        else:
            yield record
    for name, points in export.unread.items():
        yield UnreadMetric(name, points)


def records_of_message_at(data: bytes, where: str) -> Iterator[FileRecord]:
    """The records of a protobuf request read at ``where`` in a file; one that does not decode
    is quarantined there."""
    try:
        export = read_protobuf(data)
    except CollectorError as error:
        yield Quarantined(where, str(error), excerpt(data[:64].hex()))
        return
    yield from records_at(export, where)


def records_of_document_at(document: Any, where: str, text: bytes) -> Iterator[FileRecord]:
    """The records of a decoded OTLP/JSON request read at ``where`` in a file (``text`` is its
    text, quoted if it is quarantined). An object that holds something, but no metrics, is no
    request of metrics (a file exporter in a logs pipeline writes ``resourceLogs`` to the same
    file): quarantined, as an empty one (``{}``, proto3's JSON of an empty export) is not."""
    held = isinstance(document, dict) and bool(document)
    if held and not any(key in document for key in _RESOURCE_METRICS_KEYS):
        reason = "not an OTLP ExportMetricsServiceRequest: no resourceMetrics list"
        yield Quarantined(where, reason, excerpt(text))
        return
    try:
        export = read_document(document)
    except CollectorError as error:
        yield Quarantined(where, str(error), excerpt(text))
        return
    yield from records_at(export, where)


# --- Messages --------------------------------------------------------------------------------


def read_message(message: ExportMetricsServiceRequest) -> Export:
    """The metric points of a decoded request, with each resource's service where it names one."""
    export = Export()
    for r, resource_metrics in enumerate(message.resource_metrics):
        resource = key_values(resource_metrics.resource.attributes)
        if isinstance(resource.get("service.name"), str) and resource["service.name"]:
            export.records.append(resource_from(resource))
        latest = _latest_time(resource_metrics)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope = scope_metrics.scope.name
            sender = _digest([resource, scope])
            for m, metric in enumerate(scope_metrics.metrics):
                reader = _reader_of(metric.name, scope)
                if reader is None:
                    count = _point_count(metric)
                    if count:
                        export.unread[metric.name] = export.unread.get(metric.name, 0) + count
                    continue
                named = excerpt(metric.name, _POSITION_NAME_LIMIT)
                where = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}] {named!r}"
                source, measure, unit = reader
                context = _Metric(resource, scope, sender, metric.name, source, measure, unit)
                export.records.extend(_points(metric, context, latest, where))
    return export


@dataclass(frozen=True)
class _Metric:
    """What every point of one metric shares."""

    resource: dict[str, Any]
    scope: str
    sender: str
    name: str
    source: str
    measure: str
    unit: str  # the unit its name implies, where it implies one ("" otherwise)


def _reader_of(name: str, scope: str) -> tuple[str, str, str] | None:
    """(source, measure, unit its name gives) of a metric Clew reads, else None."""
    base, unit = _unit_named(name)
    if base in _SERVICEGRAPH_METRICS:
        return SERVICEGRAPH_SOURCE, _SERVICEGRAPH_METRICS[base], unit
    short = None
    for prefix in _SPANMETRICS_PREFIXES:
        if name.startswith(prefix):
            short = name[len(prefix) :]
    if short is None and scope == _SPANMETRICS_SCOPE:
        short = name.rsplit(".", 1)[-1]  # a namespace of the deployment's own
    if short in _SPANMETRICS_METRICS:
        return SPANMETRICS_SOURCE, _SPANMETRICS_METRICS[short], _unit_named(short)[1]
    return None


def _unit_named(name: str) -> tuple[str, str]:
    """A metric's name without a unit ending (``_seconds``), and the unit that ending names."""
    for ending, unit in _NAME_UNITS.items():
        if name.endswith(ending):
            return name[: -len(ending)], unit
    return name, ""


def _point_count(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind is not None else 0


def _latest_time(resource_metrics: Any) -> int:
    """The latest time of a resource's points (what a point sent without a time takes)."""
    latest = 0
    for scope_metrics in resource_metrics.scope_metrics:
        for metric in scope_metrics.metrics:
            kind = metric.WhichOneof("data")
            if kind is not None:
                for point in getattr(metric, kind).data_points:
                    latest = max(latest, point.time_unix_nano)
    return latest


def _points(
    metric: Any, context: _Metric, latest: int, where: str
) -> Iterator[MetricPoint | Quarantined]:
    kind = metric.WhichOneof("data")
    if kind is None:
        return
    data = getattr(metric, kind)
    for p, point in enumerate(data.data_points):
        if point.flags & _NO_RECORDED_VALUE:
            continue
        try:
            read = _point(metric, kind, data, point, context, latest)
        except _Unusable as unusable:
            text = orjson.dumps(json_format.MessageToDict(point)).decode()
            yield Quarantined(f"{where} dataPoints[{p}]", str(unusable), excerpt(text))
            continue
        if read is not None:
            yield read


def _point(
    metric: Any, kind: str, data: Any, point: Any, context: _Metric, latest: int
) -> MetricPoint | None:
    """One point read; None for a spanmetrics point of a span that serves nothing (a client,
    producer or internal span: it names no callee); ``_Unusable`` when it cannot be used."""
    counter = context.measure in (Measure.REQUESTS, Measure.FAILED)
    if counter and kind != "sum":
        raise _Unusable(f"a {kind} is not the counter {context.name!r} is")
    if not counter and kind not in ("histogram", "exponential_histogram"):
        raise _Unusable(f"a {kind} is not the histogram {context.name!r} is")
    if data.aggregation_temporality not in (_CUMULATIVE, _DELTA):
        raise _Unusable("the aggregation temporality is not set (cumulative or delta)")
    if counter and not data.is_monotonic:
        raise _Unusable("a sum that is not monotonic is no count of requests")
    time_ns = point.time_unix_nano or latest
    if time_ns <= 0:
        raise _Unusable("time_unix_nano is not set")
    attributes = key_values(point.attributes)
    histogram = None
    if counter:
        value = _counter_value(point)
    else:
        unit_ns = _unit_ns(metric.unit, context)
        if point.count >= MAX_COUNT:
            raise _Unusable(f"the count {point.count} is beyond any count of calls")
        if kind == "histogram":
            histogram = _explicit(point, unit_ns)
        else:
            histogram = _exponential(point, unit_ns)
        value = histogram.count
    if context.source == SERVICEGRAPH_SOURCE:
        subject = _edge(attributes)
    else:
        subject = _served(attributes, context.resource)
        if not subject[2]:
            return None
    series = _digest([context.resource, context.scope, context.name, attributes])
    return MetricPoint(
        series,
        context.sender,
        context.source,
        context.measure,
        *subject,
        data.aggregation_temporality == _CUMULATIVE,
        point.start_time_unix_nano,
        time_ns,
        value,
        histogram,
    )


def _digest(parts: list) -> str:
    """A stable digest of JSON-able parts (dicts by sorted keys)."""
    text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(text, digest_size=16).hexdigest()


# --- Values ----------------------------------------------------------------------------------


def _counter_value(point: Any) -> int:
    which = point.WhichOneof("value")
    if which is None:
        raise _Unusable("the point has no value")
    value = getattr(point, which)
    if which == "as_double":
        if not math.isfinite(value):
            raise _Unusable(f"the value {value} is not a finite number")
        value = round(value)
    if value < 0:
        raise _Unusable(f"the value {value} is below zero: no count")
    if value >= MAX_COUNT:
        raise _Unusable(f"the value {value} is beyond any count of calls")
    return int(value)


def _unit_ns(unit: str, context: _Metric) -> float:
    """Nanoseconds per unit of a duration metric, or ``_Unusable``."""
    name = unit.strip() or context.unit or _DEFAULT_UNITS[context.source]
    if name not in _UNITS:
        raise _Unusable(f"the unit {unit!r} is not a unit of time (s, ms, us, ns)")
    return _UNITS[name]


def _optional(point: Any, name: str, unit_ns: float) -> float | None:
    if not point.HasField(name):
        return None
    value = getattr(point, name)
    if not math.isfinite(value) or value < 0:
        raise _Unusable(f"the {name} {value} is not a duration")
    if value * unit_ns >= MAX_DURATION_NS:
        raise _Unusable(f"the {name} {value} is beyond any duration (292 years)")
    return value * unit_ns


def _explicit(point: Any, unit_ns: float) -> ExplicitBuckets:
    bounds, counts = tuple(point.explicit_bounds), tuple(point.bucket_counts)
    if counts and len(counts) != len(bounds) + 1:
        raise _Unusable(
            f"{len(counts)} bucket counts for {len(bounds)} bounds (there must be one more)"
        )
    if not all(math.isfinite(b) for b in bounds) or any(
        b >= after for b, after in itertools.pairwise(bounds)
    ):
        raise _Unusable("the explicit bounds are not finite and increasing")
    if counts and sum(counts) != point.count:
        raise _Unusable(f"the buckets hold {sum(counts)} values, the count says {point.count}")
    if bounds and bounds[-1] * unit_ns >= MAX_DURATION_NS:
        raise _Unusable(f"the bound {bounds[-1]} is beyond any duration (292 years)")
    return ExplicitBuckets(
        point.count,
        _optional(point, "sum", unit_ns),
        _optional(point, "min", unit_ns),
        _optional(point, "max", unit_ns),
        tuple(b * unit_ns for b in bounds),
        counts,
    )


def _exponential(point: Any, unit_ns: float) -> ExponentialBuckets:
    if not _MIN_SCALE <= point.scale <= _MAX_SCALE:
        raise _Unusable(f"the scale {point.scale} is not between {_MIN_SCALE} and {_MAX_SCALE}")
    if any(point.negative.bucket_counts):
        raise _Unusable("negative buckets hold values: a duration is never below zero")
    counts = tuple(point.positive.bucket_counts)
    if point.zero_count + sum(counts) != point.count:
        held = point.zero_count + sum(counts)
        raise _Unusable(f"the buckets hold {held} values, the count says {point.count}")
    threshold = point.zero_threshold
    if not math.isfinite(threshold) or threshold < 0 or threshold * unit_ns >= MAX_DURATION_NS:
        raise _Unusable(f"the zero threshold {threshold} is not a duration")
    held = [i for i, n in enumerate(counts) if n]
    if held:
        # Bucket i ends at base ** (offset + i + 1) units; compared as logarithms, so that no
        # power overflows.
        top = math.ldexp(point.positive.offset + held[-1] + 1, -point.scale) * math.log(2.0)
        if top + math.log(unit_ns) >= math.log(MAX_DURATION_NS):
            raise _Unusable("a bucket holding values is beyond any duration (292 years)")
    return ExponentialBuckets(
        point.count,
        _optional(point, "sum", unit_ns),
        _optional(point, "min", unit_ns),
        _optional(point, "max", unit_ns),
        point.scale,
        unit_ns,
        point.zero_count,
        threshold * unit_ns,
        point.positive.offset,
        counts,
    )


# --- What a point measures -------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, int | float) else None


def _first(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attributes:
            return attributes[key]
    return None


def _edge(attributes: dict[str, Any]) -> tuple[str, str, str, str | None, str, bool, bool]:
    """(client, server, connection type, virtual side, endpoint, failed, client error) of a
    servicegraph point."""
    client, server = _text(attributes.get("client")), _text(attributes.get("server"))
    if not client or not server:
        raise _Unusable("a servicegraph point names no client or no server")
    written = _text(attributes.get("connection_type")) or ""
    connection_type = _CONNECTION_TYPES.get(written)
    if connection_type is None:
        known = ", ".join(repr(k) for k in _CONNECTION_TYPES)
        raise _Unusable(f"the connection_type {written!r} is none of {known}")
    virtual = _text(attributes.get("virtual_node")) or None
    if virtual not in (None, "client", "server"):
        raise _Unusable(f"the virtual_node {virtual!r} is neither 'client' nor 'server'")
    if connection_type == ConnectionType.VIRTUAL and virtual is None:
        virtual = "client" if client == _SERVICEGRAPH_USER else "server"
    if virtual == "client" and client == _SERVICEGRAPH_USER:
        client = ROOT_CALLER
    return client, server, connection_type, virtual, "", False, False


def _served(
    attributes: dict[str, Any], resource: dict[str, Any]
) -> tuple[str, str, str, str | None, str, bool, bool]:
    """The same for a spanmetrics point: no client, the service as the server, and the endpoint
    its span served."""
    service = _text(_first(attributes, _SERVICE_KEYS)) or _text(resource.get("service.name"))
    name = _text(_first(attributes, _SPAN_NAME_KEYS))
    if not service or name is None:
        raise _Unusable("a spanmetrics point names no service.name or no span.name")
    kind = _span_kind(_first(attributes, _SPAN_KIND_KEYS))
    failed = _status(_first(attributes, _STATUS_KEYS)) == StatusCode.ERROR
    http = _http_status(_first(attributes, _HTTP_STATUS_KEYS))
    failed = failed or http >= 500
    client_error = not failed and 400 <= http <= 499
    connection_type = _SERVING_KINDS.get(kind, "")
    if kind == SpanKind.CONSUMER:
        endpoint = _text(_first(attributes, _DESTINATION_KEYS)) or _destination_in(name)
    else:
        endpoint = _http_endpoint(attributes) or name
    return "", service, connection_type, None, endpoint, failed, client_error


def _span_kind(value: Any) -> SpanKind:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 5:
        return SpanKind(value)
    if isinstance(value, str):
        name = value.strip().upper().removeprefix("SPAN_KIND_")
        if name in SpanKind.__members__:
            return SpanKind[name]
    raise _Unusable(f"the span.kind {value!r} is not a span kind")


def _status(value: Any) -> StatusCode:
    if value is None:
        return StatusCode.UNSET  # the dimension left out (exclude_dimensions)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2:
        return StatusCode(value)
    if isinstance(value, str):
        name = value.strip().upper().removeprefix("STATUS_CODE_")
        if name in StatusCode.__members__:
            return StatusCode[name]
    raise _Unusable(f"the status.code {value!r} is not a span status")


def _http_status(value: Any) -> int:
    text = _text(value)
    return int(text) if text is not None and text.isdigit() else 0


def _http_endpoint(attributes: dict[str, Any]) -> str | None:
    """``METHOD route`` (or the route alone) where the deployment made ``http.route`` a
    dimension."""
    route = _text(_first(attributes, _ROUTE_KEYS))
    if not route:
        return None
    method = _text(_first(attributes, _METHOD_KEYS))
    return f"{method.upper()} {route}" if method else route


def _destination_in(name: str) -> str:
    """The destination a consumer span's name gives (``process orders``, ``orders process``),
    else the whole name."""
    words = name.split()
    if len(words) == 2:
        first, second = words
        if first.lower() in _MESSAGING_OPERATIONS:
            return second
        if second.lower() in _MESSAGING_OPERATIONS:
            return first
    return name
