"""Graph analyses as pure functions of a small graph built by hand."""

from __future__ import annotations

from clew import graph
from clew.store.queries import EdgeTotals, Node


def small_graph():
    edges = [
        EdgeTotals("client", "shop", "virtual_node"),
        EdgeTotals("shop", "orders", "direct"),
        EdgeTotals("orders", "hub", "direct"),
        EdgeTotals("hub", "stock", "direct"),
        EdgeTotals("stock", "orders", "direct"),
        EdgeTotals("orders", "orders-db", "database"),
        EdgeTotals("orders", "orders", "direct"),  # a self-call is no dependency cycle
    ]
    nodes = {"orders-db": Node("orders-db", "database", None, None, None)}
    return graph.build(edges, nodes)


def test_cycles_are_canonical_and_exclude_self_calls():
    assert graph.cycles(small_graph()) == [["hub", "stock", "orders"]]
    assert graph.cycles(small_graph(), length_bound=2) == []


def test_blast_radius_and_dependencies_follow_edges_transitively():
    g = small_graph()
    assert graph.blast_radius(g, "orders-db") == {"client", "shop", "orders", "hub", "stock"}
    assert graph.blast_radius(g, "client") == set()
    assert graph.dependencies(g, "shop") == {"orders", "hub", "stock", "orders-db"}
    assert graph.blast_radius(g, "unknown") == graph.dependencies(g, "unknown") == set()
    assert g.nodes["orders-db"]["kind"] == "database" and g.nodes["shop"]["kind"] == "service"
