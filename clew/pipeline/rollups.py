"""Edge rollups: pair spans into edges and keep per-minute counts and latency histograms.

Spans are paired with exact SQL joins (every span is in the store), as Tempo's and the
OpenTelemetry Collector's service-graph processors pair them in memory:

* a CLIENT (or PRODUCER) span whose child is a SERVER (or CONSUMER) span of another service gives
  the edge client service → server service (``direct``, or ``messaging_system``);
* a CLIENT/PRODUCER span with no such child gives an edge to a virtual node named by
  ``service.peer.name``, then ``server.address`` (or the network peer address), then the database or
  messaging system; databases and brokers get their kind;
* a SERVER span with no parent in the store gets the virtual caller ``client``.

An edge is counted in the minute of its client-side span (the server span for a root). The pipeline
marks minutes dirty in the same transaction as the spans it writes; ``refresh`` recomputes exactly
those minutes, so late spans and re-runs give the same rollups as one clean pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import Connection

from clew.records import ROOT_CALLER, ConnectionType, NodeKind, SpanKind
from clew.store import histogram

#: Minutes recomputed per transaction.
CHUNK_MINUTES = 30

_K = {kind.name: kind.value for kind in SpanKind}

_ENDPOINT = "COALESCE({t}.http_method || ' ' || {t}.http_route, {t}.http_route, {t}.name)"
_ERROR = "CASE WHEN {status} = 2 OR COALESCE({http}, 0) >= 500 THEN 1 ELSE 0 END"
_CLIENT_ERROR = (
    "CASE WHEN {status} <> 2 AND COALESCE({http}, 0) BETWEEN 400 AND 499 THEN 1 ELSE 0 END"
)

_PEER = "COALESCE(c.peer_service, c.server_address, c.db_system, c.messaging_system)"
# With s joined or NULL: the side whose latency the edge reports. Requests report the caller's
# view; messaging reports the consumer's processing time.
_SIDE = (
    f"CASE WHEN c.kind = {_K['PRODUCER']} AND s.service IS NOT NULL"
    " THEN s.{col} ELSE c.{col} END"
)

# Every client/producer span c, with its instrumented child s in another service when there is
# one (a paired edge), else towards its named peer (a virtual edge). One scan serves both.
CALLERS = f"""
SELECT c.minute, c.service,
       COALESCE(s.service, {_PEER}),
       CASE WHEN s.service IS NOT NULL THEN
                CASE WHEN c.kind = {_K["PRODUCER"]} THEN '{ConnectionType.MESSAGING}'
                     ELSE '{ConnectionType.DIRECT}' END
            WHEN c.db_system IS NOT NULL THEN '{ConnectionType.DATABASE}'
            WHEN c.messaging_system IS NOT NULL THEN '{ConnectionType.MESSAGING}'
            ELSE '{ConnectionType.VIRTUAL}' END,
       CASE WHEN s.service IS NOT NULL THEN {_ENDPOINT.format(t="s")}
            ELSE COALESCE(c.messaging_destination, {_ENDPOINT.format(t="c")}) END,
       {_SIDE.format(col="latency_bucket")},
       count(*),
       sum(CASE WHEN c.status = 2 OR COALESCE(s.status, 0) = 2
                  OR COALESCE(s.http_status, c.http_status, 0) >= 500 THEN 1 ELSE 0 END),
       sum(CASE WHEN c.status <> 2 AND COALESCE(s.status, 0) <> 2
                  AND COALESCE(s.http_status, c.http_status, 0) BETWEEN 400 AND 499
                THEN 1 ELSE 0 END),
       sum({_SIDE.format(col="duration_ns")}),
       max({_SIDE.format(col="duration_ns")}),
       CASE WHEN s.service IS NOT NULL THEN NULL
            WHEN c.db_system IS NOT NULL THEN '{NodeKind.DATABASE}'
            WHEN c.messaging_system IS NOT NULL THEN '{NodeKind.BROKER}'
            ELSE '{NodeKind.EXTERNAL}' END
FROM spans c
LEFT JOIN spans s ON s.trace_id = c.trace_id AND s.parent_span_id = c.span_id
     AND s.kind IN ({_K["SERVER"]}, {_K["CONSUMER"]}) AND s.service <> c.service
WHERE c.minute IN :minutes
  AND c.kind IN ({_K["CLIENT"]}, {_K["PRODUCER"]})
  AND (s.service IS NOT NULL OR {_PEER} IS NOT NULL)
GROUP BY 1, 2, 3, 4, 5, 6, 12
"""

ROOT = f"""
SELECT s.minute, '{ROOT_CALLER}', s.service, '{ConnectionType.VIRTUAL}',
       {_ENDPOINT.format(t="s")},
       s.latency_bucket,
       count(*),
       sum({_ERROR.format(status="s.status", http="s.http_status")}),
       sum({_CLIENT_ERROR.format(status="s.status", http="s.http_status")}),
       sum(s.duration_ns),
       max(s.duration_ns),
       NULL
FROM spans s
WHERE s.minute IN :minutes
  AND s.kind = {_K["SERVER"]}
  AND (s.parent_span_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM spans p WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_span_id))
GROUP BY 1, 2, 3, 4, 5, 6
"""

# Endpoints seen serving: HTTP by route, RPC by service and method, messaging by destination.
SERVED_ENDPOINTS = f"""
SELECT service,
       CASE WHEN http_route IS NOT NULL THEN 'http'
            WHEN rpc_service IS NOT NULL THEN 'rpc' ELSE 'messaging' END,
       CASE WHEN http_route IS NOT NULL THEN COALESCE(http_method, 'ANY')
            WHEN rpc_service IS NOT NULL THEN COALESCE(rpc_method, name) ELSE 'process' END,
       COALESCE(http_route, rpc_service, messaging_destination),
       min(start_ns), max(start_ns)
FROM spans
WHERE minute IN :minutes
  AND ((kind = {_K["SERVER"]} AND (http_route IS NOT NULL OR rpc_service IS NOT NULL))
       OR (kind = {_K["CONSUMER"]} AND messaging_destination IS NOT NULL))
GROUP BY 1, 2, 3, 4
"""

UPSERT_NODE = """
INSERT INTO services (name, kind) VALUES (:name, :kind)
ON CONFLICT (name) DO NOTHING
"""

UPSERT_ENDPOINT = """
INSERT INTO endpoints (service, protocol, method, route, first_seen_ns, last_seen_ns)
VALUES (:service, :protocol, :method, :route, :first, :last)
ON CONFLICT (service, protocol, method, route) DO UPDATE SET
  first_seen_ns = CASE WHEN excluded.first_seen_ns < endpoints.first_seen_ns
                       THEN excluded.first_seen_ns ELSE endpoints.first_seen_ns END,
  last_seen_ns = CASE WHEN excluded.last_seen_ns > endpoints.last_seen_ns
                      THEN excluded.last_seen_ns ELSE endpoints.last_seen_ns END
"""


@dataclass
class _Cell:
    count: int = 0
    errors: int = 0
    client_errors: int = 0
    duration_sum: int = 0
    duration_max: int = 0
    buckets: dict[int, int] = field(default_factory=dict)


def mark_dirty(conn: Connection, minutes: Iterable[int]) -> None:
    """Record minutes whose rollups must be recomputed (call inside the writing transaction)."""
    rows = [{"minute": m} for m in sorted(set(minutes))]
    if rows:
        conn.execute(
            text("INSERT INTO rollup_dirty (minute) VALUES (:minute) ON CONFLICT DO NOTHING"), rows
        )


def _cells(conn: Connection, minutes: list[int]) -> tuple[dict[tuple, _Cell], dict[str, str]]:
    """Rollup cells of ``minutes``, and the virtual nodes their edges lead to, with their kind."""
    cells: dict[tuple, _Cell] = {}
    virtual_nodes: dict[str, str] = {}
    for query in (CALLERS, ROOT):
        statement = text(query).bindparams(bindparam("minutes", expanding=True))
        for row in conn.execute(statement, {"minutes": minutes}):
            minute, client, server, ctype, endpoint, bucket, n, err, cerr, dsum, dmax, node = row
            if node is not None:
                virtual_nodes[server] = node
            cell = cells.setdefault((minute, client, server, ctype, endpoint or ""), _Cell())
            cell.count += n
            cell.errors += err or 0
            cell.client_errors += cerr or 0
            cell.duration_sum += dsum or 0
            cell.duration_max = max(cell.duration_max, dmax or 0)
            cell.buckets[bucket] = cell.buckets.get(bucket, 0) + n
    return cells, virtual_nodes


def refresh_minutes(conn: Connection, minutes: list[int]) -> int:
    """Recompute the trace rollups, virtual nodes and served endpoints of ``minutes``."""
    expanding = bindparam("minutes", expanding=True)
    cells, virtual_nodes = _cells(conn, minutes)
    conn.execute(
        text("DELETE FROM edge_rollups WHERE source = 'trace' AND minute IN :minutes").bindparams(
            expanding
        ),
        {"minutes": minutes},
    )
    rows = [
        {
            "minute": minute,
            "client": client,
            "server": server,
            "connection_type": ctype,
            "endpoint": endpoint,
            "count": cell.count,
            "errors": cell.errors,
            "client_errors": cell.client_errors,
            "duration_sum_ns": cell.duration_sum,
            "duration_max_ns": cell.duration_max,
            "histogram": histogram.dumps(cell.buckets),
        }
        for (minute, client, server, ctype, endpoint), cell in sorted(cells.items())
    ]
    if rows:
        conn.execute(
            text(
                "INSERT INTO edge_rollups (minute, client, server, connection_type, endpoint,"
                " source, count, errors, client_errors, duration_sum_ns, duration_max_ns,"
                " histogram) VALUES (:minute, :client, :server, :connection_type, :endpoint,"
                " 'trace', :count, :errors, :client_errors, :duration_sum_ns, :duration_max_ns,"
                " :histogram)"
            ),
            rows,
        )
    node_rows = [{"name": name, "kind": kind} for name, kind in sorted(virtual_nodes.items())]
    if any(client == ROOT_CALLER for _, client, *_ in cells):
        node_rows.append({"name": ROOT_CALLER, "kind": NodeKind.CLIENT})
    if node_rows:
        conn.execute(text(UPSERT_NODE), node_rows)
    served = conn.execute(text(SERVED_ENDPOINTS).bindparams(expanding), {"minutes": minutes})
    endpoint_rows = [
        {"service": s, "protocol": p, "method": m, "route": r, "first": f, "last": la}
        for s, p, m, r, f, la in served
    ]
    if endpoint_rows:
        conn.execute(text(UPSERT_ENDPOINT), endpoint_rows)
    conn.execute(
        text("DELETE FROM rollup_dirty WHERE minute IN :minutes").bindparams(expanding),
        {"minutes": minutes},
    )
    return len(rows)


def refresh(engine: Engine, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute every dirty minute, a chunk per transaction; returns the rollup rows written."""
    with engine.connect() as conn:
        dirty = [m for (m,) in conn.execute(text("SELECT minute FROM rollup_dirty ORDER BY 1"))]
    written = 0
    for start in range(0, len(dirty), CHUNK_MINUTES):
        chunk = dirty[start : start + CHUNK_MINUTES]
        with engine.begin() as conn:
            written += refresh_minutes(conn, chunk)
        if progress:
            progress(min(start + CHUNK_MINUTES, len(dirty)), len(dirty))
    return written
