"""Reading the servicegraph and spanmetrics connectors' metrics, in every naming their versions
use, from protobuf and OTLP/JSON bodies; what cannot be used quarantined with its reason."""

from __future__ import annotations

import base64

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clew.records import (
    ROOT_CALLER,
    ExplicitBuckets,
    ExponentialBuckets,
    Measure,
    MetricPoint,
    Quarantined,
    Resource,
)
from collectors import CollectorError
from collectors.otlp_metrics import read_json, read_message, read_protobuf

T = 1_795_000_000_000_000_000
CUMULATIVE, DELTA = 2, 1


def attributes(values: dict) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        else:
            any_value = AnyValue(string_value=value)
        out.append(KeyValue(key=key, value=any_value))
    return out


def counter(name: str, points: list[dict], temporality: int = CUMULATIVE) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name)
    metric.sum.aggregation_temporality = temporality
    metric.sum.is_monotonic = True
    for point in points:
        metric.sum.data_points.add(
            attributes=attributes(point["attributes"]),
            start_time_unix_nano=point.get("start", T - 60_000_000_000),
            time_unix_nano=point.get("time", T),
            as_int=point.get("value", 1),
        )
    return metric


def explicit(
    name: str, points: list[dict], unit: str = "", temporality: int = CUMULATIVE
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality
    for point in points:
        metric.histogram.data_points.add(
            attributes=attributes(point["attributes"]),
            start_time_unix_nano=T - 60_000_000_000,
            time_unix_nano=point.get("time", T),
            count=sum(point["counts"]),
            sum=point.get("sum", 1.0),
            explicit_bounds=point.get("bounds", [1.0, 2.0]),
            bucket_counts=point["counts"],
        )
    return metric


def request(*metrics: metrics_pb2.Metric, scope: str = "", resource: dict | None = None):
    message = ExportMetricsServiceRequest()
    resource_metrics = message.resource_metrics.add()
    resource_metrics.resource.attributes.extend(attributes(resource or {}))
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = scope
    scope_metrics.metrics.extend(metrics)
    return message


CLIENT = "traces_service_graph_request_client"
VIRTUAL = "virtual_node"
EDGE = {"client": "frontend", "server": "checkout", "connection_type": "", "failed": False}
SERVED = {
    "service.name": "checkout",
    "span.name": "GET /orders/{id}",
    "span.kind": "SPAN_KIND_SERVER",
    "status.code": "STATUS_CODE_UNSET",
}


def points(message: ExportMetricsServiceRequest) -> list[MetricPoint]:
    return [r for r in read_message(message).records if isinstance(r, MetricPoint)]


def quarantined(message: ExportMetricsServiceRequest) -> list[Quarantined]:
    return [r for r in read_message(message).records if isinstance(r, Quarantined)]


# --- servicegraph ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "measure", "unit_ns"),
    [
        ("traces_service_graph_request_client", Measure.CLIENT_LATENCY, 1e9),
        ("traces_service_graph_request_server", Measure.SERVER_LATENCY, 1e9),
        ("traces_service_graph_request_client_seconds", Measure.CLIENT_LATENCY, 1e9),
        ("traces_service_graph_request_server_seconds", Measure.SERVER_LATENCY, 1e9),
        ("traces_service_graph_request_duration_seconds", Measure.LATENCY, 1e9),
        ("traces_service_graph_request_server_milliseconds", Measure.SERVER_LATENCY, 1e6),
    ],
)
def test_servicegraph_latency_histograms_of_every_version_are_read(name, measure, unit_ns):
    message = request(explicit(name, [{"attributes": EDGE, "counts": [1, 2, 0]}]))
    (point,) = points(message)
    assert (point.source, point.measure) == ("servicegraph", measure)
    assert (point.client, point.server, point.connection_type) == ("frontend", "checkout", "direct")
    assert isinstance(point.histogram, ExplicitBuckets)
    assert point.histogram.bounds_ns == (1 * unit_ns, 2 * unit_ns)
    assert point.value == point.histogram.count == 3 and point.cumulative


def test_a_unit_on_the_metric_wins_over_the_name_and_the_default():
    metric = explicit(
        "traces_service_graph_request_client",
        [{"attributes": EDGE, "counts": [1, 0, 0]}],
        unit="ms",
    )
    assert points(request(metric))[0].histogram.bounds_ns == (1e6, 2e6)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("", "direct"),
        ("messaging_system", "messaging_system"),
        ("database", "database"),
        ("virtual_node", "virtual_node"),
    ],
)
def test_connection_types_become_clews(written, expected):
    message = request(
        counter(
            "traces_service_graph_request_total",
            [{"attributes": EDGE | {"connection_type": written}}],
        )
    )
    assert points(message)[0].connection_type == expected


def test_the_virtual_user_is_clews_client_and_the_virtual_side_is_told():
    edges = [
        {"attributes": {"client": "user", "server": "frontend", "connection_type": "virtual_node"}},
        {
            "attributes": {
                "client": "checkout",
                "server": "stripe",
                "connection_type": "virtual_node",
            }
        },
        {
            "attributes": {
                "client": "user",
                "server": "frontend",
                "connection_type": VIRTUAL,
                "virtual_node": "client",
            }
        },
        {"attributes": {"client": "user", "server": "frontend", "connection_type": ""}},
    ]
    read = points(request(counter("traces_service_graph_request_total", edges)))
    assert [(p.client, p.server, p.virtual) for p in read] == [
        (ROOT_CALLER, "frontend", "client"),
        ("checkout", "stripe", "server"),
        (ROOT_CALLER, "frontend", "client"),
        ("user", "frontend", None),  # a service named user, called directly
    ]


def test_failed_requests_are_their_own_measure():
    message = request(
        counter("traces_service_graph_request_failed_total", [{"attributes": EDGE, "value": 3}])
    )
    (point,) = points(message)
    assert point.measure == Measure.FAILED and point.value == 3


def test_series_are_named_by_attributes_and_sender():
    one = points(request(counter("traces_service_graph_request_total", [{"attributes": EDGE}])))
    failed = EDGE | {"failed": True}
    other = points(request(counter("traces_service_graph_request_total", [{"attributes": failed}])))
    elsewhere = points(
        request(
            counter("traces_service_graph_request_total", [{"attributes": EDGE}]),
            resource={"service.instance.id": "collector-2"},
        )
    )
    again = points(request(counter("traces_service_graph_request_total", [{"attributes": EDGE}])))
    assert one[0].series == again[0].series and one[0].sender == again[0].sender
    assert one[0].series != other[0].series and one[0].sender == other[0].sender
    assert one[0].series != elsewhere[0].series and one[0].sender != elsewhere[0].sender


# --- spanmetrics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scope", "measure"),
    [
        ("traces.span.metrics.calls", "spanmetricsconnector", Measure.REQUESTS),
        ("traces.span.metrics.duration", "spanmetricsconnector", Measure.LATENCY),
        ("calls", "spanmetricsconnector", Measure.REQUESTS),
        ("duration", "spanmetricsconnector", Measure.LATENCY),
        ("acme.red.calls", "spanmetricsconnector", Measure.REQUESTS),
        ("traces_span_metrics_calls_total", "", Measure.REQUESTS),
        ("traces_span_metrics_duration_milliseconds", "", Measure.LATENCY),
    ],
)
def test_spanmetrics_names_of_every_version_are_read(name, scope, measure):
    if measure == Measure.REQUESTS:
        metric = counter(name, [{"attributes": SERVED, "value": 7}])
    else:
        metric = explicit(name, [{"attributes": SERVED, "counts": [7, 0, 0]}])
    (point,) = points(request(metric, scope=scope))
    assert (point.source, point.measure, point.value) == ("spanmetrics", measure, 7)
    assert (point.client, point.server, point.connection_type) == ("", "checkout", "direct")
    assert point.endpoint == "GET /orders/{id}"
    if measure == Measure.LATENCY:
        assert point.histogram.bounds_ns == (1e6, 2e6)  # milliseconds, spanmetrics' default


def test_a_metric_of_another_name_or_scope_is_counted_as_unread():
    message = request(
        counter("calls", [{"attributes": SERVED}, {"attributes": SERVED}]),  # no scope: an app's
        counter("http.server.request.count", [{"attributes": {}}]),
    )
    export = read_message(message)
    assert export.records == [] and export.unread == {"calls": 2, "http.server.request.count": 1}


@pytest.mark.parametrize(
    ("kind", "status", "served"),
    [
        ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR", ("direct", True)),
        ("SERVER", "Error", ("direct", True)),
        ("SPAN_KIND_CONSUMER", "STATUS_CODE_OK", ("messaging_system", False)),
        (5, 0, ("messaging_system", False)),
        ("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", None),
        ("SPAN_KIND_INTERNAL", "STATUS_CODE_UNSET", None),
    ],
)
def test_only_server_and_consumer_spans_are_read_with_their_status(kind, status, served):
    values = SERVED | {"span.kind": kind, "status.code": status}
    metric = counter("calls", [{"attributes": values}])
    read = points(request(metric, scope="spanmetricsconnector"))
    if served is None:
        assert read == []
    else:
        assert [(p.connection_type, p.failed) for p in read] == [served]


def test_dimensions_name_the_endpoint_and_the_http_status_better():
    routed = SERVED | {
        "span.name": "GET",
        "http.route": "/orders/{id}",
        "http.request.method": "get",
        "http.response.status_code": 503,
    }
    client_error = SERVED | {"http.status_code": "404"}
    consumer = SERVED | {"span.kind": "SPAN_KIND_CONSUMER", "span.name": "process shipments"}
    named = consumer | {"messaging.destination.name": "shipment-events"}
    metric = counter("calls", [{"attributes": a} for a in (routed, client_error, consumer, named)])
    read = points(request(metric, scope="spanmetricsconnector"))
    assert [(p.endpoint, p.failed, p.client_error) for p in read] == [
        ("GET /orders/{id}", True, False),
        ("GET /orders/{id}", False, True),
        ("shipments", False, False),
        ("shipment-events", False, False),
    ]


def test_the_service_comes_from_the_resource_when_the_point_leaves_it_out():
    values = {k: v for k, v in SERVED.items() if k != "service.name"}
    message = request(
        counter("calls", [{"attributes": values}]),
        scope="spanmetricsconnector",
        resource={"service.name": "checkout", "deployment.environment.name": "prod"},
    )
    records = read_message(message).records
    assert records[0] == Resource("checkout", None, "prod", None)
    assert records[1].server == "checkout"


# --- Quarantine ------------------------------------------------------------------------------


def test_unusable_points_are_quarantined_with_position_and_reason():
    gauge = metrics_pb2.Metric(name="traces_service_graph_request_total")
    gauge.gauge.data_points.add(attributes=attributes(EDGE), time_unix_nano=T, as_int=1)
    bad_buckets = explicit(
        "traces_service_graph_request_client", [{"attributes": EDGE, "counts": [1, 2]}]
    )
    bad_unit = explicit(
        "traces_service_graph_request_client",
        [{"attributes": EDGE, "counts": [1, 0, 0]}],
        unit="By",
    )
    no_server = counter("traces_service_graph_request_total", [{"attributes": {"client": "a"}}])
    odd_type = counter(
        "traces_service_graph_request_total", [{"attributes": EDGE | {"connection_type": "pipe"}}]
    )
    no_temporality = counter("traces_service_graph_request_total", [{"attributes": EDGE}], 0)
    found = quarantined(request(gauge, bad_buckets, bad_unit, no_server, odd_type, no_temporality))
    assert [q.position for q in found] == [
        f"resourceMetrics[0].scopeMetrics[0].metrics[{m}] {name!r} dataPoints[0]"
        for m, name in enumerate(
            ["traces_service_graph_request_total", *["traces_service_graph_request_client"] * 2]
            + ["traces_service_graph_request_total"] * 3
        )
    ]
    assert [q.reason for q in found] == [
        "a gauge is not the counter 'traces_service_graph_request_total' is",
        "2 bucket counts for 2 bounds (there must be one more)",
        "the unit 'By' is not a unit of time (s, ms, us, ns)",
        "a servicegraph point names no client or no server",
        "the connection_type 'pipe' is none of '', 'direct', 'messaging_system', 'database',"
        " 'virtual_node'",
        "the aggregation temporality is not set (cumulative or delta)",
    ]
    assert all('"attributes"' in q.excerpt for q in found)


def test_a_histogram_whose_buckets_do_not_add_up_is_quarantined():
    metric = explicit(
        "traces_service_graph_request_client", [{"attributes": EDGE, "counts": [1, 1, 1]}]
    )
    metric.histogram.data_points[0].count = 5
    (found,) = quarantined(request(metric))
    assert found.reason == "the buckets hold 3 values, the count says 5"


def test_a_point_without_a_time_takes_its_resources_latest_and_a_stale_marker_is_left():
    metric = counter(
        "traces_service_graph_request_total",
        [{"attributes": EDGE, "time": 0}, {"attributes": EDGE | {"failed": True}, "time": T + 5}],
    )
    stale = counter("traces_service_graph_request_failed_total", [{"attributes": EDGE}])
    stale.sum.data_points[0].flags = 1  # no recorded value: the series ended
    read = points(request(metric, stale))
    assert [p.time_ns for p in read] == [T + 5, T + 5]


def test_exponential_histograms_are_read_and_negative_durations_refused():
    metric = metrics_pb2.Metric(name="duration", unit="s")
    metric.exponential_histogram.aggregation_temporality = DELTA
    good = metric.exponential_histogram.data_points.add(
        attributes=attributes(SERVED),
        start_time_unix_nano=T - 1,
        time_unix_nano=T,
        count=4,
        sum=0.5,
        scale=3,
        zero_count=1,
        max=0.3,
    )
    good.positive.offset = -20
    good.positive.bucket_counts.extend([1, 2])
    bad = metric.exponential_histogram.data_points.add()
    bad.CopyFrom(good)
    bad.negative.bucket_counts.extend([1])
    bad.count = 5
    records = read_message(request(metric, scope="spanmetricsconnector")).records
    point, refused = records
    assert isinstance(point.histogram, ExponentialBuckets) and not point.cumulative
    assert (point.histogram.scale, point.histogram.offset, point.histogram.counts) == (
        3,
        -20,
        (1, 2),
    )
    assert point.histogram.unit_ns == 1e9 and point.histogram.max_ns == pytest.approx(0.3e9)
    assert refused.reason == "negative buckets hold values: a duration is never below zero"


# --- Bodies ----------------------------------------------------------------------------------


def _hex_exemplars(document: dict) -> dict:
    """OTLP/JSON writes exemplar ids in hex (proto3's JSON in base64)."""
    for resource in document["resourceMetrics"]:
        for scope in resource["scopeMetrics"]:
            for metric in scope["metrics"]:
                for point in next(iter(v for v in metric.values() if isinstance(v, dict)))[
                    "dataPoints"
                ]:
                    for exemplar in point.get("exemplars", []):
                        exemplar["traceId"] = base64.b64decode(exemplar["traceId"]).hex()
    return document


def test_protobuf_and_json_bodies_read_the_same():
    metric = counter("calls", [{"attributes": SERVED, "value": 3}])
    exemplar = metric.sum.data_points[0].exemplars.add(time_unix_nano=T, as_double=12.5)
    exemplar.trace_id = bytes(range(16))
    message = request(metric, scope="spanmetricsconnector")
    document = _hex_exemplars(json_format.MessageToDict(message))
    document["resourceMetrics"][0]["someFieldFromTheFuture"] = 1
    from_json = read_json(orjson.dumps(document)).records
    assert from_json == read_protobuf(message.SerializeToString()).records
    assert from_json[0].value == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON at line 1 column 2"),
        (b"[1, 2]", "not an OTLP ExportMetricsServiceRequest: not a JSON object"),
        (b'{"resourceMetrics": 7}', "not an OTLP ExportMetricsServiceRequest"),
    ],
)
def test_json_that_is_no_export_request_is_refused_with_the_reason(body, reason):
    with pytest.raises(CollectorError, match=reason.replace("(", r"\(")):
        read_json(body)


def test_protobuf_that_does_not_decode_is_refused():
    with pytest.raises(CollectorError, match="not an OTLP ExportMetricsServiceRequest"):
        read_protobuf(b"\x0a\xff\xff\xff\xff\x0f")


def test_durations_and_counts_beyond_what_the_store_holds_are_quarantined():
    huge_bound = explicit(CLIENT, [{"attributes": EDGE, "counts": [1, 0, 0], "bounds": [1, 1e300]}])
    huge_sum = explicit(CLIENT, [{"attributes": EDGE, "counts": [1, 0, 0], "sum": 1e12}])
    exponential = metrics_pb2.Metric(name=CLIENT, unit="s")
    exponential.exponential_histogram.aggregation_temporality = CUMULATIVE
    far = exponential.exponential_histogram.data_points.add(
        attributes=attributes(EDGE), time_unix_nano=T, count=1, scale=-10
    )
    far.positive.offset = 3
    far.positive.bucket_counts.append(1)
    huge_count = counter(
        "traces_service_graph_request_total", [{"attributes": EDGE, "value": 2**60}]
    )
    found = quarantined(request(huge_bound, huge_sum, exponential, huge_count))
    assert [q.reason for q in found] == [
        "the bound 1e+300 is beyond any duration (292 years)",
        "the sum 1000000000000.0 is beyond any duration (292 years)",
        "a bucket holding values is beyond any duration (292 years)",
        f"the value {2**60} is beyond any count of calls",
    ]
