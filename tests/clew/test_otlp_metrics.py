"""Connector metrics at ``POST /v1/metrics``, on a real port, built with the OpenTelemetry SDK's own
``MeterProvider`` and sent by its OTLP/HTTP metric exporter, shaped as the Collector's
servicegraph and spanmetrics connectors emit them: their scope and metric names, their
attributes, an empty resource (servicegraph) or the spans' (spanmetrics), their default buckets,
no minimum or maximum on explicit histograms. Points are stamped with chosen times, so the
minutes they land in are known; what the console and ``clew graph --json`` show is checked.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from sqlalchemy import Engine, text
from werkzeug.serving import make_server

from clew import inventory, metrics, receiver, store
from clew.app import create_app
from clew.cli import main
from clew.pipeline import rollups
from clew.store import histogram, queries
from clew.store.cells import Cell
from clew.store.queries import EdgeTotals, Window
from tests.conftest import examples

MINUTE = 60_000_000_000
SECOND = 1_000_000_000
T0 = 1_795_000_000_000_000_000 // MINUTE * MINUTE
#: servicegraph's default latency buckets (seconds), and spanmetrics' (milliseconds).
SERVICEGRAPH_BOUNDS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5)
SERVICEGRAPH_BOUNDS += (10, 15)
SPANMETRICS_BOUNDS = tuple(b * 1000 for b in SERVICEGRAPH_BOUNDS)
PROTOBUF, JSON = "application/x-protobuf", "application/json"


# --- The connectors, made with the SDK -------------------------------------------------------


def stamped(data: MetricsData, start_ns: int, time_ns: int) -> MetricsData:
    """``data`` with every point's start and time set, and explicit histograms without their
    minimum and maximum (the connectors send neither)."""

    def point(p):
        p = dataclasses.replace(p, start_time_unix_nano=start_ns, time_unix_nano=time_ns)
        if isinstance(p, HistogramDataPoint):
            p = dataclasses.replace(p, min=None, max=None)
        return p

    def metric(m):
        data = dataclasses.replace(m.data, data_points=[point(p) for p in m.data.data_points])
        return dataclasses.replace(m, data=data)

    return MetricsData(
        [
            dataclasses.replace(
                rm,
                scope_metrics=[
                    dataclasses.replace(sm, metrics=[metric(m) for m in sm.metrics])
                    for sm in rm.scope_metrics
                ],
            )
            for rm in data.resource_metrics
        ]
    )


class Connector:
    """One connector's instruments in a MeterProvider of their own, read in memory and exported
    by the SDK's OTLP/HTTP exporter with chosen times. Cumulative series start at ``start_ns``;
    delta ones at the time of the export before."""

    def __init__(
        self,
        scope: str,
        resource: Resource,
        start_ns: int,
        delta: bool = False,
        exponential: bool = False,
    ) -> None:
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        self.reader = InMemoryMetricReader(
            preferred_temporality={Counter: temporality, Histogram: temporality}
        )
        exponential_view = View(
            instrument_type=Histogram, aggregation=ExponentialBucketHistogramAggregation()
        )
        views = [exponential_view]
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=resource, views=views if exponential else ()
        )
        self.meter = self.provider.get_meter(scope)
        self.start_ns, self.delta = start_ns, delta
        self.data: MetricsData | None = None

    def collect(self, at_ns: int) -> MetricsData:
        """The points recorded so far (since the last export, for delta), stamped ``at_ns``."""
        self.data = stamped(self.reader.get_metrics_data(), self.start_ns, at_ns)
        if self.delta:
            self.start_ns = at_ns
        return self.data

    def export(
        self, url: str, at_ns: int | None = None, data: MetricsData | None = None, **options
    ) -> MetricExportResult:
        """Export what was recorded (stamped ``at_ns``), else ``data``, else the last export
        again (a retry)."""
        if data is None:
            data = self.collect(at_ns) if at_ns is not None else self.data
        exporter = OTLPMetricExporter(endpoint=url, timeout=10, **options)
        try:
            return exporter.export(data)
        finally:
            exporter.shutdown()


class ServiceGraph(Connector):
    """The servicegraph connector: an empty resource, scope ``traces_service_graph``."""

    def __init__(self, start_ns: int = T0 - 30 * SECOND, **options) -> None:
        super().__init__("traces_service_graph", Resource({}), start_ns, **options)
        bounds = {"explicit_bucket_boundaries_advisory": SERVICEGRAPH_BOUNDS}
        self.requests = self.meter.create_counter("traces_service_graph_request_total")
        self.failed = self.meter.create_counter("traces_service_graph_request_failed_total")
        self.client = self.meter.create_histogram(
            "traces_service_graph_request_client", unit="s", **bounds
        )
        self.server = self.meter.create_histogram(
            "traces_service_graph_request_server", unit="s", **bounds
        )

    def calls(
        self,
        client: str,
        server: str,
        seconds: list[float],
        failed: int = 0,
        connection_type: str = "",
    ) -> None:
        """Edges as the connector counts them; the server side a fifth faster than the client,
        and 0 where no client span was seen (a root span's virtual ``user``)."""
        for n, duration in enumerate(seconds):
            attributes = {
                "client": client,
                "server": server,
                "connection_type": connection_type,
                "failed": n < failed,
            }
            self.requests.add(1, attributes)
            if n < failed:
                self.failed.add(1, attributes)
            from_user = client == "user" and connection_type == "virtual_node"
            self.client.record(0.0 if from_user else duration, attributes)
            self.server.record(duration * (1 if from_user else 0.8), attributes)


class SpanMetrics(Connector):
    """The spanmetrics connector: the spans' resource, scope ``spanmetricsconnector``, its
    default namespace and unit."""

    def __init__(self, service: str, start_ns: int = T0 - 30 * SECOND, **options) -> None:
        super().__init__(
            "spanmetricsconnector", Resource({"service.name": service}), start_ns, **options
        )
        self.service = service
        self.calls_ = self.meter.create_counter("traces.span.metrics.calls")
        self.duration = self.meter.create_histogram(
            "traces.span.metrics.duration",
            unit="ms",
            explicit_bucket_boundaries_advisory=SPANMETRICS_BOUNDS,
        )

    def spans(self, name: str, kind: str, milliseconds: list[float], errors: int = 0) -> None:
        for n, duration in enumerate(milliseconds):
            attributes = {
                "service.name": self.service,
                "span.name": name,
                "span.kind": f"SPAN_KIND_{kind}",
                "status.code": "STATUS_CODE_ERROR" if n < errors else "STATUS_CODE_UNSET",
            }
            self.calls_.add(1, attributes)
            self.duration.record(duration, attributes)


# --- A receiver on a real port ---------------------------------------------------------------


@dataclass
class Served:
    app: Flask
    engine: Engine
    url: str
    port: int

    @property
    def metrics_url(self) -> str:
        return f"{self.url}{receiver.METRICS_PATH}"

    def post(self, body: bytes, content_type: str = PROTOBUF, **headers: str):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Content-Type": content_type} | headers
            connection.request("POST", receiver.METRICS_PATH, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def graph(self) -> dict:
        """``clew graph --json`` of the store, its engine closed afterwards (a process would
        end instead)."""
        opened: list[Engine] = []
        open_engine = store.open_engine

        def opening(url, **kwargs):
            opened.append(open_engine(url, **kwargs))
            return opened[-1]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "open_engine", opening)
            result = CliRunner().invoke(main, ["graph", "--db", self.url_of_db, "--json"])
        for engine in opened:
            engine.dispose()
        assert result.exit_code == 0, result.output
        return orjson.loads(result.output)

    @property
    def url_of_db(self) -> str:
        return self.app.config["DATABASE_URL"]


def _serve(database_url: str, engine: Engine, **config) -> Iterator[Served]:
    app = create_app({"DATABASE_URL": database_url, "AUTH": False, **config})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Served(app, engine, f"http://127.0.0.1:{server.port}", server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        receiver.stop(app)
        store.engine_of(app).dispose()


@pytest.fixture
def served(engine: Engine, tmp_path: Path) -> Iterator[Served]:
    yield from _serve(str(tmp_path / "clew.db"), engine)


def edges_of(document: dict) -> dict[tuple[str, str], dict]:
    return {(e["client"], e["server"]): e for e in document["edges"]}


def within_buckets(reported_ms: float, values_s: list[float], q: float, bounds: tuple) -> bool:
    """Whether a reported quantile lies in the sender's bucket that holds the true one (the
    precision its histogram allows), give or take Clew's 2 %."""
    ranked = sorted(values_s)
    true = ranked[max(1, math.ceil(q * len(ranked))) - 1]
    low = max((b for b in bounds if b < true), default=0.0)
    high = min((b for b in bounds if b >= true), default=math.inf)
    return low * 0.98 <= reported_ms / 1000 <= high * 1.02


# --- servicegraph into the graph -------------------------------------------------------------


def _servicegraph_landscape(served: Served) -> None:
    """Two exports a minute apart, the second sent twice: the central scenario, on any store."""
    graph = ServiceGraph()
    graph.calls("frontend", "checkout", [n / 1000 for n in range(1, 101)], failed=5)
    graph.calls("checkout", "orders", [0.003] * 20, connection_type="database")
    graph.calls("user", "frontend", [0.15] * 10, connection_type="virtual_node")
    graph.calls("checkout", "payments-api", [0.9] * 4, failed=1, connection_type="virtual_node")
    graph.calls("shipping", "tracking", [0.03] * 6, connection_type="messaging_system")
    assert graph.export(served.metrics_url, T0 + 10 * SECOND) is MetricExportResult.SUCCESS
    graph.calls("frontend", "checkout", [n / 1000 for n in range(1, 51)], failed=5)
    assert graph.export(served.metrics_url, T0 + 70 * SECOND) is MetricExportResult.SUCCESS
    assert graph.export(served.metrics_url) is MetricExportResult.SUCCESS  # a retry


def _check_servicegraph_landscape(served: Served) -> None:
    document = served.graph()
    edges = edges_of(document)
    assert set(edges) == {
        ("frontend", "checkout"),
        ("checkout", "orders"),
        ("client", "frontend"),
        ("checkout", "payments-api"),
        ("shipping", "tracking"),
    }
    calls = edges[("frontend", "checkout")]
    assert (calls["count"], calls["errors"], calls["sources"]) == (150, 10, ["servicegraph"])
    assert calls["connection_type"] == "direct" and calls["max_ms"] == 100.0  # its bucket's bound
    durations = [n / 1000 for n in range(1, 101)] + [n / 1000 for n in range(1, 51)]
    for q in (0.5, 0.95, 0.99):
        reported = calls[f"p{round(q * 100)}_ms"]
        assert within_buckets(reported, durations, q, SERVICEGRAPH_BOUNDS), (q, reported)
    assert edges[("checkout", "orders")]["connection_type"] == "database"
    assert edges[("checkout", "orders")]["count"] == 20
    root = edges[("client", "frontend")]
    assert root["connection_type"] == "virtual_node" and root["count"] == 10
    assert 100 <= root["p50_ms"] <= 204  # the server's 150 ms, not the virtual client's 0
    assert edges[("checkout", "payments-api")]["errors"] == 1
    messaging = edges[("shipping", "tracking")]
    assert messaging["connection_type"] == "messaging_system"
    assert 9.8 <= messaging["p50_ms"] <= 51  # the consumer's 24 ms, in (10, 50]
    kinds = {node["id"]: node["kind"] for node in document["nodes"]}
    assert kinds == {
        "client": "client",
        "frontend": "service",
        "checkout": "service",
        "orders": "database",
        "payments-api": "external",
        "shipping": "service",
        "tracking": "service",
    }
    with served.engine.connect() as conn:
        series = metrics.edge_series(conn, Window(), "frontend", "checkout")
    assert [(m["minute"], round(m["rps"] * 60)) for m in series] == [
        (T0 // MINUTE, 100),
        (T0 // MINUTE + 1, 50),
    ]


def test_servicegraph_edges_reach_the_graph_and_a_resent_export_counts_once(served):
    _servicegraph_landscape(served)
    _check_servicegraph_landscape(served)


@pytest.mark.postgres
def test_servicegraph_edges_reach_the_graph_on_postgresql(pg_engine, postgres_url):
    for served in _serve(postgres_url, pg_engine):
        _servicegraph_landscape(served)
        _check_servicegraph_landscape(served)


def test_a_restarted_sender_and_a_counter_that_went_down_count_from_zero(served):
    first = ServiceGraph(start_ns=T0)
    first.calls("frontend", "checkout", [0.01] * 10)
    first.export(served.metrics_url, T0 + 10 * SECOND)
    restarted = ServiceGraph(start_ns=T0 + 60 * SECOND)  # a new start time
    restarted.calls("frontend", "checkout", [0.01] * 3)
    restarted.export(served.metrics_url, T0 + 90 * SECOND)
    forgotten = ServiceGraph(start_ns=T0 + 60 * SECOND)  # the same start, a lower count
    forgotten.calls("frontend", "checkout", [0.01] * 2)
    forgotten.export(served.metrics_url, T0 + 150 * SECOND)
    edge = edges_of(served.graph())[("frontend", "checkout")]
    assert edge["count"] == 10 + 3 + 2
    with served.engine.connect() as conn:
        series = metrics.edge_series(conn, Window(), "frontend", "checkout")
    assert [round(m["rps"] * 60) for m in series] == [10, 3, 2]


def test_a_long_running_senders_first_export_is_a_baseline_and_its_new_edges_count(served):
    graph = ServiceGraph(start_ns=T0 - 86_400 * SECOND)  # running for a day
    graph.calls("frontend", "checkout", [0.01] * 1000)
    graph.export(served.metrics_url, T0)
    assert served.graph()["edges"] == []  # a day of calls is not put in one minute
    graph.calls("frontend", "checkout", [0.01] * 7)
    graph.export(served.metrics_url, T0 + 60 * SECOND)
    graph.calls("frontend", "search", [0.01] * 4)  # a new edge of a sender already known
    graph.export(served.metrics_url, T0 + 120 * SECOND)
    edges = edges_of(served.graph())
    assert edges[("frontend", "checkout")]["count"] == 7
    assert edges[("frontend", "search")]["count"] == 4


def test_a_sender_whose_clock_runs_ahead_leaves_the_others_last_points_be(served):
    now = time.time_ns() // MINUTE * MINUTE
    graph = ServiceGraph(start_ns=now - 2 * MINUTE)
    graph.calls("frontend", "checkout", [0.01] * 5)
    graph.export(served.metrics_url, now - MINUTE)
    ahead = SpanMetrics("checkout", start_ns=now + 10 * 86_400 * SECOND)
    ahead.spans("GET /orders/{id}", "SERVER", [10.0])
    ahead.export(served.metrics_url, now + 10 * 86_400 * SECOND + SECOND)
    graph.calls("frontend", "checkout", [0.01] * 3)
    graph.export(served.metrics_url, now)
    assert edges_of(served.graph())[("frontend", "checkout")]["count"] == 8


def test_receivers_share_the_last_points_through_the_store(tmp_path, engine):
    """Two receivers (two apps on one store) behind a load balancer: each export counts once
    whichever takes it, sent again to the other, or overtaken by the next one."""
    db = str(tmp_path / "clew.db")
    one, two = _serve(db, engine), _serve(db, engine)
    first, second = next(one), next(two)
    try:
        graph = ServiceGraph()
        exports = []
        for n, (target, other) in enumerate(((first, second), (second, first)) * 2):
            graph.calls("frontend", "checkout", [0.01] * 5)
            graph.export(target.metrics_url, T0 + n * MINUTE)
            graph.export(other.metrics_url)  # the same export again, to the other
            exports.append(graph.data)
            if n:  # the one before, overtaken: its count is in this one's already
                graph.export(other.metrics_url, data=exports[n - 1])
        edge = edges_of(first.graph())[("frontend", "checkout")]
        assert edge["count"] == 20
        with first.engine.connect() as conn:
            series = metrics.edge_series(conn, Window(), "frontend", "checkout")
        assert [round(m["rps"] * 60) for m in series] == [5, 5, 5, 5]
    finally:
        one.close()
        two.close()


# --- spanmetrics into endpoints --------------------------------------------------------------


def test_spanmetrics_feed_endpoints_and_the_inventory_never_edges(served):
    checkout = SpanMetrics("checkout")
    checkout.spans("GET /orders/{id}", "SERVER", [12.0] * 6 + [700.0] * 2, errors=2)
    checkout.spans("process shipment-events", "CONSUMER", [30.0] * 4)
    checkout.spans("GET", "CLIENT", [5.0] * 5)  # a call out: names no callee, not read
    assert checkout.export(served.metrics_url, T0 + 10 * SECOND) is MetricExportResult.SUCCESS
    assert served.graph()["edges"] == []
    with served.engine.connect() as conn:
        served_rows = metrics.service_endpoints(conn, Window(), "checkout")
        rows = {row["endpoint"]: row for row in served_rows}
        found = inventory.inventory(conn, Window())
    route = rows["GET /orders/{id}"]
    assert (route["count"], route["errors"], route["client"], route["callers"]) == (8, 2, "", [])
    assert 9.8 <= route["p50_ms"] <= 51 and 392 <= route["p99_ms"] <= 816
    assert rows["shipment-events"]["connection_type"] == "messaging_system"
    assert rows["shipment-events"]["count"] == 4
    listed = {(e.service, e.protocol, e.method, e.route): e for e in found}
    http_endpoint = listed[("checkout", "http", "GET", "/orders/{id}")]
    assert (http_endpoint.status, http_endpoint.calls, http_endpoint.errors) == ("shadow", 8, 2)
    assert http_endpoint.callers == []
    assert listed[("checkout", "messaging", "receive", "shipment-events")].calls == 4


def test_delta_points_are_taken_as_they_are_and_a_resent_one_counts_once(served):
    checkout = SpanMetrics("checkout", start_ns=T0, delta=True)
    checkout.spans("GET /orders/{id}", "SERVER", [20.0] * 3)
    checkout.export(served.metrics_url, T0 + 30 * SECOND)
    checkout.export(served.metrics_url)  # a retry of the same points
    checkout.spans("GET /orders/{id}", "SERVER", [20.0] * 2, errors=1)
    checkout.export(served.metrics_url, T0 + 60 * SECOND)
    with served.engine.connect() as conn:
        (row,) = metrics.service_endpoints(conn, Window(), "checkout")
    assert (row["count"], row["errors"]) == (5, 1)


def test_exponential_histograms_keep_their_precision_across_cumulative_exports(served):
    checkout = SpanMetrics("checkout", exponential=True)
    first = [float(n) for n in range(1, 201)]
    checkout.spans("GET /orders/{id}", "SERVER", first)
    checkout.export(served.metrics_url, T0 + 10 * SECOND)
    later = [5000.0 + 100 * n for n in range(100)]  # a wider range: the scale coarsens
    checkout.spans("GET /orders/{id}", "SERVER", later)
    checkout.export(served.metrics_url, T0 + 70 * SECOND)
    with served.engine.connect() as conn:
        (row,) = metrics.service_endpoints(conn, Window(), "checkout")
    assert row["count"] == 300
    ranked = sorted(first + later)
    for q in (0.5, 0.95):
        true = ranked[math.ceil(q * 300) - 1]
        assert abs(row[f"p{round(q * 100)}_ms"] - true) / true < 0.06, (q, row)
    assert row["max_ms"] == pytest.approx(14900.0, rel=1e-6)  # the exponential point's own


# --- Both families on the same traffic -------------------------------------------------------


def _traced_calls(traces: int) -> list:
    """SDK spans of ``traces`` calls frontend → checkout GET /orders/{id}."""
    memory = InMemorySpanExporter()
    frontend = TracerProvider(resource=Resource.create({"service.name": "frontend"}))
    checkout = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    for provider in (frontend, checkout):
        provider.add_span_processor(SimpleSpanProcessor(memory))
    for _ in range(traces):
        call = frontend.get_tracer("t").start_span("GET", kind=SpanKind.CLIENT)
        checkout.get_tracer("t").start_span(
            "GET /orders/{id}",
            context=set_span_in_context(call),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/orders/{id}"},
        ).end()
        call.end()
    return list(memory.get_finished_spans())


def test_metrics_and_spans_of_the_same_calls_are_counted_once(served):
    spans = _traced_calls(3)  # sampled: three of the ten calls
    response = served.app.test_client().post(
        receiver.PATH, data=encode_spans(spans).SerializeToString(), content_type=PROTOBUF
    )
    assert response.status_code == 200
    start = min(span.start_time for span in spans)
    graph = ServiceGraph(start_ns=start - SECOND)
    graph.calls("frontend", "checkout", [0.02] * 10)
    graph.export(served.metrics_url, start + 5 * SECOND)
    checkout = SpanMetrics("checkout", start_ns=start - SECOND)
    checkout.spans("GET /orders/{id}", "SERVER", [15.0] * 10, errors=1)
    checkout.export(served.metrics_url, start + 5 * SECOND)
    edge = edges_of(served.graph())[("frontend", "checkout")]
    assert edge["count"] == 10 and edge["sources"] == ["servicegraph", "trace"]
    with served.engine.connect() as conn:
        (row,) = metrics.service_endpoints(conn, Window(), "checkout")
        items = inventory.inventory(conn, Window())
    assert (row["endpoint"], row["count"], row["errors"]) == ("GET /orders/{id}", 10, 1)
    assert (row["client"], row["callers"]) == ("frontend", ["frontend"])  # the traces' caller
    (listed,) = [e for e in items if e.service == "checkout"]
    assert (listed.calls, listed.callers) == (10, ["frontend"])


# --- What is refused -------------------------------------------------------------------------


def _status(body: bytes, content_type: str) -> status_pb2.Status:
    if content_type == JSON:
        return json_format.ParseDict(orjson.loads(body), status_pb2.Status())
    return status_pb2.Status.FromString(body)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, "not an OTLP ExportMetricsServiceRequest"),
        (b'{"resourceMetrics": [', JSON, "invalid JSON at line 1"),
        (b'{"resourceMetrics": [{"scopeMetrics": 3}]}', JSON, "ExportMetricsServiceRequest"),
    ],
)
def test_a_body_that_is_no_export_request_is_refused_400_with_the_reason(
    served, body, content_type, reason
):
    status, headers, answer = served.post(body, content_type)
    assert status == 400 and headers["Content-Type"] == content_type
    assert reason in _status(answer, content_type).message


def test_the_receivers_limits_hold_for_metrics_too(served):
    bomb = gzip.compress(bytes(receiver.MAX_BODY_BYTES + 1), compresslevel=1)
    status, _, answer = served.post(bomb, PROTOBUF, **{"Content-Encoding": "gzip"})
    assert status == 413 and "after decompression" in _status(answer, PROTOBUF).message
    status, _, answer = served.post(b"{}", "text/plain")
    assert status == 415 and "is not application/x-protobuf" in _status(answer, PROTOBUF).message


def test_unusable_points_are_rejected_in_partial_success_and_quarantined(served):
    graph = ServiceGraph()
    graph.calls("frontend", "checkout", [0.01] * 4)
    message = encode_metrics(graph.collect(T0 + 10 * SECOND))
    for metric in message.resource_metrics[0].scope_metrics[0].metrics:
        if metric.name == "traces_service_graph_request_client":
            metric.unit = "By"  # no unit of time
    status, _, answer = served.post(message.SerializeToString())
    assert status == 200
    partial = ExportMetricsServiceResponse.FromString(answer).partial_success
    assert partial.rejected_data_points == 1
    assert "the unit 'By' is not a unit of time" in partial.error_message
    with served.engine.connect() as conn:
        rows = conn.execute(text("SELECT source, position, reason FROM quarantine")).all()
    assert [(source, reason) for source, _, reason in rows] == [
        ("otlp-http-metrics", "the unit 'By' is not a unit of time (s, ms, us, ns)")
    ]
    assert "'traces_service_graph_request_client' dataPoints[0]" in rows[0][1]
    assert edges_of(served.graph())[("frontend", "checkout")]["count"] == 4  # the rest is kept


def test_metrics_clew_does_not_read_are_named_in_a_warning(served):
    app_metrics = Connector("my.app", Resource({"service.name": "shop"}), T0)
    app_metrics.meter.create_counter("http.server.request.count").add(3)
    body = encode_metrics(app_metrics.collect(T0)).SerializeToString()
    status, _, answer = served.post(gzip.compress(body), PROTOBUF, **{"Content-Encoding": "gzip"})
    partial = ExportMetricsServiceResponse.FromString(answer).partial_success
    assert status == 200 and partial.rejected_data_points == 0
    assert "1 data point of metrics Clew does not read" in partial.error_message
    assert "'http.server.request.count'" in partial.error_message


def test_otlp_json_is_received_and_answered_in_json(served):
    checkout = SpanMetrics("checkout")
    checkout.spans("GET /orders/{id}", "SERVER", [12.0] * 3)
    document = json_format.MessageToDict(encode_metrics(checkout.collect(T0)))
    status, headers, answer = served.post(orjson.dumps(document), JSON)
    assert status == 200 and headers["Content-Type"] == JSON and orjson.loads(answer) == {}
    with served.engine.connect() as conn:
        assert metrics.service_endpoints(conn, Window(), "checkout")[0]["count"] == 3


def test_a_token_is_required_when_configured_and_the_otlp_port_serves_metrics(engine, tmp_path):
    served = _serve(str(tmp_path / "clew.db"), engine, OTLP_TOKEN="s3cret-token")
    running = next(served)
    port = make_server("127.0.0.1", 0, receiver.receiver_only(running.app), threaded=True)
    thread = threading.Thread(target=port.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        graph = ServiceGraph()
        graph.calls("frontend", "checkout", [0.01] * 2)
        assert graph.export(running.metrics_url, T0) is MetricExportResult.FAILURE
        status, headers, answer = running.post(b"", PROTOBUF)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert _status(answer, PROTOBUF).code == 16  # UNAUTHENTICATED
        otlp_port = f"http://127.0.0.1:{port.port}{receiver.METRICS_PATH}"
        sent = graph.export(otlp_port, headers={"Authorization": "Bearer s3cret-token"})
        assert sent is MetricExportResult.SUCCESS
        assert edges_of(running.graph())[("frontend", "checkout")]["count"] == 2
    finally:
        port.shutdown()
        port.server_close()
        thread.join()
        served.close()


# --- Precision of the conversion -------------------------------------------------------------


def test_a_bucket_is_spread_evenly_and_its_count_kept_exactly():
    buckets = histogram.from_explicit((10e6, 50e6), (0, 1000, 0))
    assert sum(buckets.values()) == 1000
    assert histogram.quantile(buckets, 0.5) == pytest.approx(30e6, rel=0.021)
    assert histogram.quantile(buckets, 0.99) == pytest.approx(49.6e6, rel=0.021)
    single = histogram.from_explicit((10e6, 50e6), (0, 1, 0))
    assert histogram.quantile(single, 0.5) == pytest.approx(30e6, rel=0.021)  # the middle
    beyond = histogram.from_explicit((10e6, 50e6), (0, 0, 3))
    assert histogram.quantile(beyond, 0.5) == pytest.approx(50e6, rel=0.021)  # at least this
    bounded = histogram.from_explicit((10e6, 50e6), (0, 0, 4), max_ns=90e6)
    assert 50e6 < histogram.quantile(bounded, 0.99) <= 90e6 * 1.02


# --- Families --------------------------------------------------------------------------------


def _totals(count: int, errors: int, source: str) -> EdgeTotals:
    return EdgeTotals("frontend", "checkout", "direct", {source}, count=count, errors=errors)


def test_the_family_that_saw_more_is_chosen_traces_and_logs_on_a_tie():
    trace, metric = _totals(5, 1, "trace"), _totals(5, 2, "servicegraph")
    assert queries.one_family({"trace": trace, "metrics": metric}).errors == 1
    chosen = queries.one_family({"trace": trace, "metrics": _totals(9, 3, "servicegraph")})
    assert (chosen.count, chosen.errors, chosen.sources) == (9, 3, {"trace", "servicegraph"})
    gateway = _totals(9, 0, "gateway")
    chosen = queries.one_family({"gateway": gateway, "metrics": _totals(9, 3, "servicegraph")})
    assert (chosen.errors, chosen.sources) == (0, {"gateway", "servicegraph"})


def test_a_messaging_hop_the_traces_draw_through_its_topic_is_not_drawn_again(engine):
    contributions = rollups.Contributions()
    minute = T0 // MINUTE
    for key, count in (
        (("shipping", "kafka/shipments", "shipments", "trace"), 3),
        (("kafka/shipments", "tracking", "shipments", "trace"), 3),
        (("shipping", "tracking", "", "servicegraph"), 10),
        (("billing", "ledger", "", "servicegraph"), 4),  # no topic known: drawn
    ):
        client, server, endpoint, source = key
        cell = Cell()
        cell.count = count
        contributions.cells[(minute, client, server, "messaging_system", endpoint, source)] = cell
    with engine.begin() as conn:
        rollups.apply(conn, contributions)
    with engine.connect() as conn:
        drawn = {(e.client, e.server): e.count for e in queries.edge_totals(conn, Window())}
        series = queries.minute_series(conn, Window())
    assert drawn == {
        ("shipping", "kafka/shipments"): 3,
        ("kafka/shipments", "tracking"): 3,
        ("billing", "ledger"): 4,
    }
    assert [m.count for m in series] == [10]


@settings(max_examples=examples(200), deadline=None)
@given(
    bounds=st.lists(
        st.floats(min_value=1.0, max_value=1e11, allow_nan=False), min_size=1, max_size=12
    ).map(lambda values: tuple(sorted(set(values)))),
    data=st.data(),
)
def test_every_value_of_a_bucket_lands_within_its_range(bounds, data):
    counts = tuple(
        data.draw(
            st.lists(st.integers(0, 10_000), min_size=len(bounds) + 1, max_size=len(bounds) + 1)
        )
    )
    buckets = histogram.from_explicit(bounds, counts)
    assert sum(buckets.values()) == sum(counts)
    lowest = next((i for i, n in enumerate(counts) if n), None)
    if lowest is None:
        assert buckets == {}
        return
    highest = max(i for i, n in enumerate(counts) if n)
    floor = bounds[lowest - 1] if lowest else 0.0
    ceiling = bounds[highest] if highest < len(bounds) else bounds[-1] * histogram.GAMMA
    for index in buckets:
        value = histogram.bucket_value(index)
        assert floor / histogram.GAMMA <= value <= ceiling * histogram.GAMMA
