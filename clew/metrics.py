"""RED metrics over a window: rate, errors and latency percentiles, as pure functions of totals."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from sqlalchemy.engine import Connection

from clew import graph as graphs
from clew import traces
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
    } | _added_time(edge)


def _added_time(edge: EdgeTotals) -> dict:
    """What the node in between adds: a topic's queue lag (consumer start − producer end) on
    topic → consumer edges, a gateway's overhead (its whole time less the upstream's) on gateway
    → upstream edges, where measured; both are kept in the cells' lag columns."""
    overhead = queries.GATEWAY_SOURCE in edge.sources
    measured = {
        "count": edge.lag_count,
        "p50_ms": _ms(histogram.quantile(edge.lag_histogram, 0.50)),
        "p95_ms": _ms(histogram.quantile(edge.lag_histogram, 0.95)),
    }
    empty = {"count": 0, "p50_ms": None, "p95_ms": None}
    lag, gateway = (empty, measured) if overhead else (measured, empty)
    return {f"lag_{k}": v for k, v in lag.items()} | {
        f"overhead_{k}": v for k, v in gateway.items()
    }


def graph_view(conn: Connection, window: Window) -> dict:
    """Nodes, edges with their metrics, and cycles: the ``clew graph --json`` document."""
    edges = queries.edge_totals(conn, window)
    nodes = queries.nodes(conn)
    graph = graphs.build(edges, nodes)
    first, last = queries.data_range(conn)
    seconds = window_seconds(window, first, last)
    fans = graphs.fan(graph)
    central = graphs.betweenness(graph)
    single_points = set(graphs.articulation_points(graph))
    node_list = []
    for name in sorted(graph.nodes):
        data = graph.nodes[name]
        inbound = [d["totals"] for _, _, d in graph.in_edges(name, data=True)]
        served = sum(e.count for e in inbound)
        failed = sum(e.errors for e in inbound)
        merged = histogram.merge(e.histogram for e in inbound)
        node_list.append(
            {
                "id": name,
                "kind": data["kind"],
                "namespace": data["namespace"],
                "environment": data["environment"],
                "parent": data["parent"],
                "requests": served,
                "errors": failed,
                "client_errors": sum(e.client_errors for e in inbound),
                "error_ratio": round(failed / served, 6) if served else 0.0,
                "rps": round(served / seconds, 4),
                "p50_ms": _ms(histogram.quantile(merged, 0.50)),
                "p95_ms": _ms(histogram.quantile(merged, 0.95)),
                "p99_ms": _ms(histogram.quantile(merged, 0.99)),
                "max_ms": _ms(max((e.duration_max_ns for e in inbound), default=None)),
                "fan_in": fans[name][0],
                "fan_out": fans[name][1],
                "betweenness": central[name],
                "articulation": name in single_points,
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
    # Requests from outside: from the generic client and from the consumers a gateway names.
    entry = sum(e.count for e in edges if graph.nodes[e.client]["kind"] == "client")
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
    """Per-minute rate, error ratio and p50/p95/p99, over all edges or one."""
    out = []
    for m in queries.minute_series(conn, window, client, server):
        out.append(
            {
                "minute": m.minute,
                "rps": round(m.count / 60.0, 4),
                "errors": m.errors,
                "error_ratio": round(m.errors / m.count, 6) if m.count else 0.0,
                "p50_ms": _ms(histogram.quantile(m.histogram, 0.50)),
                "p95_ms": _ms(histogram.quantile(m.histogram, 0.95)),
                "p99_ms": _ms(histogram.quantile(m.histogram, 0.99)),
            }
        )
    return out


def blast_radius(conn: Connection, window: Window, node: str) -> list[str]:
    """Every node that depends on ``node`` in ``window``, directly or transitively, sorted."""
    graph = graphs.build(queries.edge_totals(conn, window), queries.nodes(conn))
    return sorted(graphs.blast_radius(graph, node))


def previous_window(window: Window, last_minute: int | None) -> Window:
    """The window of the same length just before ``window`` (an open end stops at the last
    minute with data; an open start has no previous window, so it gives an empty one)."""
    until = window.until_minute
    if until is None:
        until = (last_minute + 1) if last_minute is not None else 0
    if window.since_minute is None:
        return Window(until, until)
    length = until - window.since_minute
    return Window(window.since_minute - length, window.since_minute)


def graph_diff(conn: Connection, old: Window, new: Window, **thresholds: float) -> dict:
    """Edges added, removed and changed (error ratio, p95) from window ``old`` to ``new``."""
    first, last = queries.data_range(conn)
    documents = []
    for window in (old, new):
        seconds = window_seconds(window, first, last)
        documents.append([edge_metrics(e, seconds) for e in queries.edge_totals(conn, window)])
    result = graphs.diff(documents[0], documents[1], **thresholds)
    result["old"] = {"since_minute": old.since_minute, "until_minute": old.until_minute}
    result["new"] = {"since_minute": new.since_minute, "until_minute": new.until_minute}
    return result


def _endpoint_metrics(endpoint: str, totals: EdgeTotals, seconds: float) -> dict:
    data = edge_metrics(totals, seconds)
    return {
        "endpoint": endpoint,
        "client": data["client"],
        "connection_type": data["connection_type"],
    } | {
        k: data[k]
        for k in (
            "count",
            "errors",
            "client_errors",
            "error_ratio",
            "rps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
        )
    }


def _merged_by_endpoint(
    items: list[tuple[str, EdgeTotals]], key_of
) -> list[tuple[str, EdgeTotals]]:
    merged: dict[tuple, tuple[str, EdgeTotals]] = {}
    for endpoint, totals in items:
        key = key_of(endpoint, totals)
        if key not in merged:
            merged[key] = (endpoint, EdgeTotals(totals.client, totals.server, key[-1]))
        into = merged[key][1]
        into.sources |= totals.sources
        into.count += totals.count
        into.errors += totals.errors
        into.client_errors += totals.client_errors
        into.duration_sum_ns += totals.duration_sum_ns
        into.duration_max_ns = max(into.duration_max_ns, totals.duration_max_ns)
        into.histogram = histogram.merge((into.histogram, totals.histogram))
    return [merged[k] for k in sorted(merged)]


def _endpoint_rows(conn: Connection, window: Window, items: list) -> list[dict]:
    first, last = queries.data_range(conn)
    seconds = window_seconds(window, first, last)
    rows = [_endpoint_metrics(endpoint, totals, seconds) for endpoint, totals in items]
    rows.sort(key=lambda r: (-r["count"], r["endpoint"]))
    return rows


def edge_endpoints(conn: Connection, window: Window, client: str, server: str) -> list[dict]:
    """The endpoints called over one edge (every connection type), busiest first."""
    items = queries.endpoint_totals(conn, window, client=client, server=server)
    items = _merged_by_endpoint(items, lambda ep, t: (ep, t.connection_type))
    return _endpoint_rows(conn, window, items)


def service_endpoints(conn: Connection, window: Window, service: str) -> list[dict]:
    """The endpoints ``service`` serves (HTTP routes, RPC methods, topics consumed), merged over
    its callers, busiest first; ``client`` is the one caller's name, ``"*"`` for several, or
    ``""`` when none is known (calls only spanmetrics counted name no caller)."""
    items = queries.endpoint_totals(conn, window, server=service)
    callers: dict[tuple[str, str], set[str]] = {}
    for endpoint, totals in items:
        names = callers.setdefault((endpoint, totals.connection_type), set())
        if totals.client != queries.UNATTRIBUTED:
            names.add(totals.client)
    merged = _merged_by_endpoint(items, lambda ep, t: (ep, t.connection_type))
    rows = _endpoint_rows(conn, window, merged)
    for row in rows:
        names = callers[(row["endpoint"], row["connection_type"])]
        if len(names) == 1:
            row["client"] = next(iter(names))
        else:
            row["client"] = "*" if names else queries.UNATTRIBUTED
        row["callers"] = sorted(names)
    return rows


def entry_operations(conn: Connection, window: Window) -> list[dict]:
    """Each entry operation (a root span's service and endpoint) with its end-to-end latency:
    rate, errors and p50/p95/p99/max of its root spans, and who called it (``client``, or the
    gateways that logged its requests), busiest first."""
    # A root span's caller is the generic client, or the gateway that logged its request.
    callers = [ROOT_CALLER, *(n.name for n in queries.nodes(conn).values() if n.kind == "gateway")]
    items = queries.endpoint_totals(conn, window, clients=callers, sources=queries.TRACE_SOURCES)
    called_by: dict[tuple[str, str], set[str]] = {}
    for endpoint, totals in items:
        called_by.setdefault((totals.server, endpoint), set()).add(totals.client)
    merged = _merged_by_endpoint(items, lambda ep, t: (t.server, ep, "entry"))
    first, last = queries.data_range(conn)
    seconds = window_seconds(window, first, last)
    rows = []
    for endpoint, totals in merged:
        row = {"service": totals.server} | _endpoint_metrics(endpoint, totals, seconds)
        del row["client"], row["connection_type"]
        row["callers"] = sorted(called_by[(totals.server, endpoint)])
        rows.append(row)
    rows.sort(key=lambda r: (-r["count"], r["service"], r["endpoint"]))
    return rows


def failing_paths(conn: Connection, window: Window, limit: int = 50) -> list[dict]:
    """Failing integration paths in ``window``, most failing traces first: entry operation,
    the nodes to the failing edge, counts, since when and an exemplar trace."""
    out = []
    for p in queries.failing_paths(conn, window)[:limit]:
        out.append(
            {
                "id": p.path_id,
                "entry": {"service": p.entry_service, "endpoint": p.entry_endpoint},
                "path": p.path,
                "failing_edge": {"client": p.failing_client, "server": p.failing_server},
                "count": p.count,
                "first_seen_ns": p.first_seen_ns,
                "last_seen_ns": p.last_seen_ns,
                "exemplar": {"trace_id": p.exemplar_trace_id, "span_id": p.exemplar_span_id},
                "error": p.error,
            }
        )
    return out


def trace_view(conn: Connection, trace_id: str) -> dict | None:
    """One stored trace as a waterfall with its failing span and critical path marked."""
    return traces.trace_view(conn, trace_id)
