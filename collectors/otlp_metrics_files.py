"""OTLP metrics files: what the OpenTelemetry Collector's ``file`` exporter writes of its
servicegraph and spanmetrics connectors' metrics, read as ``POST /v1/metrics`` reads them
(``collectors.otlp_metrics``).

Two collectors, in the trace collectors' layouts:

* ``otlp_metrics_json``: one ``ExportMetricsServiceRequest`` per line (the exporter's ``format:
  json``), or one JSON document per file (a captured request body, pretty-printed or not);
* ``otlp_metrics_proto``: the exporter's ``format: proto`` (a 4-byte big-endian length before each
  message), delimited messages (a varint length), or one message per file.

Every line and framed message ends at a checkpoint: a file read before resumes after its last
whole request. A framed message the file ends inside of is left for the next read, as is a
half-written last line of a file still being written (``Source.growing``). A line or message
that is no request is quarantined at its line (byte) with the reason; a point that cannot be
used, at its line (byte) and its place in the request. Metrics Clew does not read are counted
(``UnreadMetric``). A document, or a message filling its file, is one unit: read again whole
when the file changed, the points already counted add nothing
(``clew.pipeline.metric_points``).

One exporter in both a traces and a metrics pipeline writes both signals to one file (the
Collector shares the exporter between them): a request of spans met here is read as the trace
collectors read it, and they read a request of metrics met in theirs. Compressed files (the
exporter's ``compression: zstd``) are quarantined whole with that reason, as for traces.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from clew.records import Checkpoint, Quarantined, Record, excerpt
from collectors import CollectorError, Source, lines, otlp_json, otlp_metrics, otlp_proto, otlp_wire
from collectors.json_document import BOM
from collectors.lines import split_lines


def _is_spans(document: Any) -> bool:
    """Whether a decoded OTLP/JSON request holds spans rather than metrics."""
    if type(document) is not dict:
        return False
    return "resourceSpans" in document and "resourceMetrics" not in document


class OtlpMetricsJsonCollector:
    """OTLP/JSON ``ExportMetricsServiceRequest`` files: one request per line, or one document."""

    name = "otlp_metrics_json"
    description = (
        "OTLP/JSON connector metrics (the Collector file exporter's one export per line, or one)"
    )
    #: Reads a file still being written a line at a time, as the file exporter writes it.
    reads_growing = True

    def detect(self, head: bytes) -> bool:
        head = head.removeprefix(BOM).lstrip()
        if head[:1] != b"{":
            return False
        metrics, spans = head.find(b'"resourceMetrics"'), head.find(b'"resourceSpans"')
        # A file both signals are written to is whichever comes first (otlp_json reads it too).
        return metrics >= 0 and (spans < 0 or metrics < spans)

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.open()
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            first_line = handle.readline().removeprefix(BOM)
            second_line = handle.readline()
            handle.seek(0)
            if not second_line.strip() or otlp_json.looks_like_one_request(first_line):
                yield from self._lines(handle, source.offset, source.growing)
            else:
                yield from self._document(handle.read(), source.growing and source.settling())

    def _document(self, data: bytes, settling: bool) -> Iterator[Record]:
        try:
            document = orjson.loads(data.removeprefix(BOM))
        except orjson.JSONDecodeError as error:
            if settling:
                return  # changed a moment ago, maybe half written: read again, whole, later
            position = f"line {error.lineno} column {error.colno}"
            yield Quarantined(position, f"invalid JSON: {error.msg}", excerpt(data[:200]))
        else:
            if _is_spans(document):
                yield from otlp_json.read_request(document, "document")
            else:
                yield from otlp_metrics.records_of_document_at(document, "document", data)
        yield Checkpoint(len(data))

    def _lines(self, handle: BinaryIO, offset: int, growing: bool) -> Iterator[Record]:
        # The lines before the checkpoint are counted, so that positions stay true on a
        # resumed read.
        line_number = lines.lines_before(handle, offset)
        position = offset
        for view in split_lines(handle):
            if growing and view[-1:] != b"\n":
                return  # still being written: read with the rest of it next time
            line_number += 1
            position += len(view)
            line = bytes(view)
            if not line.isspace():
                yield from _records_of_line(line, f"line {line_number}")
            yield Checkpoint(position)


def _records_of_line(line: bytes, where: str) -> Iterator[Record]:
    try:
        document = orjson.loads(line.removeprefix(BOM))
    except orjson.JSONDecodeError as error:
        reason = f"invalid JSON at column {error.colno}: {error.msg}"
        yield Quarantined(where, reason, excerpt(line))
        return
    if _is_spans(document):
        fast = otlp_json.fast_records(line)
        yield from fast if fast is not None else otlp_json.read_request(document, where)
    else:
        yield from otlp_metrics.records_of_document_at(document, where, line)


# --- Protobuf --------------------------------------------------------------------------------

#: ``_next_frame``'s answer when the file ends inside a frame.
_CUT_SHORT = "cut short"


def _next_frame(
    data: bytes | otlp_proto.FileBytes, position: int, varint: bool
) -> tuple[int, int] | str | None:
    """(start, end) of the message framed at ``position``; None at the end of the data,
    ``_CUT_SHORT`` when the data ends inside the frame, else why the bytes there frame nothing."""
    size = len(data)
    if position >= size:
        return None
    if varint:
        length = shift = 0
        start = position
        while True:
            if start >= size:
                return _CUT_SHORT
            byte = data[start]
            length |= (byte & 0x7F) << shift
            start, shift = start + 1, shift + 7
            if not byte & 0x80:
                break
            if shift > 28:
                return "the varint length before a message runs past 4 bytes"
    else:
        if position + 4 > size:
            return _CUT_SHORT
        length, start = int.from_bytes(data[position : position + 4], "big"), position + 4
    if length == 0 or length > otlp_proto.MAX_MESSAGE_BYTES:
        limit = otlp_proto.MAX_MESSAGE_BYTES >> 20
        return f"a frame announces a message of {length} bytes (none, or more than {limit} MiB)"
    if start + length > size:
        return _CUT_SHORT
    return start, start + length


def _is_request(message: bytes) -> bool:
    """Whether a message is an OTLP request: of metrics or of spans, by its first one, or of
    metrics that decodes (one with resources and nothing else tells nothing by its bytes)."""
    if otlp_wire.message_signal(message) is not None:
        return True
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(message)
    except DecodeError:
        return False
    return bool(request.resource_metrics)


def _framing(data: bytes | otlp_proto.FileBytes) -> bool | None:
    """How the file's messages are framed, judged by its first: a varint length (True), a 4-byte
    length (False), or not at all, one message filling the file (None)."""
    for varint in (False, True):
        frame = _next_frame(data, 0, varint)
        if isinstance(frame, tuple) and _is_request(data[frame[0] : frame[1]]):
            return varint
    return None


def _records_of_message(message: bytes, start: int) -> Iterator[Record]:
    if otlp_wire.message_signal(message) == otlp_wire.TRACES:
        yield from otlp_proto.records_of_frame(message, start)
    else:
        yield from otlp_metrics.records_of_message_at(message, f"byte {start}")


class OtlpMetricsProtoCollector:
    """OTLP/protobuf ``ExportMetricsServiceRequest`` files: framed messages (Collector or
    delimited) or one message."""

    name = "otlp_metrics_proto"
    description = "OTLP/protobuf connector metrics (the Collector's proto files, delimited, or one)"
    #: A framed file still being written leaves its last message, half written, for the next
    #: read; one message filling its file waits until the file has settled.
    reads_growing = True

    def detect(self, head: bytes) -> bool:
        if head[:4] == otlp_proto.ZSTD_MAGIC:
            return False
        try:
            # Incremental: a head cut inside a multi-byte character is still text.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return otlp_wire.head_signal(head) == otlp_wire.METRICS
        return False  # text: JSON, logs, contracts

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.path.open("rb")
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            try:
                yield from self._records(otlp_proto.FileBytes(handle.fileno()), source)
            except otlp_proto.Shrank:
                reason = "it shrank while it was read (a rotation that truncates it?)"
                raise CollectorError(f"{source.name}: {reason}; read it again") from None

    def _records(self, data: otlp_proto.FileBytes, source: Source) -> Iterator[Record]:
        if data[:4] == otlp_proto.ZSTD_MAGIC:
            reason = "zstd-compressed (the exporter's compression: zstd): decompress it first"
            yield Quarantined("byte 0", reason, "")
            yield Checkpoint(len(data))
            return
        varint = _framing(data)
        if varint is None:
            if source.growing and source.settling():
                return  # changed a moment ago, maybe half written: read again, whole, later
            message = data[:]
            if otlp_wire.message_signal(message) == otlp_wire.TRACES:
                yield from otlp_proto.records_of_frame(message, 0)
            else:
                yield from _whole(message)
            yield Checkpoint(len(data))
            return
        position = source.offset
        while (frame := _next_frame(data, position, varint)) is not None:
            if frame == _CUT_SHORT:
                return  # still being written: read with the rest of it next time
            if not isinstance(frame, tuple):
                reason = f"{frame}: the framing is lost, the rest of the file is not read"
                quoted = excerpt(data[position : position + 64].hex())
                yield Quarantined(f"byte {position}", reason, quoted)
                yield Checkpoint(len(data))
                return
            start, end = frame
            yield from _records_of_message(data[start:end], start)
            yield Checkpoint(end)
            position = end


def _whole(message: bytes) -> Iterator[Record]:
    """The records of one message filling its file; one that does not decode is quarantined
    with the layouts tried."""
    for record in otlp_metrics.records_of_message_at(message, "byte 0"):
        if type(record) is Quarantined and record.position == "byte 0":
            reason = f"{record.reason} (nor framed ones)"
            yield Quarantined(record.position, reason, record.excerpt)
        else:
            yield record
