"""The dependency graph: a ``networkx.MultiDiGraph`` of nodes and edges over a window.

Edges are keyed by connection type, so a service that both calls and messages another keeps two
edges. Analyses are pure functions of the graph.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from clew.records import NodeKind
from clew.store.queries import EdgeTotals, Node

#: Longest cycle looked for; longer loops are not the ones architects act on.
CYCLE_LENGTH_BOUND = 8


def build(edges: Iterable[EdgeTotals], nodes: dict[str, Node]) -> nx.MultiDiGraph:
    """The graph of ``edges``; node attributes come from ``nodes`` where known."""
    graph = nx.MultiDiGraph()
    for edge in edges:
        for name in (edge.client, edge.server):
            if name not in graph:
                node = nodes.get(name)
                graph.add_node(
                    name,
                    kind=node.kind if node else NodeKind.SERVICE,
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
    simple = nx.DiGraph(graph)
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
