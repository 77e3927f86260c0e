"""Gateway requests at rest: the requests a write stores, one chunk per gateway.

Every figure the console shows about gateway traffic comes from the rollups (``source =
'gateway'``). The requests themselves are read a time window at a time: drill-down into a route's
requests, and the join of a trace's root span with the request the gateway logged for it. So they
are kept as spans are (``clew.store.spans``): a write stores one row per gateway holding its new
requests as a MessagePack array of rows in ``GatewayRequest`` column order, under the earliest and
latest start among them. Requests that carry a trace id are also kept in ``gateway_traces``, which
is indexed by trace id.

Requests have no natural key: a file's requests are stored once because its checkpoint is
committed in the same transaction as they are (``clew.pipeline``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import msgspec
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.records import GatewayRequest
from clew.store import append, partitions
from clew.store.partitions import NS_PER_DAY

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[tuple])
#: Trace ids per ``IN`` list: well below SQLite's and PostgreSQL's parameter limits.
_IDS_PER_QUERY = 500

_CHUNK_COLUMNS = ("gateway", "start_ns", "end_ns", "request_count", "requests")
_CHUNK_TYPES = ("varchar", "int8", "int8", "int4", "bytea")
_TRACE_COLUMNS = ("trace_id", "start_ns", "gateway", "consumer", "method", "path", "status")
_TRACE_TYPES = ("varchar", "int8", "varchar", "varchar", "varchar", "text", "int4")
_IN_WINDOW = text(
    "SELECT requests FROM gateway_request_chunks"
    " WHERE start_ns < :until AND end_ns >= :since ORDER BY start_ns, id"
)
_BY_TRACE = text(
    "SELECT trace_id, start_ns, gateway, consumer, method, path, status FROM gateway_traces"
    " WHERE trace_id IN :ids ORDER BY trace_id, start_ns, id"
).bindparams(bindparam("ids", expanding=True))

_START, _GATEWAY, _CONSUMER, _METHOD, _PATH, _STATUS, _TRACE_ID = 0, 1, 2, 4, 6, 8, 14


#: Requests ready to store (``pack``): one chunk per gateway and day, (gateway, earliest start,
#: latest start, count, the rows as MessagePack), and the index rows of those that carry a trace
#: id.
Packed = tuple[list[tuple[str, int, int, int, bytes]], list[tuple]]


def pack(requests: Sequence[Sequence]) -> Packed:
    """Request rows (``GatewayRequest`` or the same columns) in the form ``write_packed`` stores:
    made where they are parsed, so that the writer stores them as they come. A chunk holds one
    gateway's requests of one UTC day, so that retention drops whole chunks
    (``clew.store.partitions``)."""
    by_gateway: dict[tuple[str, int], list] = {}
    for row in requests:
        key = (row[_GATEWAY], row[_START] // NS_PER_DAY)
        rows = by_gateway.get(key)
        if rows is None:
            by_gateway[key] = [row]
        else:
            rows.append(row)
    chunks = []
    for (gateway, _day), rows in by_gateway.items():
        starts = [row[_START] for row in rows]
        chunks.append((gateway, min(starts), max(starts), len(rows), _ENCODER.encode(rows)))
    traced = [
        (
            row[_TRACE_ID],
            row[_START],
            row[_GATEWAY],
            row[_CONSUMER],
            row[_METHOD],
            row[_PATH],
            row[_STATUS],
        )
        for row in requests
        if row[_TRACE_ID] is not None
    ]
    return chunks, traced


def unpack(packed: Packed) -> list[tuple]:
    """The request rows of packed chunks, as tuples, gateway by gateway."""
    return [row for chunk in packed[0] for row in _DECODER.decode(chunk[4])]


def write(conn: Connection, requests: Sequence[Sequence]) -> int:
    """Store request rows (``GatewayRequest`` or the same columns), one chunk per gateway;
    returns how many. The caller stores each request once (its source's checkpoint)."""
    if not requests:
        return 0
    return write_packed(conn, pack(requests))


def write_packed(conn: Connection, packed: Packed) -> int:
    """Store requests ``pack`` made; returns how many."""
    chunks, traced = packed
    if not chunks:
        return 0
    partitions.ensure(conn, "gateway_request_chunks", [chunk[1] for chunk in chunks])
    append(conn, "gateway_request_chunks", _CHUNK_COLUMNS, _CHUNK_TYPES, chunks)
    if traced:
        partitions.ensure(conn, "gateway_traces", [row[1] for row in traced])
        append(conn, "gateway_traces", _TRACE_COLUMNS, _TRACE_TYPES, traced)
    return sum(chunk[3] for chunk in chunks)


def in_window(conn: Connection, since: int, until: int) -> Iterator[GatewayRequest]:
    """The stored requests that started in ``[since, until)``, by chunk in start order."""
    for (data,) in conn.execute(_IN_WINDOW, {"since": since, "until": until}):
        for row in _DECODER.decode(data):
            if since <= row[_START] < until:
                yield GatewayRequest(*row)


def by_trace_ids(conn: Connection, trace_ids: Iterable[str]) -> dict[str, list[tuple]]:
    """The requests that carried each of these trace ids: (trace id, start, gateway, consumer,
    method, path, status), earliest first."""
    wanted = sorted(set(trace_ids))
    found: dict[str, list[tuple]] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        for row in conn.execute(_BY_TRACE, {"ids": wanted[start : start + _IDS_PER_QUERY]}):
            found.setdefault(row[0], []).append(tuple(row))
    return found
