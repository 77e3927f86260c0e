"""A local stand-in for a Jaeger or Tempo query API, and the answers they give, for tests.

The answers are built as the real servers build them: Tempo's from spans the OpenTelemetry SDK
made, encoded by the SDK's own OTLP encoder (protobuf as Tempo sends it for ``Accept:
application/protobuf``; its JSON with protobuf's base64 ids, enum names and ``batches``, as
Tempo's ``jsonpb`` marshaller writes it); Jaeger's from the corpus's query API documents, and
its 404 as ``cmd/query/app/http_handler.go`` writes it.
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from google.protobuf.json_format import MessageToDict, ParseDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

PROTOBUF = "application/protobuf"
JSON = "application/json"
#: Jaeger's answer for an id it does not have (HTTP 404).
JAEGER_NOT_FOUND = orjson.dumps(
    {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": 404, "msg": "trace not found"}],
    }
)


@dataclass
class Answer:
    """What the fake answers on one path."""

    body: bytes = b""
    content_type: str | None = JSON
    status: int = 200
    delay_s: float = 0.0  # before the status line
    with_length: bool = True  # without Content-Length the body ends when the connection closes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class QueryApiFake:
    """The answers by request path, and every request seen as (path, headers)."""

    url: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        fake: QueryApiFake = self.server.fake  # type: ignore[attr-defined]
        fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        # Unknown paths get what Go's mux answers.
        answer = fake.answers.get(self.path) or Answer(b"404 page not found\n", "text/plain", 404)
        time.sleep(answer.delay_s)
        try:
            self.send_response(answer.status)
            if answer.content_type:
                self.send_header("Content-Type", answer.content_type)
            if answer.with_length:
                self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up waiting (the timeout tests)
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> Iterator[QueryApiFake]:
    """Run a fake query API on a free local port until the generator is closed."""
    fake = QueryApiFake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# --- Spans from the SDK, and Tempo's answers ----------------------------------------------------


def failing_trace() -> list[ReadableSpan]:
    """One trace over three services as the SDK records it: the shop's server span calls the
    stock service, whose server span fails (503) after a database call."""
    memory = InMemorySpanExporter()
    providers = []

    def tracer(service: str):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
        return provider.get_tracer("tests.trace_apis")

    shop, stock = tracer("shop"), tracer("stock")
    with shop.start_as_current_span(
        "GET /cart",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/cart"},
    ) as root:
        root.set_status(Status(StatusCode.ERROR))
        with shop.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "GET", "server.address": "stock"},
        ) as call:
            call.set_status(Status(StatusCode.ERROR))
            with stock.start_as_current_span(
                "GET /stock/{sku}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": "GET", "http.response.status_code": 503},
            ) as served:
                with stock.start_as_current_span(
                    "SELECT stock", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
                ):
                    pass
                served.set_status(Status(StatusCode.ERROR, "stock pool exhausted"))
    for provider in providers:
        provider.shutdown()
    return list(memory.get_finished_spans())


def trace_id_of(spans: list[ReadableSpan]) -> str:
    return f"{spans[0].context.trace_id:032x}"


def tempo_protobuf(spans: list[ReadableSpan]) -> bytes:
    """Tempo's protobuf answer: its ``Trace`` message, ``TracesData`` on the wire."""
    return encode_spans(spans).SerializeToString()


_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _ids(value: object, convert) -> object:
    if isinstance(value, dict):
        return {
            k: convert(v) if k in _ID_KEYS and v else _ids(v, convert) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_ids(v, convert) for v in value]
    return value


def otlp_json(spans: list[ReadableSpan]) -> dict:
    """The spans as OTLP/JSON (hex ids), as a file or an OTLP/HTTP client sends them."""
    protojson = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return _ids(protojson, lambda v: base64.b64decode(v).hex())  # type: ignore[return-value]


def tempo_json(spans: list[ReadableSpan], shape: str = "v1") -> bytes:
    """Tempo's JSON answer in one of its shapes: ``v1`` (``/api/traces``: ``batches``, base64
    ids, enum names), ``v2`` (``/api/v2/traces``: the trace under ``trace``), ``tempo1`` (Tempo
    1.x: ``instrumentationLibrarySpans``)."""
    protojson = MessageToDict(encode_spans(spans))
    if shape == "v2":
        return orjson.dumps({"trace": protojson, "status": "complete"})
    batches = copy.deepcopy(protojson["resourceSpans"])
    if shape == "tempo1":
        for batch in batches:
            scopes = batch.pop("scopeSpans")
            for scope in scopes:
                scope["instrumentationLibrary"] = scope.pop("scope", {})
            batch["instrumentationLibrarySpans"] = scopes
    return orjson.dumps({"batches": batches})


def protobuf_of_otlp_json(request: dict) -> bytes:
    """An OTLP/JSON request (hex ids) as the protobuf Tempo would answer with."""
    protojson = _ids(request, lambda v: base64.b64encode(bytes.fromhex(v)).decode())
    return ParseDict(protojson, ExportTraceServiceRequest()).SerializeToString()
