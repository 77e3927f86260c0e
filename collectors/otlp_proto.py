"""OTLP/protobuf trace files: binary ``ExportTraceServiceRequest`` (or ``TracesData``) messages.

Three layouts are read, told apart by how the file's bytes frame:

* the OpenTelemetry Collector file exporter's ``format: proto``: every message preceded by its
  length as a 4-byte big-endian unsigned integer;
* delimited messages, as the specification's file exporter and ``writeDelimitedTo`` write them:
  every message preceded by its length as a protobuf varint;
* one message filling the file (a captured ``POST /v1/traces`` body, a ``.binpb`` file).

In the framed layouts every message ends at a checkpoint, so a file that grows is read on from
the last whole message; a message still being written when the file is read is left for the
next run. ``TracesData`` and ``ExportTraceServiceRequest`` share their wire format (field 1,
``resource_spans``), so both are read.

Compressed files (the exporter's ``compression: zstd``) are not read; they are quarantined whole
with that reason.

One file exporter in both a traces and a metrics pipeline writes both signals to one file (the
Collector shares the exporter between them): a message of metrics met here
(``collectors.otlp_wire`` tells) is read as ``collectors.otlp_metrics`` reads it, and a file that
opens with one is left to ``otlp_metrics_proto``.

Messages are read by the compiled reader ``collectors._otlp_native`` when ``collectors.native``
has it (built, and ``CLEW_NO_NATIVE`` not set): it gives the same records as
``records_of_message``, and hands any message it does not read exactly as this module does (a
span to quarantine, wire data protobuf would reject or merge) back to it.
"""

from __future__ import annotations

import base64
import codecs
import os
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from clew.records import Checkpoint, Quarantined, Record, SpanLink, excerpt
from collectors import CollectorError, Source, native, otlp_wire
from collectors.semconv import build_span, resource_from

#: How a zstd frame begins (the file exporter's ``compression: zstd``).
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: The largest message a frame may announce (the receiver's body limit).
MAX_MESSAGE_BYTES = 20 << 20


def any_value(value: Any) -> Any:
    """A protobuf ``AnyValue`` as a plain JSON value (bytes as base64, as OTLP/JSON has them)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def key_values(items: Any) -> dict[str, Any]:
    """Protobuf ``KeyValue`` entries as a dict."""
    out: dict[str, Any] = {}
    for kv in items:
        value = kv.value
        kind = value.WhichOneof("value")
        # Strings and scalars straight off the message: every attribute access builds an object.
        out[kv.key] = (
            value.string_value
            if kind == "string_value"
            else getattr(value, kind)
            if kind in _SCALARS
            else any_value(value)
        )
    return out


_SCALARS = frozenset(("int_value", "bool_value", "double_value"))
_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def _problem(raw: Any) -> str | None:
    """Why a span cannot be stored, or None when it can."""
    trace_id, span_id, parent = raw.trace_id, raw.span_id, raw.parent_span_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return f"trace_id {trace_id.hex()!r} is not 16 bytes (nor non-zero)"
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return f"span_id {span_id.hex()!r} is not 8 bytes (nor non-zero)"
    if parent and len(parent) != 8:
        return f"parent_span_id {parent.hex()!r} is not 8 bytes"
    if raw.start_time_unix_nano <= 0:
        return "start_time_unix_nano is not set"
    if not 0 <= raw.kind <= 5:
        return f"kind {raw.kind} is not a span kind"
    code = raw.status.code
    if not 0 <= code <= 2:
        return f"status code {code} is not a span status"
    return None


def records_of_message(message: ExportTraceServiceRequest, where: str) -> Iterator[Record]:
    """The records of one decoded request; ``where`` prefixes quarantine positions."""
    # One loop with the span's checks and fields inline: this runs once per span, and each
    # field read off the message costs about as much as a small function call.
    for r, resource_spans in enumerate(message.resource_spans):
        resource = resource_from(key_values(resource_spans.resource.attributes))
        yield resource
        service = resource.service
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for i, raw in enumerate(scope_spans.spans):
                trace_id, span_id, parent = raw.trace_id, raw.span_id, raw.parent_span_id
                start, end, kind = raw.start_time_unix_nano, raw.end_time_unix_nano, raw.kind
                status = raw.status
                code = status.code
                if (
                    len(trace_id) != 16
                    or trace_id == _ZERO_TRACE_ID
                    or len(span_id) != 8
                    or span_id == _ZERO_SPAN_ID
                    or (parent and len(parent) != 8)
                    or start <= 0
                    or not 0 <= kind <= 5
                    or not 0 <= code <= 2
                ):
                    position = f"{where}resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                    yield Quarantined(position, _problem(raw) or "", excerpt(str(raw)))
                    continue
                attributes: dict[str, Any] = {}
                for kv in raw.attributes:
                    value = kv.value
                    which = value.WhichOneof("value")
                    attributes[kv.key] = (
                        value.string_value
                        if which == "string_value"
                        else getattr(value, which)
                        if which in _SCALARS
                        else any_value(value)
                    )
                trace_hex, span_hex = trace_id.hex(), span_id.hex()
                yield build_span(
                    trace_hex,
                    span_hex,
                    parent.hex() if parent and parent != _ZERO_SPAN_ID else None,
                    service,
                    raw.name,
                    kind,
                    start,
                    end - start if end >= start else 0,
                    code,
                    status.message or None,
                    attributes,
                )
                links = raw.links
                if links:
                    for link in links:
                        if len(link.trace_id) == 16 and len(link.span_id) == 8:
                            yield SpanLink(
                                trace_hex, span_hex, link.trace_id.hex(), link.span_id.hex()
                            )


#: The compiled reader that ``_fast_records`` uses (``collectors.native`` decides); None when it
#: is not built or ``CLEW_NO_NATIVE`` is set.
_native = native.reader


def _fast_records(chunk: bytes) -> list[Record] | None:
    """The records of one message by the compiled reader, or None when the Python path must
    read it (no compiled reader, or a message it leaves to ``records_of_message``)."""
    return _native.records(chunk) if _native is not None else None


def _frames(data: bytes | FileBytes, offset: int, varint: bool) -> list[tuple[int, int]] | None:
    """``(start, end)`` of each whole framed message from ``offset`` on, or None when the bytes
    do not frame that way. A last frame cut short (still being written) is left out."""
    frames: list[tuple[int, int]] = []
    position, size = offset, len(data)
    while position < size:
        if varint:
            length, shift, start = 0, 0, position
            while start < size and shift <= 28:
                byte = data[start]
                length |= (byte & 0x7F) << shift
                shift, start = shift + 7, start + 1
                if not byte & 0x80:
                    break
            else:
                if shift > 28:
                    return None  # no length is that long
                break  # the length itself is still being written
        else:
            if position + 4 > size:
                break
            length = int.from_bytes(data[position : position + 4], "big")
            start = position + 4
        if length == 0 or length > MAX_MESSAGE_BYTES:
            return None
        if start + length > size:
            break  # still being written
        frames.append((start, start + length))
        position = start + length
    return frames or None


def _parse(chunk: bytes) -> ExportTraceServiceRequest | None:
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(chunk)
    except DecodeError:
        return None
    return message if message.resource_spans else None


class FileBytes:
    """A file's bytes (as long as it was when opened), sliced by positioned reads: only the frame
    headers and one message at a time are in memory. Not a mapped file: one that shrinks while it
    is mapped (a rotation that truncates it) kills the process, where a read returns what is
    left, and the collector quarantines the message that came out short."""

    def __init__(self, fd: int) -> None:
        self.fd, self.size = fd, os.fstat(fd).st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.size)
            return os.pread(self.fd, stop - start, start) if stop > start else b""
        if not 0 <= key < self.size:
            raise IndexError(key)
        byte = os.pread(self.fd, 1, key)
        if not byte:
            raise Shrank
        return byte[0]


class Shrank(Exception):
    """The file is shorter than when it was opened."""


class OtlpProtoCollector:
    """OTLP/protobuf trace files: framed messages (Collector or delimited) or one message."""

    name = "otlp_proto"
    description = "OTLP/protobuf trace exports (the Collector's proto files, delimited, or one)"

    def detect(self, head: bytes) -> bool:
        if head[:4] == ZSTD_MAGIC:
            return False
        try:
            # Incremental: a head cut inside a multi-byte character is still text.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            return False  # text: JSON, logs, contracts
        # resource_spans (field 1, length-delimited) opens a message: at byte 0, after a
        # 4-byte length, or after a varint length. So does resource_metrics: a file that opens
        # with metrics is otlp_metrics_proto's.
        opens = head[:1] == b"\x0a" or head[4:5] == b"\x0a"
        if not opens:
            for i in range(min(len(head), 5)):
                if not head[i] & 0x80:
                    opens = head[i + 1 : i + 2] == b"\x0a"
                    break
        return opens and otlp_wire.head_signal(head) != otlp_wire.METRICS

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.path.open("rb")
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            try:
                yield from self._records(FileBytes(handle.fileno()), source.offset)
            except Shrank:
                reason = "it shrank while it was read (a rotation that truncates it?)"
                raise CollectorError(f"{source.name}: {reason}; read it again") from None

    def _records(self, data: bytes | FileBytes, offset: int) -> Iterator[Record]:
        if data[:4] == ZSTD_MAGIC:
            reason = "zstd-compressed (the exporter's compression: zstd): decompress it first"
            yield Quarantined("byte 0", reason, "")
            yield Checkpoint(len(data))
            return
        for varint in (False, True):
            frames = _frames(data, offset, varint)
            if frames is not None and all(_is_request(data[a:b]) for a, b in frames[:1]):
                yield from self._framed(data, frames)
                return
        whole = data[:] if offset == 0 else b""
        fast = _fast_records(whole) if whole else None
        if fast is not None:
            yield from fast
            yield Checkpoint(len(data))
            return
        if whole and otlp_wire.message_signal(whole) == otlp_wire.METRICS:
            yield from _metric_records(whole, "byte 0")
            yield Checkpoint(len(data))
            return
        message = _parse(whole) if whole else None
        if message is None:
            reason = "not an OTLP ExportTraceServiceRequest (nor framed ones)"
            yield Quarantined(f"byte {offset}", reason, excerpt(data[offset : offset + 64].hex()))
        else:
            yield from records_of_message(message, "")
        yield Checkpoint(len(data))

    def _framed(self, data: bytes | FileBytes, frames: list[tuple[int, int]]) -> Iterator[Record]:
        for start, end in frames:
            chunk = data[start:end]
            fast = _fast_records(chunk)
            if fast is not None:
                yield from fast
                yield Checkpoint(end)
                continue
            where = f"byte {start}"
            if otlp_wire.message_signal(chunk) == otlp_wire.METRICS:
                yield from _metric_records(chunk, where)
                yield Checkpoint(end)
                continue
            message = _parse(chunk)
            if message is None:
                reason = "message does not decode as an ExportTraceServiceRequest"
                yield Quarantined(where, reason, excerpt(data[start : start + 64].hex()))
            else:
                yield from records_of_message(message, f"{where}: ")
            yield Checkpoint(end)


def _is_request(chunk: bytes) -> bool:
    """Whether a framed message is an OTLP request: of spans, or of metrics."""
    return _parse(chunk) is not None or otlp_wire.message_signal(chunk) == otlp_wire.METRICS


def _metric_records(chunk: bytes, where: str) -> Iterator[Record]:
    # Imported here: collectors.otlp_metrics reads attributes with this module's key_values.
    from collectors import otlp_metrics

    yield from otlp_metrics.records_of_message_at(chunk, where)


def records_of_frame(chunk: bytes, start: int) -> Iterator[Record]:
    """The records of one framed trace message that starts at byte ``start`` of its file (for
    ``otlp_metrics_proto``, which meets them in a file both signals are written to); one that
    does not decode is quarantined there."""
    fast = _fast_records(chunk)
    if fast is not None:
        yield from fast
        return
    message = _parse(chunk)
    if message is None:
        reason = "message does not decode as an ExportTraceServiceRequest"
        yield Quarantined(f"byte {start}", reason, excerpt(chunk[:64].hex()))
    else:
        yield from records_of_message(message, f"byte {start}: ")


def records_of_body(data: bytes) -> list[Record]:
    """The records of one OTLP/HTTP protobuf request body (``POST /v1/traces``), unusable spans
    as ``Quarantined``; ``CollectorError`` when it does not decode as an ExportTraceServiceRequest.
    """
    fast = _fast_records(data)
    if fast is not None:
        return fast
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        detail = str(error).rpartition(": ")[2] or "wire format is corrupt"
        raise CollectorError(f"not an OTLP ExportTraceServiceRequest: {detail}") from None
    return list(records_of_message(message, ""))
