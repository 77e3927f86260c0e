"""The OTLP/HTTP receiver: ``POST /v1/traces``, the path OpenTelemetry SDKs export to, and
``POST /v1/metrics`` for the metrics of an OpenTelemetry Collector's servicegraph and spanmetrics
connectors (``collectors.otlp_metrics``, ``clew.pipeline.metric_points``).

Protobuf (``application/x-protobuf``) and JSON (``application/json``) arrive on the same paths,
plain, gzip or deflate; the answer is an ``ExportTraceServiceResponse`` (an
``ExportMetricsServiceResponse``) or, on failure, a ``google.rpc.Status``, in the request's own
encoding. Bodies are read through a cap of 20 MiB after decompression, so a gzip bomb never costs
more than that. Both paths take the same tokens and limits. Points that cannot be used are
quarantined and counted in the answer's partial success (``rejected_data_points``); points of
metrics Clew does not read are named in its ``error_message`` as a warning, and left.

Request threads parse and hand batches to one writer thread per app through a bounded queue; a
full queue is answered 503 with ``Retry-After``, which OTLP clients retry. The writer takes
whatever waits in the queue and commits it in one transaction (a group commit).

**A 200 is sent after the batch is committed, not when it is queued.** OTLP's success means the
server has taken responsibility for the data, and the exporter then forgets it; acknowledging
spans that sit in memory would lose them silently on a crash, which DESIGN rules out. The cost
is latency per request, not throughput: the group commit writes the batches of every waiting
request together, so the rate follows the store's batch rate, not one commit per request. A
request whose commit takes too long is answered 503 and retried by the client; a retry cannot
count twice, because spans are unique on (trace id, span id), the rollups skip spans already
stored, a metric point no later than its series' last one adds nothing (a delta point: one of the
last counted), and quarantine positions carry a digest of the request body.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import queue
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from clew import auth, pipeline, store
from clew.pipeline import Batch, metric_points
from clew.pipeline.metric_points import MetricBatch
from clew.records import Quarantined
from collectors import CollectorError, otlp_json, otlp_metrics, otlp_proto

log = logging.getLogger(__name__)

PATH = "/v1/traces"
#: Where the Collector's connectors send their metrics (``otlphttp`` exporters append it).
METRICS_PATH = "/v1/metrics"
#: The app's liveness and database check, served on the receiver's own port too.
HEALTH_PATH = "/healthz"
#: The API token scopes that may send traces and metrics when auth is on.
INGEST_SCOPES = ("ingest", "admin")
#: The names the receiver's quarantined spans and metric points are filed under.
SOURCE = "otlp-http"
METRICS_SOURCE = "otlp-http-metrics"
#: The largest body accepted, after decompression (the OTLP file collectors share it).
MAX_BODY_BYTES = otlp_proto.MAX_MESSAGE_BYTES
#: Seconds a client is asked to wait before retrying a refused request.
RETRY_AFTER_SECONDS = 1
#: How long a request waits for its batch to commit before it is answered 503.
COMMIT_WAIT_SECONDS = 30.0
#: The most spans the writer commits in one transaction (the file pipeline's batch size).
GROUP_SPANS = pipeline.BATCH_SPANS

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": "application/protobuf", JSON: JSON}
#: zlib window bits per Content-Encoding (None: not compressed).
_ENCODINGS: dict[str, int | None] = {
    "identity": None,
    "gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
_CHUNK = 64 * 1024

# google.rpc.Code values, for the Status of each refusal (OTLP lets servers leave code unset).
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _INTERNAL, _UNAVAILABLE, _UNAUTHENTICATED = 3, 8, 13, 14, 16

bp = Blueprint("otlp_receiver", __name__)


class Refused(Exception):
    """A request the receiver answers with an HTTP error and a ``google.rpc.Status``."""

    def __init__(self, http_status: int, code: int, message: str, retry_after: bool = False):
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message
        self.retry_after = retry_after


# --- Reading a body ------------------------------------------------------------------------


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def _wire_limit(limit: int) -> int:
    """The most compressed bytes a body within ``limit`` can take: deflate's worst case adds
    5 bytes per 16 KiB stored block, plus headers."""
    return limit + limit // 2048 + 1024


def read_body(
    stream: IO[bytes], content_encoding: str | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """The request body decoded per ``Content-Encoding``, read in chunks; ``Refused`` (413) as
    soon as more than ``limit`` bytes come out, so no more than that is ever held."""
    name = (content_encoding or "identity").strip().lower() or "identity"
    if name not in _ENCODINGS:
        raise Refused(415, _INVALID_ARGUMENT, f"Content-Encoding {name!r} is not gzip or deflate")
    wbits = _ENCODINGS[name]
    too_large = Refused(
        413, _RESOURCE_EXHAUSTED, f"the body is larger than {_size(limit)} after decompression"
    )
    out = io.BytesIO()  # getvalue() hands over its buffer without a copy
    size = wire = 0
    decompressor = zlib.decompressobj(wbits) if wbits is not None else None
    while chunk := stream.read(_CHUNK):
        wire += len(chunk)
        if wire > _wire_limit(limit):
            raise too_large
        if decompressor is None:
            size += out.write(chunk)
            if size > limit:
                raise too_large
            continue
        data = chunk
        try:
            while data:
                if decompressor.eof:
                    if name != "gzip":
                        raise Refused(400, _INVALID_ARGUMENT, "data after the deflate stream")
                    decompressor = zlib.decompressobj(wbits)  # the next gzip member
                size += out.write(decompressor.decompress(data, limit + 1 - size))
                if size > limit:
                    raise too_large
                data = (
                    decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
                )
        except zlib.error as error:
            raise Refused(
                400, _INVALID_ARGUMENT, f"the body is not valid {name}: {error}"
            ) from None
    if decompressor is not None and not decompressor.eof:
        raise Refused(400, _INVALID_ARGUMENT, f"the {name} body ends before its stream does")
    return out.getvalue()


# --- The writer ----------------------------------------------------------------------------


@dataclass(eq=False)
class Ticket:
    """One request's batch on its way to the store; ``done`` is set once it committed or failed."""

    batch: Batch | MetricBatch | None
    done: threading.Event = field(default_factory=threading.Event)
    inserted: int = 0
    error: BaseException | None = None

    def settle(self, inserted: int = 0, error: BaseException | None = None) -> None:
        self.inserted, self.error, self.batch = inserted, error, None
        self.done.set()


def write_group(engine: Engine, batches: list[Batch | MetricBatch]) -> list[int]:
    """Write ``batches`` in one transaction; returns the spans each one inserted (the metric
    points each one counted)."""
    with engine.begin() as conn:
        return [batch.write(conn, _source_of(batch))[0] for batch in batches]


def _source_of(batch: Batch | MetricBatch) -> str:
    return METRICS_SOURCE if isinstance(batch, MetricBatch) else SOURCE


_STOP = object()


class Receiver:
    """One app's queue and writer thread; the thread starts with the first batch submitted."""

    def __init__(self, engine: Engine, queue_size: int) -> None:
        self.engine = engine
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        #: How a group of batches is written (a test may hold it to fill the queue).
        self.write: Callable[[Engine, list[Batch | MetricBatch]], list[int]] = write_group
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the writer thread is alive (it starts with the first batch submitted)."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, batch: Batch | MetricBatch) -> Ticket:
        """Queue ``batch`` for the writer; ``Refused`` (503) when the queue is full or stopped."""
        ticket = Ticket(batch)
        with self._lock:
            if self._closed:
                raise Refused(503, _UNAVAILABLE, "the receiver is shutting down", retry_after=True)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="clew-otlp-writer", daemon=True
                )
                self._thread.start()
            try:
                self.queue.put_nowait(ticket)
            except queue.Full:
                message = f"the write queue is full ({self.queue.maxsize} requests); retry later"
                raise Refused(503, _UNAVAILABLE, message, retry_after=True) from None
        return ticket

    def stop(self, timeout: float = COMMIT_WAIT_SECONDS) -> None:
        """Refuse new batches, let the writer commit those queued, and wait for it to end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        try:
            self.queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("OTLP writer did not drain its queue in %s s; stopping without it", timeout)
            return
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            group, spans, stopping = [first], first.batch.span_count, False
            while spans < GROUP_SPANS:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
                spans += item.batch.span_count
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[Ticket]) -> None:
        try:
            inserted = self.write(self.engine, [t.batch for t in group])
        except Exception as error:
            if len(group) == 1:
                log.exception("OTLP batch could not be written")
                group[0].settle(error=error)
                return
            # One batch may be what fails the group: each alone, so the others still commit.
            for ticket in group:
                try:
                    (count,) = self.write(self.engine, [ticket.batch])
                except Exception as single:
                    log.exception("OTLP batch could not be written")
                    ticket.settle(error=single)
                else:
                    ticket.settle(count)
            return
        for ticket, count in zip(group, inserted, strict=True):
            ticket.settle(count)


# --- The app's side ------------------------------------------------------------------------

_EXTENSION = "clew.receiver"


def init_app(app: Flask) -> None:
    """Register ``POST /v1/traces`` and ``POST /v1/metrics`` on ``app`` and give it a receiver
    (no thread starts yet)."""
    token = app.config.get("OTLP_TOKEN")
    if token is not None and not isinstance(token, str):
        # from_prefixed_env reads values as JSON: CLEW_OTLP_TOKEN=123 arrives as a number.
        raise ValueError("CLEW_OTLP_TOKEN must be a string that does not read as a JSON literal")
    app.extensions[_EXTENSION] = Receiver(store.engine_of(app), int(app.config["OTLP_QUEUE_SIZE"]))
    app.register_blueprint(bp)


def receiver_of(app: Flask) -> Receiver:
    """The receiver ``init_app`` gave ``app``."""
    return app.extensions[_EXTENSION]


def stop(app: Flask) -> None:
    """Stop ``app``'s writer after it has committed every batch queued (on shutdown)."""
    receiver_of(app).stop()


#: The security headers of the one answer the receiver's own port makes without the app (the
#: app's answers carry its own, ``clew.app``): plain text, so nothing may load, run or frame.
_PLAIN_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def receiver_only(app: Flask) -> Callable[[dict, Callable], Iterable[bytes]]:
    """``app`` as a WSGI application answering only the receiver's paths (its own OTLP port),
    and ``/healthz`` for the health checks of a load balancer in front of receivers."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in (PATH, METRICS_PATH, HEALTH_PATH):
            return app(environ, start_response)
        body = (
            f"not found: this port serves only POST {PATH}, POST {METRICS_PATH}"
            f" and GET {HEALTH_PATH}\n"
        ).encode()
        start_response(
            "404 Not Found",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *_PLAIN_SECURITY_HEADERS,
            ],
        )
        return [body]

    return application


def _authorized(app: Flask) -> bool:
    """Whether the request may send traces or metrics. An ``OTLP_AUTHORIZE(token or None) ->
    bool`` hook, when configured, decides alone. Otherwise the ``OTLP_TOKEN`` setting is let
    in, and with ``AUTH`` on so is an API token of scope ingest or admin (``clew tokens
    create``); with ``AUTH`` off and no ``OTLP_TOKEN``, every request is."""
    hook = app.config.get("OTLP_AUTHORIZE")
    expected = app.config.get("OTLP_TOKEN")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    if hook is not None:
        return bool(hook(token))
    if expected and token is not None and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    if auth.enabled(app):
        return auth.token_scope(app, token) in INGEST_SCOPES
    return not expected


def _drain(stream: IO[bytes]) -> None:
    """Read what is left of a refused body (within reason), so that the client, which sends
    all of it before reading, gets the answer rather than a reset connection."""
    left = _wire_limit(MAX_BODY_BYTES)
    while left > 0 and (chunk := stream.read(min(_CHUNK, left))):
        left -= len(chunk)


def _encode(message: Any, media_type: str) -> bytes:
    if media_type == JSON:
        return orjson.dumps(json_format.MessageToDict(message))
    return message.SerializeToString()


def _refusal(refused: Refused, media_type: str) -> Response:
    status = status_pb2.Status(code=refused.code, message=refused.message)
    response = Response(_encode(status, media_type), refused.http_status, content_type=media_type)
    if refused.retry_after:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if refused.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="clew"'
    return response


def _with_request_positions(batch: Batch | MetricBatch, body: bytes) -> None:
    """Quarantine positions named by the request's digest: unique per request, and the same on
    a client's retry of it (so a retry files nothing twice)."""
    digest = hashlib.blake2b(body, digest_size=8).hexdigest()
    batch.quarantined = [
        Quarantined(f"request {digest}: {q.position}", q.reason, q.excerpt)
        for q in batch.quarantined
    ]


def _store(receiver: Receiver, batch: Batch | MetricBatch) -> None:
    """Hand ``batch`` to the writer and wait for its commit; ``Refused`` if it does not come."""
    ticket = receiver.submit(batch)
    if not ticket.done.wait(COMMIT_WAIT_SECONDS):
        message = f"the store did not commit within {COMMIT_WAIT_SECONDS:g} s; retry later"
        raise Refused(503, _UNAVAILABLE, message, retry_after=True)
    error = ticket.error
    if error is None:
        return
    if isinstance(error, OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        message = f"the store is unavailable ({type(error.orig).__name__}); retry later"
        raise Refused(503, _UNAVAILABLE, message, retry_after=True)
    what = "metric points" if isinstance(batch, MetricBatch) else "spans"
    raise Refused(500, _INTERNAL, f"the {what} could not be stored ({type(error).__name__})")


def _accepted(batch: Batch, media_type: str) -> Response:
    response = ExportTraceServiceResponse()
    rejected = batch.quarantined
    if rejected:
        first, count = rejected[0], len(rejected)
        response.partial_success.rejected_spans = count
        response.partial_success.error_message = (
            f"{count} span{'s' if count != 1 else ''} rejected (kept in the quarantine as"
            f" {SOURCE}); the first: {first.position}: {first.reason}"
        )
    return Response(_encode(response, media_type), 200, content_type=media_type)


def _read(app: Flask) -> tuple[str, bytes]:
    """The request's media type and its body, decoded; ``Refused`` when it may not send, or
    sends what cannot be read."""
    if not _authorized(app):
        message = "a valid 'Authorization: Bearer <token>' is required"
        raise Refused(401, _UNAUTHENTICATED, message)
    media_type = _MEDIA_TYPES.get(request.mimetype)
    if media_type is None:
        got = request.content_type or "none"
        message = f"Content-Type {got!r} is not {PROTOBUF} or {JSON}"
        raise Refused(415, _INVALID_ARGUMENT, message)
    encoding = request.headers.get("Content-Encoding")
    length = request.content_length
    if length is not None and length > _wire_limit(MAX_BODY_BYTES):
        message = f"the body is larger than {_size(MAX_BODY_BYTES)}"
        raise Refused(413, _RESOURCE_EXHAUSTED, message)
    try:
        return media_type, read_body(request.stream, encoding)
    except Refused:
        _drain(request.stream)
        raise


@bp.post(PATH)
def export_traces() -> Response:
    """Receive one OTLP ``ExportTraceServiceRequest``; 200 once its spans are committed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    media_type = _MEDIA_TYPES.get(request.mimetype)
    try:
        media_type, body = _read(app)
        parse = otlp_json.records_of_body if media_type == JSON else otlp_proto.records_of_body
        try:
            records = parse(body)
        except CollectorError as error:
            raise Refused(400, _INVALID_ARGUMENT, str(error)) from None
        batch = pipeline.gather(records)
        del records
        if batch.quarantined:
            _with_request_positions(batch, body)
        del body
        if batch.span_count or batch.quarantined:
            _store(receiver_of(app), batch)
    except Refused as refused:
        return _refusal(refused, media_type or PROTOBUF)
    return _accepted(batch, media_type)


@bp.post(METRICS_PATH)
def export_metrics() -> Response:
    """Receive one OTLP ``ExportMetricsServiceRequest``; 200 once its points are committed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    media_type = _MEDIA_TYPES.get(request.mimetype)
    try:
        media_type, body = _read(app)
        read = otlp_metrics.read_json if media_type == JSON else otlp_metrics.read_protobuf
        try:
            export = read(body)
        except CollectorError as error:
            raise Refused(400, _INVALID_ARGUMENT, str(error)) from None
        batch = metric_points.gather(export.records)
        if batch.quarantined:
            _with_request_positions(batch, body)
        del body
        if batch.points or batch.resources or batch.quarantined:
            _store(receiver_of(app), batch)
    except Refused as refused:
        return _refusal(refused, media_type or PROTOBUF)
    return _metrics_accepted(batch, export.unread, media_type)


def _metrics_accepted(batch: MetricBatch, unread: dict[str, int], media_type: str) -> Response:
    """The ``ExportMetricsServiceResponse``: the points quarantined as rejected, or else (OTLP's
    warning) the metrics left unread."""
    response = ExportMetricsServiceResponse()
    rejected = batch.quarantined
    if rejected:
        first, count = rejected[0], len(rejected)
        response.partial_success.rejected_data_points = count
        response.partial_success.error_message = (
            f"{count} data point{'s' if count != 1 else ''} rejected (kept in the quarantine as"
            f" {METRICS_SOURCE}); the first: {first.position}: {first.reason}"
        )
    elif unread:
        points = sum(unread.values())
        names = ", ".join(repr(name) for name in sorted(unread)[:5])
        more = f" and {len(unread) - 5} more" if len(unread) > 5 else ""
        response.partial_success.error_message = (
            f"{points} data point{'s' if points != 1 else ''} of metrics Clew does not read"
            f" (it reads the servicegraph and spanmetrics connectors') left: {names}{more}"
        )
    return Response(_encode(response, media_type), 200, content_type=media_type)
