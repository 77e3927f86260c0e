"""Connector metrics from files (``clew ingest``), beside ``POST /v1/metrics``: the Collector's
file exporter's lines and frames counted through the same ``metric_series`` as the receiver's
bodies, so that a file and the receiver given the same exports store the same rollups; each
file read once, a growing one resumed, a bad line quarantined with its file, line and reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from sqlalchemy import Engine, text

from clew import metrics, receiver, store
from clew.app import create_app
from clew.cli import main
from clew.pipeline import ingest
from clew.store.queries import Window
from tests import otlp
from tests.clew.test_otlp_metrics import (
    MINUTE,
    PROTOBUF,
    SECOND,
    T0,
    Connector,
    ServiceGraph,
    SpanMetrics,
)
from tests.collectors.test_otlp_metrics_files import framed, json_line

#: What a store holds of connector metrics, table by table (ids and times of writing left out).
STORED = {
    "edge_rollups": "minute, client, server, connection_type, endpoint, source, count, errors,"
    " client_errors, duration_sum_ns, duration_max_ns, histogram",
    "edge_rollup_blocks": "block_minutes, minute, client, server, connection_type, endpoint,"
    " source, count, errors, client_errors, duration_sum_ns, duration_max_ns, histogram",
    "endpoints": "service, protocol, method, route, first_seen_ns, last_seen_ns",
    "services": "name, kind, namespace, environment, version",
    "metric_series": "series, start_ns, sender, first_ns, time_ns, state",
}


def connector_exports() -> list[ExportMetricsServiceRequest]:
    """Three rounds of exports of a servicegraph connector (new series: counted whole), a
    spanmetrics connector running for a day (its first export a baseline) and a delta one, the
    last servicegraph export written twice (a retry)."""
    graph = ServiceGraph()
    checkout = SpanMetrics("checkout", start_ns=T0 - 86_400 * SECOND)
    payments = SpanMetrics("payments", start_ns=T0, delta=True)
    out = []
    for n in range(3):
        graph.calls("frontend", "checkout", [k / 1000 for k in range(1, 41)], failed=n + 1)
        graph.calls("user", "frontend", [0.15] * 5, connection_type="virtual_node")
        checkout.spans("GET /orders/{id}", "SERVER", [12.0] * (5 + n), errors=1)
        payments.spans("POST /payments", "SERVER", [30.0, 700.0, 45.0])
        at = T0 + (10 + 60 * n) * SECOND
        out += [encode_metrics(connector.collect(at)) for connector in (graph, checkout, payments)]
    out.append(out[-3])
    return out


def write_file(path: Path, messages: list[ExportMetricsServiceRequest], layout: str) -> Path:
    """``messages`` as the file exporter writes them (``json`` or ``proto``)."""
    if layout == "json":
        path.write_bytes(b"".join(json_line(m) for m in messages))
    else:
        path.write_bytes(framed([m.SerializeToString() for m in messages]))
    return path


def receive(database_url: str, messages: list[ExportMetricsServiceRequest]) -> None:
    """Each export posted to ``POST /v1/metrics`` of an app on the store (made or upgraded
    first, as ``clew serve`` does), one request each."""
    engine = store.open_engine(database_url)
    store.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": database_url, "AUTH": False})
    try:
        client = app.test_client()
        for message in messages:
            response = client.post(
                receiver.METRICS_PATH, data=message.SerializeToString(), content_type=PROTOBUF
            )
            assert response.status_code == 200, response.data
    finally:
        receiver.stop(app)
        store.engine_of(app).dispose()


def clew(*args: str) -> Result:
    """``clew ARGS`` in this process, the engines it opened closed afterwards (a process would
    end instead)."""
    opened: list[Engine] = []
    open_engine = store.open_engine

    def opening(url, **kwargs):
        opened.append(open_engine(url, **kwargs))
        return opened[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "open_engine", opening)
        result = CliRunner().invoke(main, list(args))
    for engine in opened:
        engine.dispose()
    return result


def stored(database_url: str) -> dict[str, list[tuple]]:
    engine = store.open_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                table: sorted(
                    tuple(row) for row in conn.execute(text(f"SELECT {columns} FROM {table}"))
                )
                for table, columns in STORED.items()
            }
    finally:
        engine.dispose()


@pytest.fixture
def exports() -> list[ExportMetricsServiceRequest]:
    return connector_exports()


@pytest.fixture
def received(tmp_path: Path, exports) -> dict[str, list[tuple]]:
    """What the receiver stored of the exports."""
    url = str(tmp_path / "received.db")
    receive(url, exports)
    return stored(url)


def _check_figures(database_url: str) -> None:
    """The scenario's figures, so that two stores agreeing cannot both be empty or wrong."""
    engine = store.open_engine(database_url)
    try:
        with engine.connect() as conn:
            (checkout,) = metrics.service_endpoints(conn, Window(), "checkout")
            (payments,) = metrics.service_endpoints(conn, Window(), "payments")
            series = metrics.edge_series(conn, Window(), "frontend", "checkout")
    finally:
        engine.dispose()
    assert [(m["minute"], round(m["rps"] * 60)) for m in series] == [
        (T0 // MINUTE, 40),
        (T0 // MINUTE + 1, 40),
        (T0 // MINUTE + 2, 40),
    ]
    assert (checkout["count"], checkout["errors"]) == (6 + 7, 2)  # the first export a baseline
    assert (payments["count"], payments["endpoint"]) == (9, "POST /payments")


@pytest.mark.parametrize("layout", ["json", "proto"])
def test_a_file_and_the_receiver_given_the_same_exports_store_the_same_rollups(
    tmp_path, exports, received, layout
):
    path = write_file(tmp_path / f"metrics.{layout}", exports, layout)
    db = str(tmp_path / "file.db")
    result = clew("ingest", str(path), "--db", db, "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    points = len(list(_points(exports)))
    resent = len(list(_points(exports[-1:])))  # the export written twice: counted once
    assert (report["files"], report["records"], report["quarantined"]) == (1, points, 0)
    assert (report["inserted"], report["duplicates"]) == (points - resent, resent)
    assert stored(db) == received
    _check_figures(db)


@pytest.mark.postgres
def test_a_file_on_postgresql_stores_what_the_receiver_stores(
    tmp_path, exports, received, pg_engine, postgres_url
):
    path = write_file(tmp_path / "metrics.json", exports, "json")
    result = clew("ingest", str(path), "--db", postgres_url, "--json")
    assert result.exit_code == 0, result.output
    assert stored(postgres_url) == received
    _check_figures(postgres_url)


def test_a_second_read_and_the_same_exports_in_another_file_add_nothing(
    tmp_path, exports, received
):
    path = write_file(tmp_path / "metrics.json", exports, "json")
    db = str(tmp_path / "file.db")
    assert clew("ingest", str(path), "--db", db).exit_code == 0
    again = orjson.loads(clew("ingest", str(path), "--db", db, "--json").stdout)
    assert (again["records"], again["inserted"]) == (0, 0)  # its checkpoint: not read again
    # The same exports, in another order under another name (another Collector's file, a
    # receiver that took them too): every point a duplicate.
    shuffled = write_file(tmp_path / "copy.pb", exports[3:] + exports[:3], "proto")
    copy = orjson.loads(clew("ingest", str(shuffled), "--db", db, "--json").stdout)
    assert copy["records"] > 0 and copy["inserted"] == 0
    assert copy["duplicates"] == copy["records"]
    assert stored(db) == received
    receive(db, exports)  # and what the receiver is sent again
    assert stored(db) == received


@pytest.mark.parametrize("layout", ["json", "proto"])
def test_a_growing_file_is_read_on_from_its_last_whole_export(
    tmp_path, engine, registry, exports, received, layout
):
    """``clew ingest --follow``'s reads: the file exporter appending, an export half written
    when a read comes; the last read in a parse worker process, as a large input is read."""
    path = tmp_path / f"metrics.{layout}"
    whole = write_file(path, exports, layout).read_bytes()
    first = len(write_file(path, exports[:4], layout).read_bytes())
    path.write_bytes(whole[: first + 25])
    reads = [ingest(engine, [path], registry, growing=True, worker=False)]
    assert reads[0].records > 0 and reads[0].quarantined == 0
    with engine.connect() as conn:
        (offset,) = conn.execute(text('SELECT "offset" FROM ingest_checkpoints')).one()
    assert offset == first
    path.write_bytes(whole)
    reads.append(ingest(engine, [path], registry, growing=True, worker=True))
    assert sum(r.quarantined for r in reads) == 0
    assert sum(r.records for r in reads) == len(list(_points(exports)))
    assert stored(str(engine.url.database)) == received


def test_a_bad_line_is_quarantined_with_its_file_line_and_reason_and_the_rest_kept(
    tmp_path, exports
):
    """And metrics Clew does not read (an application's, in the same file) are named in a note,
    as the receiver names them in its answer."""
    good = b"".join(json_line(m) for m in exports[:3])
    app = Connector("my.app", Resource({"service.name": "shop"}), T0)
    app.meter.create_counter("http.server.request.count").add(3)
    app_line = json_line(encode_metrics(app.collect(T0)))
    path = tmp_path / "metrics.json"
    path.write_bytes(
        good + b'{"resourceMetrics": [{"scopeMetrics": \n' + app_line + json_line(exports[3])
    )
    db = str(tmp_path / "file.db")
    result = clew("ingest", str(path), "--db", db)
    assert result.exit_code == 0, result.output
    assert "1 quarantined" in result.stdout
    assert f"{path}: line 4: invalid JSON at column" in result.stderr
    assert (
        "note: 1 data point of metrics Clew does not read (it reads the servicegraph and"
        " spanmetrics connectors') left: 'http.server.request.count'"
    ) in result.stderr
    engine = store.open_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT source, position, reason FROM quarantine")).all()
            series = metrics.edge_series(conn, Window(), "frontend", "checkout")
    finally:
        engine.dispose()
    assert [(source, position) for source, position, _ in rows] == [(str(path), "line 4")]
    assert [round(m["rps"] * 60) for m in series] == [40, 40]  # lines 1 and 6
    path.write_bytes(app_line)
    again = orjson.loads(clew("ingest", str(path), "--db", db, "--json").stdout)
    assert again["unread_metrics"] == {"http.server.request.count": 1}


def test_format_names_the_collector_and_a_file_of_spans_and_metrics_stores_both(tmp_path):
    """``--format otlp_metrics_json``; and one exporter in both pipelines: its file's spans go
    where traces go, its points where metrics go."""
    graph = ServiceGraph()
    graph.calls("frontend", "checkout", [0.01] * 3)
    spans = otlp.request({"shop": [otlp.span(7, 1, kind=2, name="GET /cart")]})
    path = tmp_path / "telemetry.out"
    message = encode_metrics(graph.collect(T0))
    path.write_bytes(json_line(message) + orjson.dumps(spans) + b"\n")
    db = str(tmp_path / "file.db")
    result = clew("ingest", str(path), "--format", "otlp_metrics_json", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["inserted"] == len(list(_points([message]))) + 1
    engine = store.open_engine(db)
    try:
        with engine.connect() as conn:
            totals = "SELECT source, SUM(count) FROM edge_rollups GROUP BY source"
            sources = dict(conn.execute(text(totals)).all())
    finally:
        engine.dispose()
    assert sources == {"servicegraph": 3, "trace": 1}
    unknown = clew("ingest", str(path), "--format", "otlp_metric_json", "--db", db)
    assert unknown.exit_code == 2 and "otlp_metrics_json, otlp_metrics_proto" in unknown.output


def _points(messages: list[ExportMetricsServiceRequest]) -> Iterator[object]:
    for message in messages:
        for resource in message.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    yield from getattr(metric, metric.WhichOneof("data")).data_points
