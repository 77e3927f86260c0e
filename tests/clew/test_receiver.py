"""The OTLP/HTTP receiver, on a real port, fed by the OpenTelemetry SDK's own exporter.

The Python SDK exports OTLP/HTTP in protobuf only; OTLP/JSON is sent with a plain HTTP client,
built from the SDK's own encoder output (``google.protobuf.json_format``, ids turned to hex as
OTLP/JSON has them).
"""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from werkzeug.serving import make_server

from clew import pipeline, receiver, store
from clew.app import create_app
from clew.cli import main
from collectors import otlp_proto
from tests.collectors.wire import varint
from tests.conftest import interruptible
from tests.stored import span_count, stored_spans

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
LIMIT = receiver.MAX_BODY_BYTES


# --- Spans from the SDK ----------------------------------------------------------------------


def sdk_spans(service: str = "checkout", traces: int = 3) -> list[ReadableSpan]:
    """Finished SDK spans: per trace a server span, a client call under it, a database call."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.receiver")
    for n in range(traces):
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/orders/{id}"},
        ):
            with tracer.start_as_current_span(
                "GET", kind=SpanKind.CLIENT, attributes={"server.address": "payments"}
            ) as call:
                if n == 0:
                    call.set_status(Status(StatusCode.ERROR, "payments timed out"))
            with tracer.start_as_current_span(
                "SELECT orders", kind=SpanKind.CLIENT, attributes={"db.system.name": "postgresql"}
            ):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def ids_of(spans: list[ReadableSpan]) -> set[tuple[str, str]]:
    return {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}


def proto_body(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def _hex_ids(value: object) -> object:
    """proto3 JSON has bytes in base64; OTLP/JSON has trace and span ids in hex."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId")
            else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def json_document(message: ExportTraceServiceRequest) -> dict:
    return _hex_ids(json_format.MessageToDict(message))  # type: ignore[return-value]


def json_body(spans: list[ReadableSpan]) -> bytes:
    return orjson.dumps(json_document(encode_spans(spans)))


def stored(engine: Engine) -> set[tuple[str, str]]:
    return {(s.trace_id, s.span_id) for s in stored_spans(engine)}


def quarantined(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source, position, reason FROM quarantine ORDER BY id"))
        return [tuple(row) for row in rows]


# --- A receiver on a real port ---------------------------------------------------------------


@dataclass
class Served:
    app: Flask
    engine: Engine
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{receiver.PATH}"

    def exporter(self, **kwargs) -> OTLPSpanExporter:
        return OTLPSpanExporter(endpoint=self.url, timeout=10, **kwargs)

    def post(
        self, body: bytes, content_type: str = PROTOBUF, **headers: str
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """A plain HTTP POST to the receiver: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Content-Type": content_type} | {
                k.replace("_", "-"): v for k, v in headers.items()
            }
            connection.request("POST", receiver.PATH, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


def _app(tmp_path: Path, name: str = "clew.db", **config) -> tuple[Flask, Engine]:
    engine = store.open_engine(str(tmp_path / name))
    store.upgrade(engine)
    return create_app({"DATABASE_URL": str(tmp_path / name), "AUTH": False, **config}), engine


def _serve(tmp_path: Path, **config) -> Iterator[Served]:
    app, engine = _app(tmp_path, **config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Served(app, engine, server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        receiver.stop(app)
        engine.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path)


def status_of(body: bytes, content_type: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a refusal, in the encoding the request used."""
    if content_type == JSON:
        return json_format.ParseDict(orjson.loads(body), status_pb2.Status())
    return status_pb2.Status.FromString(body)


def response_of(body: bytes, content_type: str) -> ExportTraceServiceResponse:
    if content_type == JSON:
        return json_format.ParseDict(orjson.loads(body), ExportTraceServiceResponse())
    return ExportTraceServiceResponse.FromString(body)


# --- The SDK's exporter ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate]
)
def test_sdk_exporter_over_protobuf_and_every_span_is_stored(served, compression):
    spans = sdk_spans(traces=5)
    exporter = served.exporter(compression=compression)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert stored(served.engine) == ids_of(spans)
    rows = stored_spans(served.engine)
    by_id = {row.span_id: (row.span_id, row.parent_span_id, row.service, row.name) for row in rows}
    for span in spans:
        row = by_id[f"{span.context.span_id:016x}"]
        parent = f"{span.parent.span_id:016x}" if span.parent else None
        assert row[1:] == (parent, "checkout", span.name)


def test_sdk_batches_are_idempotent_on_retry(served):
    spans = sdk_spans()
    exporter = served.exporter()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert span_count(served.engine) == len(spans)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_otlp_json_from_the_sdk_encoder_is_stored_and_answered_in_json(served, encoding):
    spans = sdk_spans(service="storefront")
    body = json_body(spans)
    headers = {}
    if encoding:
        body, headers = gzip.compress(body), {"Content_Encoding": encoding}
    status, response_headers, answer = served.post(
        body, "application/json; charset=utf-8", **headers
    )
    assert status == 200 and response_headers["Content-Type"] == JSON
    assert orjson.loads(answer) == {}  # a full success: no partial_success
    assert stored(served.engine) == ids_of(spans)


def test_protobuf_success_is_an_export_response_in_protobuf(served):
    status, headers, answer = served.post(proto_body(sdk_spans(traces=1)))
    assert status == 200 and headers["Content-Type"] == PROTOBUF
    assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")


def test_an_empty_export_is_a_success(served):
    assert served.post(b"")[0] == 200
    status, _, answer = served.post(b"{}", JSON)
    assert status == 200 and orjson.loads(answer) == {}
    assert stored(served.engine) == set()


# --- Refusals --------------------------------------------------------------------------------


def _bomb(decompressed: int) -> bytes:
    """A gzip body of ``decompressed`` zero bytes: a few tens of kilobytes on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(decompressed >> 20)]
    return b"".join([*parts, compressor.flush()])


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_gzip_bomb_is_refused_413_after_decompression(served, content_type):
    bomb = _bomb(64 << 20)
    assert len(bomb) < LIMIT // 100
    status, headers, answer = served.post(bomb, content_type, Content_Encoding="gzip")
    assert status == 413 and headers["Content-Type"] == content_type
    assert "larger than 20 MiB after decompression" in status_of(answer, content_type).message
    # The same limit holds for a plain body, one byte over.
    assert served.post(bytes(LIMIT + 1), content_type)[0] == 413
    assert stored(served.engine) == set()


def test_a_body_of_exactly_the_limit_is_received(served):
    # A real export padded with an unknown field (protobuf skips those) to exactly the limit.
    spans = sdk_spans()
    export = proto_body(spans)
    padding = LIMIT - len(export) - 1 - 4  # tag byte, 4-byte varint length
    assert len(varint(padding)) == 4
    body = export + b"\x7a" + varint(padding) + bytes(padding)
    assert len(body) == LIMIT
    assert served.post(body)[0] == 200
    assert served.post(gzip.compress(body), Content_Encoding="gzip")[0] == 200
    assert stored(served.engine) == ids_of(spans)


def test_decompression_never_holds_more_than_the_limit():
    bomb = _bomb(64 << 20)
    limit = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(receiver.Refused) as refused:
            receiver.read_body(io.BytesIO(bomb), "gzip", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.http_status == 413
    assert peak < 3 * limit  # the cap and one chunk, not the 64 MiB the bomb holds


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "reason"),
    [
        (b"\x0a\xff\xff", PROTOBUF, None, "not an OTLP ExportTraceServiceRequest"),
        (b'{"resourceSpans": []}', PROTOBUF, None, "not an OTLP ExportTraceServiceRequest"),
        (b"{not json", JSON, None, "invalid JSON at line 1 column 2"),
        (b"[1, 2]", JSON, None, "not an OTLP ExportTraceServiceRequest"),
        (b'{"resourceSpans": 7}', JSON, None, "no resourceSpans list"),
        (b"plainly not gzip", PROTOBUF, "gzip", "not valid gzip"),
        (gzip.compress(b"{}", mtime=0)[:-6], JSON, "gzip", "ends before its stream does"),
    ],
)
def test_garbage_is_refused_400_with_the_reason_in_a_status(
    served, body, content_type, encoding, reason
):
    headers = {"Content_Encoding": encoding} if encoding else {}
    status, response_headers, answer = served.post(body, content_type, **headers)
    assert status == 400 and response_headers["Content-Type"] == content_type
    message = status_of(answer, content_type)
    assert reason in message.message and message.code == 3  # INVALID_ARGUMENT


def test_unknown_media_types_and_encodings_are_refused_415(served):
    status, headers, answer = served.post(b"spans", "text/plain")
    assert status == 415 and headers["Content-Type"] == PROTOBUF
    assert "text/plain" in status_of(answer, PROTOBUF).message
    status, _, answer = served.post(json_body(sdk_spans(traces=1)), JSON, Content_Encoding="br")
    assert status == 415 and "'br'" in status_of(answer, JSON).message


# --- Partial success -------------------------------------------------------------------------


def test_bad_spans_are_rejected_in_partial_success_and_quarantined(served):
    spans = sdk_spans(traces=2)
    message = encode_spans(spans)
    bad = message.resource_spans[0].scope_spans[0].spans
    bad[1].span_id = b"\x01\x02\x03\x04"
    bad[4].trace_id = bytes(16)
    good = {(s.trace_id.hex(), s.span_id.hex()) for i, s in enumerate(bad) if i not in (1, 4)}
    assert len(good) == len(spans) - 2

    status, headers, answer = served.post(message.SerializeToString())
    assert status == 200 and headers["Content-Type"] == PROTOBUF
    partial = ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 2
    assert "span_id '01020304' is not 8 bytes" in partial.error_message
    assert stored(served.engine) == good

    rows = quarantined(served.engine)
    assert [r[0] for r in rows] == ["otlp-http", "otlp-http"]
    assert [r[1].split(": ", 1)[1] for r in rows] == [
        "resourceSpans[0].scopeSpans[0].spans[1]",
        "resourceSpans[0].scopeSpans[0].spans[4]",
    ]
    assert rows[0][1].startswith("request ") and "is not 16 bytes" in rows[1][2]
    # A retry of the same request files nothing twice.
    assert served.post(message.SerializeToString())[0] == 200
    assert quarantined(served.engine) == rows and stored(served.engine) == good


def test_bad_spans_in_json_are_rejected_in_partial_success(served):
    spans = sdk_spans(traces=1)
    document = json_document(encode_spans(spans))
    raw = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    raw[0]["spanId"] = "not-hex-at-all!!"
    status, headers, answer = served.post(orjson.dumps(document), JSON)
    assert status == 200 and headers["Content-Type"] == JSON
    partial = response_of(answer, JSON).partial_success
    assert partial.rejected_spans == 1 and "spanId 'not-hex-at-all!!'" in partial.error_message
    assert stored(served.engine) == {(s["traceId"], s["spanId"]) for s in raw[1:]}
    assert [r[0] for r in quarantined(served.engine)] == ["otlp-http"]


# --- The queue -------------------------------------------------------------------------------


class HeldWriter:
    """Wraps a receiver's writer so that a test holds it inside its first write."""

    def __init__(self, rx: receiver.Receiver, fail_on: pipeline.Batch | None = None) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.groups: list[int] = []
        self.fail_on = fail_on
        self._write = rx.write

    def __call__(self, engine: Engine, batches: list[pipeline.Batch]) -> list[int]:
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("the test never released the writer")
        self.groups.append(len(batches))
        if self.fail_on is not None and any(b is self.fail_on for b in batches):
            raise ValueError("a batch the store refuses")
        return self._write(engine, batches)


def _batch(spans: list[ReadableSpan]) -> pipeline.Batch:
    return pipeline.gather(otlp_proto.records_of_body(proto_body(spans)))


def test_a_full_queue_is_answered_503_with_retry_after_and_nothing_is_dropped(
    tmp_path, monkeypatch
):
    server = _serve(tmp_path, OTLP_QUEUE_SIZE=1)
    served = next(server)
    try:
        rx = receiver.receiver_of(served.app)
        held = HeldWriter(rx)
        monkeypatch.setattr(rx, "write", held)
        first, second, third = sdk_spans("a"), sdk_spans("b"), sdk_spans("c")
        writing = rx.submit(_batch(first))
        assert held.entered.wait(30)  # the writer holds the first batch inside its write
        waiting = rx.submit(_batch(second))  # and the queue (of one) is full

        for content_type, body in ((PROTOBUF, proto_body(third)), (JSON, json_body(third))):
            status, headers, answer = served.post(body, content_type)
            assert status == 503 and headers["Retry-After"] == "1"
            assert headers["Content-Type"] == content_type
            assert "queue is full" in status_of(answer, content_type).message
        assert not ids_of(third) & stored(served.engine)

        held.release.set()
        assert writing.done.wait(30) and waiting.done.wait(30)
        assert writing.error is None and waiting.error is None
        assert stored(served.engine) == ids_of(first) | ids_of(second)
        # The refused request is retried (as the SDK does on 503) and lands.
        assert served.exporter().export(third) is SpanExportResult.SUCCESS
        assert stored(served.engine) == ids_of(first) | ids_of(second) | ids_of(third)
    finally:
        server.close()


def test_waiting_batches_commit_together_and_a_failing_one_alone(tmp_path, monkeypatch):
    app, engine = _app(tmp_path, OTLP_QUEUE_SIZE=4)
    rx = receiver.receiver_of(app)
    first, good, bad = _batch(sdk_spans("a")), _batch(sdk_spans("b")), _batch(sdk_spans("c"))
    held = HeldWriter(rx, fail_on=bad)
    monkeypatch.setattr(rx, "write", held)
    tickets = [rx.submit(first)]
    assert held.entered.wait(30)
    tickets += [rx.submit(good), rx.submit(bad)]
    held.release.set()
    assert all(t.done.wait(30) for t in tickets)
    # The two that waited went as one group; it failed, so each was tried alone.
    assert held.groups == [1, 2, 1, 1]
    assert [t.error is None for t in tickets] == [True, True, False]
    assert tickets[0].inserted == tickets[1].inserted == 9
    assert sorted({s.service for s in stored_spans(engine)}) == ["a", "b"]
    receiver.stop(app)
    engine.dispose()


@pytest.mark.parametrize(
    ("error", "expected", "retry_after"),
    [
        (OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), 503, "1"),
        (ValueError("a bug"), 500, None),
    ],
)
def test_a_store_failure_is_retryable_only_when_transient(
    tmp_path, monkeypatch, error, expected, retry_after
):
    app, engine = _app(tmp_path)
    rx = receiver.receiver_of(app)

    def failing(engine, batches):
        raise error

    monkeypatch.setattr(rx, "write", failing)
    response = app.test_client().post(
        receiver.PATH, data=proto_body(sdk_spans(traces=1)), content_type=PROTOBUF
    )
    assert response.status_code == expected
    assert response.headers.get("Retry-After") == retry_after
    assert type(error).__name__ in status_pb2.Status.FromString(response.data).message
    receiver.stop(app)
    engine.dispose()


def test_the_writer_starts_with_the_first_batch_and_stops_after_draining(tmp_path, monkeypatch):
    app, engine = _app(tmp_path)
    rx = receiver.receiver_of(app)
    assert not rx.running  # nothing starts with the app
    held = HeldWriter(rx)
    monkeypatch.setattr(rx, "write", held)
    spans = [sdk_spans("a"), sdk_spans("b")]
    tickets = [rx.submit(_batch(spans[0]))]
    assert rx.running and held.entered.wait(30)
    tickets.append(rx.submit(_batch(spans[1])))
    stopping = threading.Thread(target=rx.stop)
    stopping.start()
    held.release.set()
    stopping.join(30)
    assert not stopping.is_alive() and not rx.running
    assert all(t.done.is_set() and t.error is None for t in tickets)
    assert stored(engine) == ids_of(spans[0]) | ids_of(spans[1])
    with pytest.raises(receiver.Refused, match="shutting down") as refused:
        rx.submit(_batch(sdk_spans("late")))
    assert refused.value.http_status == 503
    engine.dispose()


# --- The token hook --------------------------------------------------------------------------


def test_a_configured_token_is_required(tmp_path):
    server = _serve(tmp_path, OTLP_TOKEN="s3cret-token")
    served = next(server)
    try:
        body = proto_body(sdk_spans(traces=1))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            status, response_headers, answer = served.post(body, PROTOBUF, **headers)
            assert status == 401 and response_headers["WWW-Authenticate"].startswith("Bearer")
            assert "Authorization: Bearer" in status_of(answer, PROTOBUF).message
        status, headers, answer = served.post(json_body(sdk_spans(traces=1)), JSON)
        assert status == 401 and headers["Content-Type"] == JSON
        assert status_of(answer, JSON).code == 16  # UNAUTHENTICATED
        assert stored(served.engine) == set()

        spans = sdk_spans()
        exporter = served.exporter(headers={"Authorization": "Bearer s3cret-token"})
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert stored(served.engine) == ids_of(spans)
    finally:
        server.close()


def test_the_authorize_hook_decides_when_configured(tmp_path):
    seen: list[str | None] = []

    def authorize(token: str | None) -> bool:
        seen.append(token)
        return token == "ingest-scope"

    app, engine = _app(tmp_path, OTLP_AUTHORIZE=authorize)
    client = app.test_client()
    body = proto_body(sdk_spans(traces=1))
    assert client.post(receiver.PATH, data=body, content_type=PROTOBUF).status_code == 401
    ok = client.post(
        receiver.PATH,
        data=body,
        content_type=PROTOBUF,
        headers={"Authorization": "bearer ingest-scope"},
    )
    assert ok.status_code == 200 and seen == [None, "ingest-scope"]
    receiver.stop(app)
    engine.dispose()


def test_a_token_setting_that_is_not_a_string_is_refused_at_startup(tmp_path):
    with pytest.raises(ValueError, match="CLEW_OTLP_TOKEN"):
        _app(tmp_path, OTLP_TOKEN=12345)


# --- Apps and ports --------------------------------------------------------------------------


def test_two_apps_in_one_process_each_receive_into_their_own_store(tmp_path):
    (one, one_engine), (two, two_engine) = _app(tmp_path, "one.db"), _app(tmp_path, "two.db")
    spans_one, spans_two = sdk_spans("one"), sdk_spans("two")
    for app, spans in ((one, spans_one), (two, spans_two)):
        response = app.test_client().post(
            receiver.PATH, data=proto_body(spans), content_type=PROTOBUF
        )
        assert response.status_code == 200
    assert stored(one_engine) == ids_of(spans_one) and stored(two_engine) == ids_of(spans_two)
    assert receiver.receiver_of(one) is not receiver.receiver_of(two)
    for app, engine in ((one, one_engine), (two, two_engine)):
        receiver.stop(app)
        engine.dispose()


def test_the_receiver_only_port_serves_nothing_else(tmp_path):
    app, engine = _app(tmp_path)
    server = make_server("127.0.0.1", 0, receiver.receiver_only(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", "/api/graph")
        response = connection.getresponse()
        assert response.status == 404 and b"only POST /v1/traces" in response.read()
        connection.close()
        spans = sdk_spans()
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.port}/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert stored(engine) == ids_of(spans)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        receiver.stop(app)
        engine.dispose()


@pytest.mark.postgres
def test_the_receiver_writes_to_postgresql(pg_engine, postgres_url):
    app = create_app({"DATABASE_URL": postgres_url, "AUTH": False})
    spans = sdk_spans()
    response = app.test_client().post(receiver.PATH, data=proto_body(spans), content_type=PROTOBUF)
    assert response.status_code == 200
    assert stored(pg_engine) == ids_of(spans)
    receiver.stop(app)
    store.engine_of(app).dispose()


def test_serve_help_lists_the_otlp_port():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "--otlp-port" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_clew_serve_with_an_otlp_port_receives_and_stops_cleanly(tmp_path):
    from clew.store import accounts

    db = tmp_path / "serve.db"
    engine = store.open_engine(str(db))
    store.ensure_schema(engine)
    with engine.begin() as conn:  # clew serve requires an ingest token (auth is on)
        token = accounts.create_token(conn, "collector", "ingest", store.utcnow())[1]
    engine.dispose()
    sent_with = {"Authorization": f"Bearer {token}"}
    command = [sys.executable, "-c", "from clew.cli import main; main()", "serve", "--db", str(db)]
    command += ["--port", "0", "--otlp-port", str(_free_port())]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible
    )
    try:
        assert process.stdout is not None
        # Both sockets are bound before these lines are printed.
        otlp_line, console_line = (process.stdout.readline().decode() for _ in range(2))
        assert otlp_line.startswith("OTLP/HTTP receiver on http://127.0.0.1:"), otlp_line
        assert console_line.startswith("Clew console on http://127.0.0.1:"), console_line
        otlp_url = otlp_line.split()[-1]
        console_port = int(console_line.split()[3].rsplit(":", 1)[1].rstrip("/"))
        alone, beside = sdk_spans("alone"), sdk_spans("beside")
        anonymous = OTLPSpanExporter(endpoint=otlp_url).export(sdk_spans("anonymous"))
        assert anonymous is SpanExportResult.FAILURE  # 401: no token
        exporter = OTLPSpanExporter(endpoint=otlp_url, headers=sent_with)
        assert exporter.export(alone) is SpanExportResult.SUCCESS
        beside_url = f"http://127.0.0.1:{console_port}{receiver.PATH}"
        exporter = OTLPSpanExporter(endpoint=beside_url, headers=sent_with)
        assert exporter.export(beside) is SpanExportResult.SUCCESS
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()
        assert "create the first with `clew users add NAME --role admin`" in stderr.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    engine = store.open_engine(str(db))
    assert stored(engine) == ids_of(alone) | ids_of(beside)
    engine.dispose()
