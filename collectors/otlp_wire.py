"""Which signal an OTLP/protobuf message carries, told from its wire bytes without decoding it.

``ExportTraceServiceRequest`` and ``ExportMetricsServiceRequest`` share their outer shape (field 1
holds a resource's records, whose field 2 holds a scope's, whose field 2 holds the spans or the
metrics), so a file exporter's messages look alike until the first span or metric. There they
differ: a span always carries a start time (field 7, a fixed64) and mostly a kind (field 6, a
varint), where a metric has only a name, a description, a unit and its data, all
length-delimited (``sum`` in field 7, an exponential histogram in 10). The first span or metric
that tells is enough; a head cut short is read as far as it goes.
"""

from __future__ import annotations

from collections.abc import Iterator

TRACES = "traces"
METRICS = "metrics"

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
#: Fields of a metric that are length-delimited there and never so in a span.
_METRIC_ONLY = frozenset((7, 10))
#: A metric's data fields that a span has too, length-delimited (its name, attributes, events).
_METRIC_DATA = frozenset((5, 9, 11))
#: How many spans or metrics are looked at before giving up.
_ITEMS = 16
#: The largest message a frame may announce (as ``collectors.otlp_proto`` takes it).
_MAX_MESSAGE_BYTES = 20 << 20


def _varint(data: bytes, position: int, end: int) -> tuple[int, int] | None:
    """The varint at ``position`` and the position after it; None when cut short or too long."""
    value = shift = 0
    while position < end and shift <= 63:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
    return None


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field in ``data[start:end]``;
    stops at bytes that are no field. A value may end past ``end`` when the data is cut short."""
    position = start
    while position < end:
        tag = _varint(data, position, end)
        if tag is None or tag[0] >> 3 == 0:
            return
        number, wire, position = tag[0] >> 3, tag[0] & 7, tag[1]
        if wire == _VARINT:
            value = _varint(data, position, end)
            if value is None:
                return
            after = value[1]
        elif wire == _FIXED64:
            after = position + 8
        elif wire == _FIXED32:
            after = position + 4
        elif wire == _LEN:
            length = _varint(data, position, end)
            if length is None:
                return
            position, after = length[1], length[1] + length[0]
        else:
            return  # groups are not in OTLP: not a message of it
        yield number, wire, position, after
        position = after


def _item_signal(data: bytes, start: int, end: int) -> str | None:
    """What one span or metric (``data[start:end]``) is, if it tells."""
    held = False
    for number, wire, _, _ in _fields(data, start, min(end, len(data))):
        if wire in (_VARINT, _FIXED64, _FIXED32):
            return TRACES  # a span's kind, times or counts: a metric holds none
        if number in _METRIC_ONLY:
            return METRICS
        held = held or number in _METRIC_DATA
    # Whole, and with a gauge, histogram or summary but nothing a span always has.
    return METRICS if held and end <= len(data) else None


def _signal_at(data: bytes, start: int, end: int) -> str | None:
    """What the message in ``data[start:end]`` carries, if its first spans or metrics tell."""
    looked = 0
    end = min(end, len(data))
    for number, wire, a, b in _fields(data, start, end):
        if number != 1 or wire != _LEN:
            continue  # resource_spans / resource_metrics
        for number, wire, c, d in _fields(data, a, min(b, end)):
            if number != 2 or wire != _LEN:
                continue  # scope_spans / scope_metrics
            for number, wire, e, f in _fields(data, c, min(d, end)):
                if number != 2 or wire != _LEN:
                    continue  # spans / metrics
                signal = _item_signal(data, e, f)
                looked += 1
                if signal is not None or looked >= _ITEMS:
                    return signal
    return None


def message_signal(message: bytes) -> str | None:
    """``TRACES`` or ``METRICS`` for one whole OTLP request message, None when it does not tell
    (no span or metric in it, or not OTLP)."""
    return _signal_at(message, 0, len(message))


def head_signal(head: bytes) -> str | None:
    """The same for the first message of a file's head, however it is framed: after a 4-byte
    big-endian length (the Collector's file exporter), after a varint length (delimited), or
    filling the file."""
    starts: list[tuple[int, int]] = []
    if len(head) >= 4 and 0 < (length := int.from_bytes(head[:4], "big")) <= _MAX_MESSAGE_BYTES:
        starts.append((4, 4 + length))
    varint = _varint(head, 0, min(len(head), 5))
    if varint is not None and 0 < varint[0] <= _MAX_MESSAGE_BYTES:
        starts.append((varint[1], varint[1] + varint[0]))
    starts.append((0, len(head)))
    for start, end in starts:
        signal = _signal_at(head, start, end)
        if signal is not None:
            return signal
    return None
