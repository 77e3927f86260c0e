"""OTLP/JSON metrics requests into protobuf messages, faster than protobuf's own JSON reader
(``json_format.ParseDict``, which converts every field through generic reflection in Python).
``bench/metrics_json.py`` times both on the connector exports the file tests build: about six
times faster, and ParseDict four fifths of reading them into points (``bench/RESULTS.md``).

Only the regular shape is taken: the camelCase names OTLP/JSON writes, every value of the type
its field has (64-bit integers as strings or numbers, enums as numbers or their names, doubles as
numbers), attributes that are strings, integers, doubles or booleans, and the kinds of metric
the connectors and most SDKs send (gauges, sums, histograms, exponential histograms). Anything
else (an unknown or snake_case field, a ``null``, a double written ``"NaN"``, an array or byte
attribute, a summary) makes ``request_of`` answer None, and the caller reads the document with
``ParseDict``, which owns every rule and error message; for what it takes, the message is the one
``ParseDict`` makes (``tests/collectors/test_metrics_json.py`` checks that on documents without
exemplars). Exemplars are skipped, unchecked; ``collectors.otlp_metrics`` takes them out before
a document goes to ``ParseDict``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

_TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
_REQUEST = frozenset(("resourceMetrics",))
_RESOURCE_METRICS = frozenset(("resource", "scopeMetrics", "schemaUrl"))
_RESOURCE = frozenset(("attributes", "droppedAttributesCount"))
_SCOPE_METRICS = frozenset(("scope", "metrics", "schemaUrl"))
_SCOPE = frozenset(("name", "version", "attributes", "droppedAttributesCount"))
_METRIC = frozenset(
    ("name", "description", "unit", "gauge", "sum", "histogram", "exponentialHistogram", "metadata")
)
_DATA = frozenset(("gauge", "sum", "histogram", "exponentialHistogram"))
_AGGREGATION = frozenset(("dataPoints", "aggregationTemporality", "isMonotonic"))
_COMMON_POINT = ("attributes", "startTimeUnixNano", "timeUnixNano", "exemplars", "flags")
_NUMBER_POINT = frozenset((*_COMMON_POINT, "asDouble", "asInt"))
_HISTOGRAM_POINT = frozenset(
    (*_COMMON_POINT, "count", "sum", "bucketCounts", "explicitBounds", "min", "max")
)
_EXPONENTIAL_POINT = frozenset(
    (*_COMMON_POINT, "count", "sum", "min", "max", "scale", "zeroCount", "zeroThreshold")
).union(("positive", "negative"))
_BUCKETS = frozenset(("offset", "bucketCounts"))
_KEY_VALUE = frozenset(("key", "value"))


class _Irregular(Exception):
    """Something this reader does not take: ``ParseDict`` reads the document instead."""


def request_of(document: dict) -> ExportMetricsServiceRequest | None:
    """The request an OTLP/JSON document holds, or None when it is not in the regular shape."""
    message = ExportMetricsServiceRequest()
    try:
        _fields(document, _REQUEST)
        for item in _list(document.get("resourceMetrics", [])):
            _resource_metrics(_fields(item, _RESOURCE_METRICS), message.resource_metrics.add())
    except (_Irregular, TypeError, ValueError, OverflowError):
        # A value out of its field's range (a negative count, an int beyond 64 bits) is
        # refused by the message itself, with ParseDict's error to come.
        return None
    return message


def _fields(value: Any, names: frozenset[str]) -> dict:
    if type(value) is not dict or not names.issuperset(value):
        raise _Irregular
    return value


def _list(value: Any) -> list:
    if type(value) is not list:
        raise _Irregular
    return value


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Irregular
    return value


def _integer(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value
    # Digits alone: ParseDict refuses spaces, which int() would take.
    if kind is str and value.isascii() and value.removeprefix("-").isdigit():
        return int(value)
    raise _Irregular


def _double(value: Any) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    raise _Irregular  # "NaN", "Infinity" and the like: ParseDict's


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Irregular
    return value


def _resource_metrics(item: dict, message: Any) -> None:
    if "resource" in item:
        resource = _fields(item["resource"], _RESOURCE)
        message.resource.SetInParent()
        _attributes(resource.get("attributes", []), message.resource.attributes)
        if "droppedAttributesCount" in resource:
            count = _integer(resource["droppedAttributesCount"])
            message.resource.dropped_attributes_count = count
    if "schemaUrl" in item:
        message.schema_url = _text(item["schemaUrl"])
    for scope_item in _list(item.get("scopeMetrics", [])):
        _scope_metrics(_fields(scope_item, _SCOPE_METRICS), message.scope_metrics.add())


def _scope_metrics(item: dict, message: Any) -> None:
    if "scope" in item:
        scope = _fields(item["scope"], _SCOPE)
        message.scope.SetInParent()
        if "name" in scope:
            message.scope.name = _text(scope["name"])
        if "version" in scope:
            message.scope.version = _text(scope["version"])
        _attributes(scope.get("attributes", []), message.scope.attributes)
        if "droppedAttributesCount" in scope:
            message.scope.dropped_attributes_count = _integer(scope["droppedAttributesCount"])
    if "schemaUrl" in item:
        message.schema_url = _text(item["schemaUrl"])
    for metric in _list(item.get("metrics", [])):
        _metric(_fields(metric, _METRIC), message.metrics.add())


def _metric(item: dict, message: Any) -> None:
    if "name" in item:
        message.name = _text(item["name"])
    if "description" in item:
        message.description = _text(item["description"])
    if "unit" in item:
        message.unit = _text(item["unit"])
    _attributes(item.get("metadata", []), message.metadata)
    kinds = _DATA.intersection(item)
    if len(kinds) > 1:
        raise _Irregular  # a oneof given twice: ParseDict's error
    for kind in kinds:
        data = _fields(item[kind], _AGGREGATION)
        if kind == "gauge":
            target = message.gauge
            if len(data) > ("dataPoints" in data):
                raise _Irregular  # a gauge has no temporality
        elif kind == "sum":
            target = message.sum
            if "isMonotonic" in data:
                target.is_monotonic = _boolean(data["isMonotonic"])
        elif "isMonotonic" in data:
            raise _Irregular  # histograms have none
        elif kind == "histogram":
            target = message.histogram
        else:
            target = message.exponential_histogram
        target.SetInParent()
        if "aggregationTemporality" in data:
            target.aggregation_temporality = _temporality(data["aggregationTemporality"])
        points = _list(data.get("dataPoints", []))
        if kind in ("gauge", "sum"):
            for point in points:
                _number_point(_fields(point, _NUMBER_POINT), target.data_points.add())
        elif kind == "histogram":
            for point in points:
                _histogram_point(_fields(point, _HISTOGRAM_POINT), target.data_points.add())
        else:
            for point in points:
                _exponential_point(_fields(point, _EXPONENTIAL_POINT), target.data_points.add())


def _temporality(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value in _TEMPORALITIES:
        return _TEMPORALITIES[value]
    raise _Irregular


def _common_point(point: dict, message: Any) -> None:
    _attributes(point.get("attributes", []), message.attributes)
    if "startTimeUnixNano" in point:
        message.start_time_unix_nano = _integer(point["startTimeUnixNano"])
    if "timeUnixNano" in point:
        message.time_unix_nano = _integer(point["timeUnixNano"])
    if "flags" in point:
        message.flags = _integer(point["flags"])


def _number_point(point: dict, message: Any) -> None:
    _common_point(point, message)
    if "asDouble" in point:
        if "asInt" in point:
            raise _Irregular
        message.as_double = _double(point["asDouble"])
    elif "asInt" in point:
        message.as_int = _integer(point["asInt"])


def _histogram_point(point: dict, message: Any) -> None:
    _common_point(point, message)
    if "count" in point:
        message.count = _integer(point["count"])
    for name in ("sum", "min", "max"):
        if name in point:
            setattr(message, name, _double(point[name]))
    message.bucket_counts.extend([_integer(n) for n in _list(point.get("bucketCounts", []))])
    message.explicit_bounds.extend([_double(b) for b in _list(point.get("explicitBounds", []))])


def _exponential_point(point: dict, message: Any) -> None:
    _common_point(point, message)
    if "count" in point:
        message.count = _integer(point["count"])
    for name in ("sum", "min", "max"):
        if name in point:
            setattr(message, name, _double(point[name]))
    if "scale" in point:
        message.scale = _integer(point["scale"])
    if "zeroCount" in point:
        message.zero_count = _integer(point["zeroCount"])
    if "zeroThreshold" in point:
        message.zero_threshold = _double(point["zeroThreshold"])
    for side in ("positive", "negative"):
        if side in point:
            buckets = _fields(point[side], _BUCKETS)
            target = getattr(message, side)
            target.SetInParent()
            if "offset" in buckets:
                target.offset = _integer(buckets["offset"])
            counts = _list(buckets.get("bucketCounts", []))
            target.bucket_counts.extend([_integer(n) for n in counts])


def _attributes(items: Any, target: Any) -> None:
    for item in _list(items):
        _fields(item, _KEY_VALUE)
        entry = target.add()
        entry.key = _text(item.get("key", ""))
        if "value" not in item:
            continue
        value = item["value"]
        if type(value) is not dict or len(value) > 1:
            raise _Irregular
        entry.value.SetInParent()
        for kind, scalar in value.items():
            if kind == "stringValue":
                entry.value.string_value = _text(scalar)
            elif kind == "intValue":
                entry.value.int_value = _integer(scalar)
            elif kind == "doubleValue":
                entry.value.double_value = _double(scalar)
            elif kind == "boolValue":
                entry.value.bool_value = _boolean(scalar)
            else:
                raise _Irregular  # arrays, lists of key-values, bytes: ParseDict's
