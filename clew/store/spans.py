"""Spans at rest: each trace's spans stored in chunks, one chunk per trace per write.

A span is read in only two ways: with the other spans of its trace (a trace view, the rollups of
a trace that gains spans, a rebuild) or not at all; every figure a page shows comes from the
rollups. So spans are kept the way a trace store keeps them, per trace: a write stores one row per
trace it touches, holding that trace's new spans as a MessagePack array of span rows (each an
array in ``Span`` column order). Against a row per span under a random (trace id, span id) key,
that is one row and one index entry per trace and write instead of one per span: most of what
ingest spent in SQLite.

Spans stay unique on (trace id, span id): the writer reads the stored spans of every trace of a
batch under its write lock and stores only the new ones (``clew.pipeline.Batch.write``).

A chunk's spans start within ``CHUNK_WINDOW_NS`` of its earliest: a write whose spans of one trace
spread wider stores them in several chunks. The traces with a span that started in a time range
are then found by the index on chunks' start alone (``traces_started_between``), which is how a
rollup cell's other traces are read back (``clew.pipeline.rollups.ReadBack``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

import msgspec
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.store import append, partitions

_ENCODER = msgspec.msgpack.Encoder()
#: Span rows come back as tuples in ``Span`` column order.
_DECODER = msgspec.msgpack.Decoder(list[tuple])
#: Trace ids per ``IN`` list: well below SQLite's and PostgreSQL's parameter limits.
_IDS_PER_QUERY = 500
#: How far after a chunk's earliest span its other spans may start (the chunk's time window).
CHUNK_WINDOW_NS = 60_000_000_000

_COLUMNS = ("trace_id", "start_ns", "span_count", "spans")
_TYPES = ("varchar", "int8", "int4", "bytea")
_CHUNKS_OF = text("SELECT spans FROM span_chunks WHERE trace_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def decode(data: bytes) -> list[tuple]:
    """Span rows from their stored form."""
    return _DECODER.decode(data)


class Chunk(NamedTuple):
    """Spans of one trace in their stored form."""

    start_ns: int  # the earliest start among them
    span_count: int
    data: bytes | memoryview  # the rows as a MessagePack array of arrays
    last_start_ns: int  # the latest start among them


#: Chunks encoded into one buffer (``pack``): per trace, (trace id, earliest start, latest start,
#: span count, the offset in the buffer where its chunk ends), in the buffer's order.
ChunkIndex = list[tuple[str, int, int, int, int]]


def pack(rows: Iterable[Sequence]) -> tuple[ChunkIndex, bytearray]:
    """Span rows grouped by trace and encoded, each trace's chunk after the other in one buffer.

    One buffer crosses a pipe whole, with no copy into a pickle (``clew.pipeline.Batch``), and
    a buffer grown in place costs less than a bytes object per trace.
    """
    by_trace: dict[str, list] = {}
    for row in rows:
        spans = by_trace.get(row[0])
        if spans is None:
            by_trace[row[0]] = [row]
        else:
            spans.append(row)
    data = bytearray()
    encode_into = _ENCODER.encode_into
    index: ChunkIndex = []
    for trace_id, spans in by_trace.items():
        encode_into(spans, data, -1)  # appended
        starts = [row[6] for row in spans]
        index.append((trace_id, min(starts), max(starts), len(spans), len(data)))
    return index, data


def unpack(index: ChunkIndex, data: bytes | bytearray | memoryview) -> dict[str, Chunk]:
    """The chunks ``pack`` encoded, by trace id; each chunk's data is a view into ``data``."""
    view = memoryview(data)
    chunks: dict[str, Chunk] = {}
    start = 0
    for trace_id, start_ns, last_start_ns, span_count, end in index:
        chunks[trace_id] = Chunk(start_ns, span_count, view[start:end], last_start_ns)
        start = end
    return chunks


def chunks_of(rows: Iterable[Sequence]) -> dict[str, Chunk]:
    """Span rows grouped by trace and encoded, one chunk per trace."""
    return unpack(*pack(rows))


def write(conn: Connection, rows: Iterable[Sequence]) -> int:
    """Store span rows that are not stored yet, one chunk per trace; returns how many.

    The caller has made sure no row is stored already (or repeated): this only appends.
    """
    return write_chunks(conn, chunks_of(rows))


def write_chunks(conn: Connection, chunks: Mapping[str, Chunk]) -> int:
    """Store chunks of spans that are not stored yet; returns how many spans they hold. A chunk
    whose spans spread over more than ``CHUNK_WINDOW_NS`` is stored as several."""
    if not chunks:
        return 0
    rows: list[tuple] = []
    for trace_id, chunk in chunks.items():
        if chunk.last_start_ns - chunk.start_ns < CHUNK_WINDOW_NS:
            rows.append((trace_id, chunk.start_ns, chunk.span_count, chunk.data))
        else:
            rows.extend((trace_id, *part) for part in windows(decode(chunk.data)))
    partitions.ensure(conn, "span_chunks", [row[1] for row in rows])
    append(conn, "span_chunks", _COLUMNS, _TYPES, rows)
    return sum(chunk.span_count for chunk in chunks.values())


def windows(rows: list[tuple]) -> list[tuple[int, int, bytes]]:
    """One trace's span rows as chunks that each start within ``CHUNK_WINDOW_NS`` of their
    earliest span, in time order: (earliest start, span count, encoded rows) each."""
    rows = sorted(rows, key=_start_and_span)
    parts: list[tuple[int, int, bytes]] = []
    at = 0
    while at < len(rows):
        start = rows[at][6]
        end = at
        while end < len(rows) and rows[end][6] - start < CHUNK_WINDOW_NS:
            end += 1
        parts.append((start, end - at, _ENCODER.encode(rows[at:end])))
        at = end
    return parts


def of_traces(conn: Connection, trace_ids: Iterable[str]) -> list[tuple]:
    """Every stored span of these traces, as rows in ``Span`` column order, sorted by
    (trace id, span id) whatever order the chunks come back in."""
    ids = sorted(set(trace_ids))
    found: list[tuple] = []
    decode_rows = _DECODER.decode
    for start in range(0, len(ids), _IDS_PER_QUERY):
        params = {"ids": ids[start : start + _IDS_PER_QUERY]}
        for (data,) in conn.execute(_CHUNKS_OF, params):
            found.extend(decode_rows(data))
    found.sort(key=_trace_and_span)
    return found


_STARTED_BETWEEN = text(
    "SELECT spans FROM span_chunks WHERE start_ns >= :since AND start_ns < :until"
)


def started_between(conn: Connection, since: int, until: int) -> Iterator[tuple]:
    """The span rows of the chunks whose earliest span started in ``[since, until)``, by the
    start index: a trace's root span is in the chunk that holds its earliest span (give or take
    clock skew, which a caller widens the range for)."""
    decode_rows = _DECODER.decode
    for (data,) in conn.execute(_STARTED_BETWEEN, {"since": since, "until": until}):
        yield from decode_rows(data)


def traces_started_between(conn: Connection, since: int, until: int) -> set[str]:
    """The ids of the traces with a span that started in ``[since, until)`` (and of a few more,
    whose chunks start shortly before), by the start index and the chunks' time window."""
    rows = conn.execute(_TRACES_STARTED, {"since": since - CHUNK_WINDOW_NS, "until": until})
    return {trace_id for (trace_id,) in rows}


_TRACES_STARTED = text(
    "SELECT DISTINCT trace_id FROM span_chunks WHERE start_ns > :since AND start_ns < :until"
)


def _trace_and_span(row: tuple) -> tuple[str, str]:
    return row[0], row[1]


def _start_and_span(row: tuple) -> tuple[int, str]:
    return row[6], row[1]


def of_trace(conn: Connection, trace_id: str) -> list[tuple]:
    """Every stored span of one trace, as rows in ``Span`` column order, by span id."""
    return of_traces(conn, (trace_id,))


def count(conn: Connection) -> int:
    """How many spans are stored."""
    return conn.execute(text("SELECT COALESCE(SUM(span_count), 0) FROM span_chunks")).scalar_one()


def by_trace(conn: Connection, traces_per_chunk: int = 2_000) -> Iterator[list[tuple]]:
    """Every stored span, in lists of whole traces (about ``traces_per_chunk`` traces each).

    The trace ids are read first, then each group's chunks by the trace-id index, so memory holds
    the ids and one group, whatever the store's size.
    """
    ids = [
        row[0] for row in conn.execute(text("SELECT DISTINCT trace_id FROM span_chunks ORDER BY 1"))
    ]
    for start in range(0, len(ids), traces_per_chunk):
        yield of_traces(conn, ids[start : start + traces_per_chunk])
