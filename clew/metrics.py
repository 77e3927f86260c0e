"""RED metrics over a window: rate, errors and latency percentiles, as pure functions of totals."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from sqlalchemy.engine import Connection

from clew import graph as graphs
from clew.records import ROOT_CALLER
from clew.store import histogram, queries
from clew.store.queries import EdgeTotals, Window

NS_PER_MS = 1_000_000


def window_seconds(window: Window, first_minute: int | None, last_minute: int | None) -> float:
    """How long ``window`` is; an open side ends at the first/last minute that has data."""
    since = window.since_minute if window.since_minute is not None else first_minute
    until = (
        window.until_minute
        if window.until_minute is not None
        else (last_minute + 1 if last_minute is not None else None)
    )
    if since is None or until is None or until <= since:
        return 60.0
    return (until - since) * 60.0


def _ms(value_ns: float | None) -> float | None:
    return None if value_ns is None else round(value_ns / NS_PER_MS, 3)


def edge_metrics(edge: EdgeTotals, seconds: float) -> dict:
    """The JSON shape of one edge in ``clew graph --json``."""
    return {
        "client": edge.client,
        "server": edge.server,
        "connection_type": edge.connection_type,
        "sources": sorted(edge.sources),
        "count": edge.count,
        "errors": edge.errors,
        "client_errors": edge.client_errors,
        "error_ratio": round(edge.errors / edge.count, 6) if edge.count else 0.0,
        "rps": round(edge.count / seconds, 4),
        "p50_ms": _ms(histogram.quantile(edge.histogram, 0.50)),
        "p95_ms": _ms(histogram.quantile(edge.histogram, 0.95)),
        "p99_ms": _ms(histogram.quantile(edge.histogram, 0.99)),
        "max_ms": _ms(edge.duration_max_ns),
        # queue lag (consumer start − producer end), on topic → consumer edges where measured
        "lag_count": edge.lag_count,
        "lag_p50_ms": _ms(histogram.quantile(edge.lag_histogram, 0.50)),
        "lag_p95_ms": _ms(histogram.quantile(edge.lag_histogram, 0.95)),
    }


def graph_view(conn: Connection, window: Window) -> dict:
    """Nodes, edges with their metrics, and cycles: the ``clew graph --json`` document."""
    edges = queries.edge_totals(conn, window)
    nodes = queries.nodes(conn)
    graph = graphs.build(edges, nodes)
    first, last = queries.data_range(conn)
    seconds = window_seconds(window, first, last)
    node_list = []
    for name in sorted(graph.nodes):
        data = graph.nodes[name]
        inbound = [d["totals"] for _, _, d in graph.in_edges(name, data=True)]
        served = sum(e.count for e in inbound)
        failed = sum(e.errors for e in inbound)
        node_list.append(
            {
                "id": name,
                "kind": data["kind"],
                "namespace": data["namespace"],
                "environment": data["environment"],
                "parent": data["parent"],
                "requests": served,
                "errors": failed,
                "error_ratio": round(failed / served, 6) if served else 0.0,
            }
        )
    return {
        "window": {
            "since_minute": window.since_minute,
            "until_minute": window.until_minute,
            "seconds": seconds,
        },
        "nodes": node_list,
        "edges": [edge_metrics(e, seconds) for e in edges],
        "cycles": graphs.cycles(graph),
    }


@dataclass
class Overview:
    """The headline figures of a window."""

    services: int
    edges: int
    calls: int
    rps: float
    entry_rps: float
    p95_ms: float | None
    error_ratio: float
    worst_edges: list[dict]


def overview(conn: Connection, window: Window, worst: int = 10) -> Overview:
    """Headline figures and the edges with the highest error ratio (then p95) in ``window``."""
    edges = queries.edge_totals(conn, window)
    graph: nx.MultiDiGraph = graphs.build(edges, queries.nodes(conn))
    first, last = queries.data_range(conn)
    seconds = window_seconds(window, first, last)
    calls = sum(e.count for e in edges)
    errors = sum(e.errors for e in edges)
    merged = histogram.merge(e.histogram for e in edges)
    entry = sum(e.count for e in edges if e.client == ROOT_CALLER)
    rows = [edge_metrics(e, seconds) for e in edges]
    rows.sort(key=lambda r: (-r["error_ratio"], -(r["p95_ms"] or 0), r["client"], r["server"]))
    services = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "service")
    return Overview(
        services=services,
        edges=len(edges),
        calls=calls,
        rps=round(calls / seconds, 3),
        entry_rps=round(entry / seconds, 3),
        p95_ms=_ms(histogram.quantile(merged, 0.95)),
        error_ratio=round(errors / calls, 6) if calls else 0.0,
        worst_edges=rows[:worst],
    )


def edge_series(
    conn: Connection, window: Window, client: str | None = None, server: str | None = None
) -> list[dict]:
    """Per-minute rate, error ratio and p95, over all edges or one."""
    out = []
    for m in queries.minute_series(conn, window, client, server):
        out.append(
            {
                "minute": m.minute,
                "rps": round(m.count / 60.0, 4),
                "errors": m.errors,
                "error_ratio": round(m.errors / m.count, 6) if m.count else 0.0,
                "p95_ms": _ms(histogram.quantile(m.histogram, 0.95)),
            }
        )
    return out
