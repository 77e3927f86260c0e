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


def test_single_points_of_failure_ignore_the_virtual_caller_of_entry_spans():
    g = small_graph()
    # shop reaches everything through orders; orders-db hangs off orders alone
    assert graph.articulation_points(g) == ["orders"]
    scores = graph.betweenness(g)
    assert scores["orders"] == max(scores.values()) > 0
    assert scores["client"] == 0.0 and scores["orders-db"] == 0.0


def test_fan_in_and_fan_out_count_distinct_neighbours():
    fans = graph.fan(small_graph())
    # orders is called by shop, stock and itself; calls hub, orders-db and itself
    assert fans["orders"] == (3, 3)
    assert fans["client"] == (0, 1) and fans["orders-db"] == (1, 0)


def test_paths_to_an_edge_start_at_entry_nodes_and_end_at_its_server():
    g = small_graph()
    assert graph.entry_nodes(g) == ["shop"]
    assert graph.paths_to_edge(g, "hub", "stock") == [["shop", "orders", "hub", "stock"]]
    assert graph.paths_to_edge(g, "shop", "orders") == [["shop", "orders"]]
    # a path never passes through the edge's server before reaching it
    assert graph.paths_to_edge(g, "stock", "orders") == []
    assert graph.paths_to_edge(g, "shop", "hub") == []  # no such edge


def _edge(client, server, count=100, error_ratio=0.0, p95_ms=50.0, ctype="direct"):
    return {
        "client": client,
        "server": server,
        "connection_type": ctype,
        "count": count,
        "error_ratio": error_ratio,
        "p95_ms": p95_ms,
    }


def test_a_window_diff_reports_added_removed_and_changed_edges_beyond_thresholds():
    old = [
        _edge("a", "b"),
        _edge("a", "c"),
        _edge("b", "d", error_ratio=0.01),
        _edge("c", "d", p95_ms=40.0),
        _edge("d", "e", p95_ms=1.0),
        _edge("e", "f", count=5, error_ratio=0.0),
    ]
    new = [
        _edge("a", "b", error_ratio=0.04, p95_ms=70.0),  # under both thresholds: no news
        _edge("b", "d", error_ratio=0.26),
        _edge("c", "d", p95_ms=90.0),
        _edge("d", "e", p95_ms=4.0),  # quadrupled, but by 3 ms only
        _edge("e", "f", count=5, error_ratio=1.0),  # five calls are too few to judge
        _edge("x", "y"),
    ]
    result = graph.diff(old, new)
    assert [(e["client"], e["server"]) for e in result["added"]] == [("x", "y")]
    assert [(e["client"], e["server"]) for e in result["removed"]] == [("a", "c")]
    assert [(c["client"], c["server"], c["changes"]) for c in result["changed"]] == [
        ("b", "d", ["error_ratio"]),
        ("c", "d", ["p95"]),
    ]
    assert graph.diff(new, new)["changed"] == []
