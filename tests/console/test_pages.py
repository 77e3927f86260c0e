"""Pages' pure helpers: filters, selection, panels, links and the router, without a database."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from dash import html

from console import figures, ids, panels, shell
from console.pages import overview, service_map
from console.state import ViewState

from .tree import by_id, texts, walk

VIEW = {
    "nodes": [
        {
            "id": "client",
            "kind": "client",
            "namespace": None,
            "environment": None,
            "requests": 0,
            "errors": 0,
            "error_ratio": 0.0,
        },
        {
            "id": "web",
            "kind": "service",
            "namespace": "retail",
            "environment": "prod",
            "requests": 100,
            "errors": 1,
            "error_ratio": 0.01,
        },
        {
            "id": "pay",
            "kind": "service",
            "namespace": "payments",
            "environment": "prod",
            "requests": 50,
            "errors": 5,
            "error_ratio": 0.1,
        },
        {
            "id": "ledger",
            "kind": "service",
            "namespace": "payments",
            "environment": "prod",
            "requests": 10,
            "errors": 0,
            "error_ratio": 0.0,
        },
        {
            "id": "db",
            "kind": "database",
            "namespace": None,
            "environment": None,
            "requests": 10,
            "errors": 0,
            "error_ratio": 0.0,
        },
    ],
    "edges": [
        {
            "client": c,
            "server": s,
            "connection_type": t,
            "sources": ["trace"],
            "count": n,
            "errors": e,
            "client_errors": 0,
            "error_ratio": e / n,
            "rps": n / 60,
            "p50_ms": 1.0,
            "p95_ms": 2.0,
            "p99_ms": 3.0,
            "max_ms": 4.0,
        }
        for c, s, t, n, e in [
            ("client", "web", "virtual_node", 100, 1),
            ("web", "pay", "direct", 50, 5),
            ("pay", "ledger", "direct", 10, 0),
            ("ledger", "db", "database", 10, 0),
        ]
    ],
    "cycles": [],
}


def names(nodes):
    return sorted(n["id"] for n in nodes)


def test_no_filter_keeps_the_whole_graph():
    nodes, edges, context = service_map.filter_graph(VIEW, ViewState())
    assert len(nodes) == 5 and len(edges) == 4 and context == set()


def test_a_namespace_filter_keeps_its_nodes_and_fades_their_neighbours():
    nodes, edges, context = service_map.filter_graph(VIEW, ViewState(namespace="payments"))
    assert names(nodes) == ["db", "ledger", "pay", "web"]
    assert context == {"web", "db"}
    assert [(e["client"], e["server"]) for e in edges] == [
        ("web", "pay"),
        ("pay", "ledger"),
        ("ledger", "db"),
    ]


def test_a_kind_filter_and_an_environment_filter_combine():
    nodes, _, context = service_map.filter_graph(VIEW, ViewState(kind="database"))
    assert names(nodes) == ["db", "ledger"] and context == {"ledger"}
    nodes, _, _ = service_map.filter_graph(VIEW, ViewState(environment="nowhere"))
    assert nodes == []


def test_selection_round_trips_through_the_url():
    for query in ({"node": "pay"}, {"client": "web", "server": "pay"}, {}):
        selection = service_map.selection_of(query)
        assert service_map.selection_keys(selection) == query
    assert service_map.selection_of({"client": "web"}) == {}  # half an edge is no edge


def test_taps_select_and_clear():
    tap = service_map.selection_from_tap
    assert tap("tapNodeData", {"id": "pay"}, None, {}) == {"node": "pay"}
    assert tap("tapEdgeData", None, {"source": "web", "target": "pay"}, {"node": "x"}) == {
        "edge": ["web", "pay"]
    }
    assert tap("clear", {"id": "pay"}, None, {"node": "pay"}) == {}
    assert tap(None, None, None, {"node": "pay"}) == {"node": "pay"}


def test_map_search_keeps_the_state_the_selection_and_labels():
    query = service_map.map_search(ViewState(window="all", q="pay"), {"node": "a&b"}, True)
    assert parse_qs(query[1:]) == {
        "window": ["all"],
        "q": ["pay"],
        "node": ["a&b"],
        "labels": ["1"],
    }


def test_a_selected_node_keeps_its_edges_and_neighbours_in_focus():
    elements = figures.map_elements(VIEW["nodes"], VIEW["edges"])
    assert service_map.neighbours(elements, "pay") == {"web", "ledger"}
    sheet = service_map.stylesheet(False, {"node": "pay"}, elements)
    rules = {rule["selector"]: rule["style"] for rule in sheet}
    assert rules["node"]["opacity"] < 1 and rules["edge"]["opacity"] < 1  # the rest fades
    assert rules['node[id = "ledger"], node[id = "web"]']["opacity"] == 1
    assert rules['edge[source = "pay"], edge[target = "pay"]']["opacity"] == 1
    assert rules['node[id = "pay"]']["border-color"] == figures.ACCENT
    assert service_map.stylesheet(False, {}) == figures.map_stylesheet()


def test_a_selected_edge_keeps_its_ends_in_focus():
    sheet = service_map.stylesheet(True, {"edge": ["web", "pay"]})
    selectors = [rule["selector"] for rule in sheet]
    assert 'edge[source = "web"][target = "pay"]' in selectors
    assert 'node[id = "web"], node[id = "pay"]' in selectors


def test_selectors_escape_quotes_and_backslashes_in_names():
    sheet = service_map.stylesheet(False, {"node": 'we"ird\\name'})
    selectors = [rule["selector"] for rule in sheet]
    assert r'node[id = "we\"ird\\name"]' in selectors


def test_node_panel_lists_edges_in_and_out():
    panel = texts(panels.node_panel(VIEW, "pay"))
    assert "payments" in panel and "Called by (1)" in panel and "Calls (1)" in panel
    assert "web" in panel and "ledger" in panel and "10.0 %" in panel
    assert "No traffic" in texts(panels.node_panel(VIEW, "gone"))


def test_edge_panel_shows_percentiles_rate_errors_and_a_chart():
    series = [{"minute": 1, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 2.0}]
    panel = panels.edge_panel(VIEW, "web", "pay", series)
    text = texts(panel)
    assert "1.0 ms / 2.0 ms / 3.0 ms" in text and "5 (10.0 %)" in text and "0.83/s" in text
    assert any(getattr(c, "id", None) == ids.ServiceMap.EDGE_SERIES for c in panel)
    assert "No traffic" in texts(panels.edge_panel(VIEW, "pay", "web", []))


def test_the_empty_panel_lists_failing_edges_as_links_keeping_the_window():
    panel = service_map.overview_panel(VIEW, ViewState(window="all"))
    assert [(e["client"], e["server"]) for e in service_map.failing_edges(VIEW)] == [("web", "pay")]
    links = [c for c in walk(panel) if getattr(c, "href", None)]
    assert links[0].href == "/map?window=all&client=web&server=pay"


def test_worst_rows_link_to_the_map_with_names_encoded():
    rows = overview.worst_rows(
        [{**VIEW["edges"][1], "client": "a](javascript:x)", "server": "b c"}],
        ViewState(window="all", namespace="ignored"),
    )
    link = rows[0]["map"]
    assert link.startswith("[Show on map](/map?") and link.endswith(")")
    target = urlsplit(link[len("[Show on map](") : -1])
    assert parse_qs(target.query) == {
        "window": ["all"],
        "client": ["a](javascript:x)"],
        "server": ["b c"],
    }
    assert "(" not in target.query and ")" not in target.query


def test_overview_cards_name_the_six_headline_figures():
    figs = {
        "services": 17,
        "edges": 37,
        "calls": 3971,
        "rps": 0.37,
        "entry_rps": 0.07,
        "p95_ms": 229.0,
        "error_ratio": 0.0209,
    }
    text = texts(overview.cards(figs))
    for label in ("Services", "Edges", "Calls", "Entry requests", "p95 latency", "Error ratio"):
        assert label in text
    assert "0.37/s" in text and "229 ms" in text and "2.09 %" in text


def test_layouts_show_url_problems_and_keep_the_query_for_the_view():
    page = overview.layout(window="5y")
    found = by_id(page)
    assert found[ids.Overview.STATE].data == {"window": "5y"}
    assert "'5y'" in texts(found[ids.Overview.TOOLBAR.PROBLEMS])
    assert found[ids.Overview.TOOLBAR.WINDOW].value == "3h"


def test_the_router_renders_registered_pages_and_a_not_found_page():
    assert list(shell.PAGES) == [
        "/",
        "/map",
        "/paths",
        "/endpoints",
        "/governance",
        "/contracts",
        "/sources",
        "/admin",
    ]
    rendered = shell.render("/map", "?window=all&node=pay")
    found = by_id(rendered)
    assert found[ids.ServiceMap.STATE].data == {"window": "all", "node": "pay"}
    assert found[ids.ServiceMap.SELECTION].data == {"node": "pay"}
    assert found[ids.URL_WRITTEN].data == "?window=all&node=pay"
    assert "Page not found" in texts(shell.render("/nope", ""))
    assert isinstance(shell.render(None, None), html.Div)


def test_navigation_carries_the_window_but_not_the_filters():
    hrefs, classes = shell.nav_links("/map", "?window=all&namespace=retail&node=x")
    assert hrefs == [
        "/?window=all",
        "/map?window=all",
        "/paths?window=all",
        "/endpoints?window=all",
        "/governance?window=all",
        "/contracts?window=all",
        "/sources?window=all",
        "/admin?window=all",
    ]
    assert classes == ["nav-link", "nav-link active", *["nav-link"] * 6]


def test_an_open_window_is_charted_up_to_now():
    from clew.store.queries import Window
    from console.queries import OverviewModel

    figs = {
        "services": 1,
        "edges": 1,
        "calls": 60,
        "rps": 1.0,
        "entry_rps": 1.0,
        "p95_ms": 2.0,
        "error_ratio": 0.0,
        "worst_edges": [],
    }
    series = [{"minute": 100, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 2.0}]
    model = OverviewModel(figures=figs, series=series, data_range=(100, 100))
    out = overview.view(model, ViewState(window="15m"), Window(95, None), now_minute=109)
    rates = list(out["figure"].data[0].y)
    assert len(rates) == 15 and rates[5] == 1.0 and sum(rates) == 1.0
    everything = overview.view(model, ViewState(window="all"), Window(), now_minute=109)
    assert len(everything["figure"].data[0].y) == 1


def test_the_map_view_explains_an_empty_filter_and_an_empty_window():
    from console.queries import Facets

    facets = Facets(namespaces=["payments", "retail"], environments=["prod"])
    out = service_map.view(VIEW, facets, ViewState(environment="nowhere"), (1, 2))
    assert out["elements"] == [] and "No nodes match" in texts(out["message"])
    assert [o["value"] for o in out["environments"]] == ["prod", "nowhere"]
    empty = service_map.view(
        {"nodes": [], "edges": [], "cycles": []}, facets, ViewState(), (29_916_000, 29_916_666)
    )
    assert "No data in this window (last 3 hours)" in texts(empty["message"])
    assert "2026-11-18 11:06 UTC" in texts(empty["message"])
    full = service_map.view(VIEW, facets, ViewState(window="all"), (1, 2))
    assert full["message"] is None and full["summary"] == "all data · 5 nodes · 4 edges"


# --- Map: edge filters, overlays and the fuller panels ------------------------------------------


def test_edge_filters_drop_edges_and_the_nodes_left_without_any():
    nodes, edges, context = service_map.filter_graph(VIEW, ViewState(connection="database"))
    assert [(e["client"], e["server"]) for e in edges] == [("ledger", "db")]
    assert names(nodes) == ["db", "ledger"] and context == set()
    nodes, edges, _ = service_map.filter_graph(VIEW, ViewState(min_rate=1.0))
    assert [(e["client"], e["server"]) for e in edges] == [("client", "web")]  # 100/60 calls/s
    assert names(nodes) == ["client", "web"]


def test_edge_and_node_filters_combine():
    state = ViewState(namespace="payments", min_rate=1.0)
    nodes, edges, _ = service_map.filter_graph(VIEW, state)
    assert nodes == [] and edges == []
    state = ViewState(namespace="payments", connection="direct")
    nodes, edges, context = service_map.filter_graph(VIEW, state)
    assert [(e["client"], e["server"]) for e in edges] == [("web", "pay"), ("pay", "ledger")]
    assert context == {"web"}


def test_a_filtered_topic_keeps_its_broker_around_it():
    view = {
        "nodes": [
            {**VIEW["nodes"][1], "id": "shipper"},
            {**VIEW["nodes"][4], "id": "kafka", "kind": "broker"},
            {**VIEW["nodes"][4], "id": "events", "kind": "topic", "parent": "kafka"},
        ],
        "edges": [{**VIEW["edges"][1], "client": "shipper", "server": "events"}],
        "cycles": [],
    }
    nodes, _, context = service_map.filter_graph(view, ViewState(kind="topic"))
    assert names(nodes) == ["events", "kafka", "shipper"]
    assert context == {"shipper"}  # the broker is drawn around the topic, not faded


def test_the_blast_button_toggles_the_selected_node():
    assert service_map.blast_toggle({"node": "pay"}, "") == "pay"
    assert service_map.blast_toggle({"node": "pay"}, "pay") == ""
    assert service_map.blast_toggle({"node": "web"}, "pay") == "web"
    assert service_map.blast_toggle({"edge": ["a", "b"]}, "pay") == "pay"


def test_map_search_keeps_the_overlays():
    query = service_map.map_search(
        ViewState(window="1h", connection="direct"), {"node": "pay"}, blast="pay", diff=True
    )
    assert parse_qs(query[1:]) == {
        "window": ["1h"],
        "connection": ["direct"],
        "node": ["pay"],
        "blast": ["pay"],
        "diff": ["1"],
    }


def test_while_a_blast_radius_shows_the_selection_is_only_outlined():
    elements = figures.map_elements(VIEW["nodes"], VIEW["edges"])
    sheet = service_map.stylesheet(False, {"node": "pay"}, elements, blast=True)
    rules = {rule["selector"]: rule["style"] for rule in sheet}
    assert rules["node"].get("opacity") is None  # the blast radius decides what fades
    assert rules['node[id = "pay"]']["border-color"] == figures.ACCENT
    assert 'node[id = "ledger"], node[id = "web"]' not in rules


def test_the_map_view_draws_the_diff_and_the_blast_radius_with_their_legend():
    from clew.store.queries import Window
    from console.queries import Facets, GraphDiff

    removed = {**VIEW["edges"][3], "client": "ledger", "server": "old-db"}
    diff = GraphDiff(
        old=Window(0, 45),
        new=Window(45, 90),
        diff={
            "added": [VIEW["edges"][1]],
            "removed": [removed],
            "changed": [],
            "thresholds": {"error_ratio": 0.05},
        },
        nodes={"old-db": {"kind": "database"}},
    )
    facets = Facets(namespaces=[], environments=[])
    out = service_map.view(
        VIEW, facets, ViewState(window="1h"), (1, 2), diff=diff, blast=("db", ["ledger", "pay"])
    )
    drawn = {e["data"]["id"]: e for e in out["elements"] if e["group"] == "nodes"}
    assert drawn["old-db"]["data"]["kind"] == "database"
    assert "diff-removed" in drawn["old-db"]["classes"] and "blast-origin" in drawn["db"]["classes"]
    assert out["summary"].endswith("· vs the 45 minutes before: +1 −1 ~0")
    assert "5 nodes · 4 edges" in out["summary"]  # what the window holds, the removed apart
    legend = texts(out["overlay"])
    assert "Compared with the 45 minutes before:" in legend and "1 new" in legend
    assert "1 gone" in legend and "Blast radius of  db : 2 dependent nodes" in legend
    refused = service_map.view(VIEW, facets, ViewState(window="all"), (1, 2), diff_problem="no")
    assert texts(refused["overlay"]) == "no"


def test_node_panel_shows_red_figures_endpoints_and_its_place_in_the_graph():
    from . import fakes

    node = {
        **VIEW["nodes"][2],
        "rps": 0.83,
        "p50_ms": 12.0,
        "p95_ms": 40.0,
        "p99_ms": 88.0,
        "fan_in": 1,
        "fan_out": 1,
        "betweenness": 0.25,
        "articulation": True,
    }
    view = {**VIEW, "nodes": [*VIEW["nodes"][:2], node, *VIEW["nodes"][3:]]}
    panel = panels.node_panel(
        view,
        "pay",
        endpoints=[fakes.endpoint("POST /charges", 50, 5), fakes.endpoint("GET /health", 5)],
        series=[{"minute": 1, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 2.0}],
        blast_radius=["client", "web"],
    )
    text = texts(panel)
    for fact in ("0.83/s", "12 ms / 40 ms / 88 ms", "1 / 1", "0.250", "Single point of failure"):
        assert fact in text
    assert "2 dependent nodes" in text and "Endpoints it serves (2)" in text
    assert text.index("POST /charges") < text.index("GET /health")  # busiest first
    assert "12 / 40 / 88 ms" in text
    found = by_id(panel)
    assert found[ids.ServiceMap.BLAST_BUTTON].children == "Show blast radius (2)"
    assert ids.ServiceMap.NODE_SERIES in found
    active = panels.node_panel(view, "pay", blast_radius=["web"], blast_active=True)
    assert by_id(active)[ids.ServiceMap.BLAST_BUTTON].children == "Hide blast radius"
    lonely = panels.node_panel(view, "pay", blast_radius=[])
    assert by_id(lonely)[ids.ServiceMap.BLAST_BUTTON].disabled is True


def test_edge_panel_lists_the_edge_endpoints_and_charts_latency():
    from . import fakes

    panel = panels.edge_panel(
        VIEW,
        "web",
        "pay",
        [{"minute": 1, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 2.0}],
        [fakes.endpoint("POST /charges", 50, 5)],
    )
    found = by_id(panel)
    assert ids.ServiceMap.EDGE_LATENCY in found and ids.ServiceMap.EDGE_SERIES in found
    assert "Endpoints (1)" in texts(panel) and "POST /charges" in texts(panel)


def test_the_empty_panel_lists_slow_edges_and_links_to_the_failing_paths():
    slow = {**VIEW["edges"][2], "p95_ms": 1500.0}
    view = {**VIEW, "edges": [*VIEW["edges"][:2], slow, VIEW["edges"][3]]}
    assert service_map.slowest_edges(view) == [slow]
    panel = service_map.overview_panel(view, ViewState(window="all"))
    assert "Slow edges, p95 ≥ 500 ms (1)" in texts(panel) and "1.50 s" in texts(panel)
    hrefs = [c.href for c in walk(panel) if getattr(c, "href", None)]
    assert "/map?window=all&client=pay&server=ledger" in hrefs
    assert "/paths?window=all" in hrefs
