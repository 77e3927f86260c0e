"""The dependency graph: a ``networkx.MultiDiGraph`` of nodes and edges over a window.

Edges are keyed by connection type, so a service that both calls and messages another keeps two
edges. Analyses are pure functions of the graph.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from clew.records import ROOT_CALLER, NodeKind
from clew.store.queries import EdgeTotals, Node

#: Longest cycle looked for; longer loops are not the ones architects act on.
CYCLE_LENGTH_BOUND = 8


def _default_kind(name: str) -> str:
    return NodeKind.CLIENT if name == ROOT_CALLER else NodeKind.SERVICE


def build(edges: Iterable[EdgeTotals], nodes: dict[str, Node]) -> nx.MultiDiGraph:
    """The graph of ``edges``; node attributes come from ``nodes`` where known."""
    graph = nx.MultiDiGraph()
    for edge in edges:
        for name in (edge.client, edge.server):
            if name not in graph:
                node = nodes.get(name)
                graph.add_node(
                    name,
                    kind=node.kind if node else _default_kind(name),
                    namespace=node.namespace if node else None,
                    environment=node.environment if node else None,
                    parent=node.parent if node else None,
                )
        graph.add_edge(edge.client, edge.server, key=edge.connection_type, totals=edge)
    # A topic's broker is drawn around it, with or without edges of its own.
    for _, parent in list(graph.nodes(data="parent")):
        if parent is not None and parent not in graph:
            node = nodes.get(parent)
            graph.add_node(
                parent,
                kind=node.kind if node else NodeKind.BROKER,
                namespace=node.namespace if node else None,
                environment=node.environment if node else None,
                parent=None,
            )
    return graph


def cycles(graph: nx.MultiDiGraph, length_bound: int = CYCLE_LENGTH_BOUND) -> list[list[str]]:
    """Dependency cycles, each rotated to start at its smallest node, in sorted order."""
    simple = nx.DiGraph(graph.edges())
    found = set()
    for cycle in nx.simple_cycles(simple, length_bound=length_bound):
        if len(cycle) < 2:
            continue  # a service calling itself is not a dependency cycle
        start = cycle.index(min(cycle))
        found.add(tuple(cycle[start:] + cycle[:start]))
    return [list(c) for c in sorted(found, key=lambda c: (len(c), c))]


def blast_radius(graph: nx.MultiDiGraph, node: str) -> set[str]:
    """Every node that depends on ``node``, directly or transitively (its upstream callers)."""
    if node not in graph:
        return set()
    return set(nx.ancestors(graph, node))


def dependencies(graph: nx.MultiDiGraph, node: str) -> set[str]:
    """Every node ``node`` depends on, directly or transitively."""
    if node not in graph:
        return set()
    return set(nx.descendants(graph, node))


def _services_only(graph: nx.MultiDiGraph) -> nx.DiGraph:
    """The graph without the virtual caller of root spans, which touches every entry service
    and would make each look like a dependency of one node."""
    simple = nx.DiGraph()  # structure only: copying every edge's totals would cost more
    simple.add_nodes_from(n for n, kind in graph.nodes(data="kind") if kind != NodeKind.CLIENT)
    simple.add_edges_from((u, v) for u, v in graph.edges() if u in simple and v in simple)
    return simple


def articulation_points(graph: nx.MultiDiGraph) -> list[str]:
    """Single points of failure: nodes whose loss splits the rest of the graph apart, sorted."""
    return sorted(nx.articulation_points(nx.Graph(_services_only(graph))))


def betweenness(graph: nx.MultiDiGraph) -> dict[str, float]:
    """Each node's share of the shortest dependency paths between other nodes (0..1)."""
    simple = _services_only(graph)
    scores = nx.betweenness_centrality(simple, normalized=True) if len(simple) > 2 else {}
    return {node: round(scores.get(node, 0.0), 6) for node in graph.nodes}


def fan(graph: nx.MultiDiGraph) -> dict[str, tuple[int, int]]:
    """Each node's fan-in and fan-out: how many distinct nodes call it, and it calls."""
    simple = nx.DiGraph(graph.edges())
    simple.add_nodes_from(graph.nodes)
    return {node: (simple.in_degree(node), simple.out_degree(node)) for node in graph.nodes}


def entry_nodes(graph: nx.MultiDiGraph) -> list[str]:
    """Where traffic comes in: the nodes the virtual caller of root spans calls, sorted."""
    return sorted(
        {
            server
            for client, server in graph.edges()
            if graph.nodes[client].get("kind") == NodeKind.CLIENT
        }
    )


def paths_to_edge(
    graph: nx.MultiDiGraph, client: str, server: str, cutoff: int = CYCLE_LENGTH_BOUND
) -> list[list[str]]:
    """Every simple path from an entry node through the edge ``client → server`` (ending at
    ``server``), at most ``cutoff`` edges long, shortest first."""
    if not graph.has_edge(client, server):
        return []
    simple = _services_only(graph)
    found: set[tuple[str, ...]] = set()
    for entry in entry_nodes(graph):
        if entry == client:
            found.add((client, server))
            continue
        if entry not in simple or client not in simple:
            continue
        for path in nx.all_simple_paths(simple, entry, client, cutoff=cutoff - 1):
            if server not in path:
                found.add((*path, server))
    return [list(p) for p in sorted(found, key=lambda p: (len(p), p))]


#: What a window diff reports as a change: an error ratio moved by at least ``DIFF_ERROR_RATIO``
#: (absolute), or a p95 moved by at least ``DIFF_P95`` of its old value and ``DIFF_P95_MS``; both
#: only where each window has ``DIFF_MIN_COUNT`` requests, so that a handful of calls is not news.
DIFF_ERROR_RATIO = 0.05
DIFF_P95 = 0.5
DIFF_P95_MS = 10.0
DIFF_MIN_COUNT = 20


def diff(
    old: list[dict],
    new: list[dict],
    *,
    error_ratio: float = DIFF_ERROR_RATIO,
    p95: float = DIFF_P95,
    p95_ms: float = DIFF_P95_MS,
    min_count: int = DIFF_MIN_COUNT,
) -> dict:
    """Edges added, removed and changed between two windows' edge metrics (``edge_metrics``
    dicts), each list sorted by (client, server, connection type)."""

    def key(edge: dict) -> tuple[str, str, str]:
        return (edge["client"], edge["server"], edge["connection_type"])

    before = {key(e): e for e in old}
    after = {key(e): e for e in new}
    changed = []
    for k in sorted(before.keys() & after.keys()):
        a, b = before[k], after[k]
        if min(a["count"], b["count"]) < min_count:
            continue
        changes = []
        if abs(b["error_ratio"] - a["error_ratio"]) >= error_ratio:
            changes.append("error_ratio")
        if a["p95_ms"] is not None and b["p95_ms"] is not None:
            moved = abs(b["p95_ms"] - a["p95_ms"])
            if moved >= p95_ms and moved >= p95 * a["p95_ms"]:
                changes.append("p95")
        if changes:
            changed.append(
                {"client": k[0], "server": k[1], "connection_type": k[2], "old": a, "new": b}
                | {"changes": changes}
            )
    return {
        "added": [after[k] for k in sorted(after.keys() - before.keys())],
        "removed": [before[k] for k in sorted(before.keys() - after.keys())],
        "changed": changed,
        "thresholds": {
            "error_ratio": error_ratio,
            "p95": p95,
            "p95_ms": p95_ms,
            "min_count": min_count,
        },
    }
