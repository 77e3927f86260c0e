"""The console over HTTP with Flask's test client: pages, assets and callbacks on the sample."""

from __future__ import annotations

import json
import re

import pytest

from clew.app import create_app
from console import ids
from console.state import query_of

from .conftest import HOSTILE, SAMPLE_SERVICES

ID_MAP, ID_OVERVIEW = ids.ServiceMap, ids.Overview


@pytest.fixture
def client(sample_app):
    return sample_app.test_client()


def _outputs(key: str) -> list[dict] | dict:
    if not key.startswith(".."):
        component, prop = key.rsplit(".", 1)
        return {"id": component, "property": prop}
    return [
        dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
        for part in key[2:-2].split("...")
    ]


def _names(key: str) -> list[str]:
    outputs = _outputs(key)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return [f"{o['id']}.{o['property'].split('@')[0]}" for o in outputs]


def call(client, output: str, inputs: dict, state: dict | None = None) -> dict:
    """POST one callback the way the browser does; ``output`` picks it by an output it names.

    Returns the response's ``{id: {property: value}}``.
    """
    dependencies = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in dependencies if output in _names(d["output"]))

    def values(specs, given):
        return [{**spec, "value": given.get(f"{spec['id']}.{spec['property']}")} for spec in specs]

    body = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": values(dep["inputs"], inputs),
        "state": values(dep["state"], state or {}),
        "changedPropIds": list(inputs),
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_json()["response"]


def routed(client, pathname: str, query: str) -> str:
    """The page the router draws for a URL the page did not write itself, as JSON text."""
    inputs = {"url.pathname": pathname, "url.search": query}
    response = call(client, "page.children", inputs, {"url-written.data": ""})
    return json.dumps(response[ids.PAGE]["children"])


def map_panel(client, selection: dict) -> dict:
    """The map's side panel callback for ``selection`` over all data, as its response."""
    inputs = {f"{ID_MAP.SELECTION}.data": selection, f"{ID_MAP.STATE}.data": {"window": "all"}}
    return call(client, f"{ID_MAP.PANEL}.children", inputs)


def test_the_index_loads_only_local_scripts(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources)
    assert not re.search(r"https?://(?!www\.w3\.org)", html)
    cytoscape = next(s for s in sources if "dash_cytoscape_extra" in s)  # carries dagre
    assert client.get(cytoscape).status_code == 200
    assert client.get("/_dash-component-suites/dash_ag_grid/async-community.js").status_code == 200
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert any("clew.css" in s for s in stylesheets)


def test_every_page_path_serves_the_app(client):
    for path in ("/", "/map", "/map?window=all&node=payments-api", "/no-such-page"):
        assert client.get(path).status_code == 200


def test_the_kernel_routes_still_answer_beside_dash(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    graph = client.get("/api/graph").get_json()
    assert {"nodes", "edges", "cycles"} <= set(graph)


def test_the_layout_has_the_shell_and_the_demo_banner(client):
    layout = json.dumps(client.get("/_dash-layout").get_json(), ensure_ascii=False)
    assert "Demo mode — sample landscape, no authentication" in layout
    for component in (ids.LOCATION, ids.PAGE, ids.NAV, ids.PAGE_URL, ids.URL_WRITTEN):
        assert f'"id": "{component}"' in layout


def test_no_banner_outside_demo_mode(sample_db):
    app = create_app({"DATABASE_URL": "sqlite:///" + sample_db, "AUTH": False})
    layout = json.dumps(app.test_client().get("/_dash-layout").get_json())
    assert "Demo mode" not in layout


def test_dependencies_list_the_router_and_the_pages(client):
    outputs = [d["output"] for d in client.get("/_dash-dependencies").get_json()]
    assert "page.children" in outputs
    assert any(f"{ID_MAP.GRAPH}.elements" in o for o in outputs)
    assert any(f"{ID_OVERVIEW.WORST}.rowData" in o for o in outputs)


def test_the_router_renders_the_map_with_its_state_from_the_url(client):
    page = routed(client, "/map", "?window=all&node=payments-api")
    assert f'"id": "{ID_MAP.GRAPH}"' in page
    assert '{"window": "all", "node": "payments-api"}' in page  # the state store
    assert "Service map" in page


def test_the_router_ignores_the_query_a_page_wrote_itself(client):
    response = client.post(
        "/_dash-update-component",
        json={
            "output": "page.children",
            "outputs": {"id": "page", "property": "children"},
            "inputs": [
                {"id": "url", "property": "pathname", "value": "/map"},
                {"id": "url", "property": "search", "value": "?window=all"},
            ],
            "state": [{"id": "url-written", "property": "data", "value": "?window=all"}],
            "changedPropIds": ["url.search"],
        },
    )
    assert response.status_code in (200, 204)
    assert ids.PAGE not in ((response.get_json(silent=True) or {}).get("response") or {})


def test_the_map_over_all_data_draws_the_sample_services(client):
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": {"window": "all"}})
    elements = response[ID_MAP.GRAPH]["elements"]
    nodes = {e["data"]["id"]: e for e in elements if e["group"] == "nodes"}
    edges = [e for e in elements if e["group"] == "edges"]
    for service in SAMPLE_SERVICES:
        assert service in nodes
    assert nodes["orders-db"]["data"]["kind"] == "database"
    assert "client" in nodes["client"]["classes"].split()
    assert {e["data"]["colour"] for e in edges} >= {"#2f9e5b", "#d64545"}  # healthy and failing
    assert "nodes" in response[ID_MAP.SUMMARY]["children"]
    assert response[ID_MAP.TOOLBAR.NAMESPACE]["options"]  # the sample has namespaces
    assert response[ID_MAP.MESSAGE]["children"] is None
    assert response[ID_MAP.TOOLBAR.PROBLEMS]["children"] == []


def test_the_map_filters_by_namespace_and_highlights_a_search(client):
    response = call(
        client,
        f"{ID_MAP.GRAPH}.elements",
        {f"{ID_MAP.STATE}.data": {"window": "all", "kind": "database", "q": "orders"}},
    )
    elements = response[ID_MAP.GRAPH]["elements"]
    nodes = {e["data"]["id"]: e["classes"].split() for e in elements if e["group"] == "nodes"}
    assert "orders-db" in nodes and "match" in nodes["orders-db"]
    assert "storefront-web" not in nodes  # it calls no database directly
    assert any("context" in classes for classes in nodes.values())


def test_an_empty_window_says_so_and_links_to_all(client):
    # The sample ends days before now, so the default window (last 3 hours) is empty.
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": {}})
    assert response[ID_MAP.GRAPH]["elements"] == []
    message = json.dumps(response[ID_MAP.MESSAGE]["children"])
    assert "No data in this window" in message and '"href": "/map?window=all"' in message


def test_bad_url_values_are_explained_not_raised(client):
    response = call(
        client,
        f"{ID_MAP.GRAPH}.elements",
        {f"{ID_MAP.STATE}.data": {"window": "5y", "until": "soon"}},
    )
    problems = json.dumps(response[ID_MAP.TOOLBAR.PROBLEMS]["children"])
    assert "'5y'" in problems and "'soon' is not a time" in problems


def test_controls_write_the_url(client):
    response = call(
        client,
        f"{ID_MAP.STATE}.data",
        {
            f"{ID_MAP.TOOLBAR.WINDOW}.value": "all",
            f"{ID_MAP.TOOLBAR.NAMESPACE}.value": "retail",
            f"{ID_MAP.TOOLBAR.SEARCH}.value": "pay",
            f"{ID_MAP.LABELS}.value": ["on"],
            f"{ID_MAP.SELECTION}.data": {"node": "payments-api"},
        },
    )
    written = next(v["search"] for k, v in response.items() if k == ids.PAGE_URL)
    assert query_of(written) == {
        "window": "all",
        "namespace": "retail",
        "q": "pay",
        "node": "payments-api",
        "labels": "1",
    }
    assert response[ids.URL_WRITTEN]["data"] == written
    assert response[ID_MAP.STATE]["data"]["namespace"] == "retail"


def test_the_node_panel_shows_its_edges(client):
    response = map_panel(client, {"node": "payments-api"})
    panel = json.dumps(response[ID_MAP.PANEL]["children"])
    assert "payments-api" in panel and "Called by" in panel and "Inbound calls" in panel
    assert response[ID_MAP.CLEAR]["disabled"] is False


def test_the_edge_panel_shows_percentiles_and_a_per_minute_chart(client):
    response = map_panel(client, {"edge": ["integration-hub", "warehouse-service"]})
    panel = response[ID_MAP.PANEL]["children"]
    text = json.dumps(panel)
    assert "p50 / p95 / p99" in text and "warehouse-service" in text
    chart = next(c for c in panel if c.get("props", {}).get("id") == ID_MAP.EDGE_SERIES)
    assert len(chart["props"]["figure"]["data"]) == 2


def test_the_overview_over_all_data(client):
    response = call(
        client, f"{ID_OVERVIEW.WORST}.rowData", {f"{ID_OVERVIEW.STATE}.data": {"window": "all"}}
    )
    cards = json.dumps(response[ID_OVERVIEW.CARDS]["children"])
    for label in ("Services", "Edges", "Calls", "Entry requests", "p95 latency", "Error ratio"):
        assert label in cards
    rows = response[ID_OVERVIEW.WORST]["rowData"]
    assert rows and rows[0]["error_ratio"] >= rows[-1]["error_ratio"]
    named = {r["client"] for r in rows} | {r["server"] for r in rows}
    assert "integration-hub" in named
    assert all(r["map"].startswith("[Show on map](/map?window=all&client=") for r in rows)
    series = response[ID_OVERVIEW.SERIES]["figure"]["data"]
    assert len(series) == 2 and len(series[0]["x"]) > 10
    assert response[ID_OVERVIEW.MESSAGE]["children"] is None


def test_the_overview_of_an_empty_window(client):
    response = call(client, f"{ID_OVERVIEW.WORST}.rowData", {f"{ID_OVERVIEW.STATE}.data": {}})
    assert response[ID_OVERVIEW.WORST]["rowData"] == []
    assert "No data in this window" in json.dumps(response[ID_OVERVIEW.MESSAGE]["children"])


def test_hostile_names_travel_as_plain_strings(hostile_db):
    client = create_app({"DATABASE_URL": "sqlite:///" + hostile_db, "AUTH": False}).test_client()
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": {"window": "all"}})
    labels = [e["data"].get("label") for e in response[ID_MAP.GRAPH]["elements"]]
    assert HOSTILE in labels
    panel = map_panel(client, {"node": HOSTILE})
    assert HOSTILE in json.dumps(panel)  # as a text child, which React renders as text
    assert "dangerouslySetInnerHTML" not in json.dumps(panel)


# --- Map: overlays, edge filters, fuller panels ---------------------------------------------------

ID_PATHS = ids.Paths
#: The sample's last 45 minutes (epoch seconds), when integration-hub → warehouse-service fails.
FAILING_SINCE, SAMPLE_END = "1794997260", "1794999960"
FAILING_EDGE = ("integration-hub", "warehouse-service")


def _strings(tree) -> list[str]:
    """Every string in a JSON tree."""
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return []


def _elements(response):
    elements = response[ID_MAP.GRAPH]["elements"]
    nodes = {e["data"]["id"]: e["classes"].split() for e in elements if e["group"] == "nodes"}
    edges = {
        (e["data"]["source"], e["data"]["target"]): e for e in elements if e["group"] == "edges"
    }
    return nodes, edges


def test_the_map_shows_the_planted_failing_edge_and_slow_path(client):
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": {"window": "all"}})
    _, edges = _elements(response)
    assert edges[FAILING_EDGE]["data"]["colour"] == "#d64545"
    for hop in (
        ("storefront-web", "recommendation-service"),
        ("recommendation-service", "catalog-service"),
    ):
        assert "slow" in edges[hop]["classes"].split()
        assert edges[hop]["data"]["slow_label"].endswith(" s")  # p95 above a second
    panel = map_panel(client, {})
    text = json.dumps(panel[ID_MAP.PANEL]["children"])
    assert "integration-hub" in text and "warehouse-service" in text and "Slow edges" in text
    assert "recommendation-service" in text and '"/paths?window=all"' in text
    slow = map_panel(client, {"edge": ["recommendation-service", "catalog-service"]})
    # p95 and p99 above a second, in the panel's percentiles row
    assert any(re.fullmatch(r".+ / [1-9]\d*\.\d\d s / \d+\.\d\d s", t) for t in _strings(slow))


def test_the_diff_overlay_marks_the_edge_that_started_failing(client):
    state = {"since": FAILING_SINCE, "until": SAMPLE_END, "diff": "1"}
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": state})
    _, edges = _elements(response)
    failing = edges[FAILING_EDGE]
    assert "diff-changed" in failing["classes"].split()
    assert failing["data"]["diff_label"] == "error ratio ↑"
    legend = json.dumps(response[ID_MAP.OVERLAY_LEGEND]["children"], ensure_ascii=False)
    assert "Compared with the 45 minutes before" in legend
    assert "vs the 45 minutes before" in response[ID_MAP.SUMMARY]["children"]
    everything = call(
        client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": {"window": "all", "diff": "1"}}
    )
    assert "needs a window with a start" in json.dumps(
        everything[ID_MAP.OVERLAY_LEGEND]["children"]
    )


def test_the_blast_radius_overlay_marks_every_dependent(client):
    state = {"window": "all", "blast": "warehouse-service"}
    response = call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": state})
    nodes, edges = _elements(response)
    assert "blast-origin" in nodes["warehouse-service"]
    for dependent in ("integration-hub", "storefront-web", "shop-edge", "pos-api", "client"):
        assert "blast" in nodes[dependent]
    assert "outside" in nodes["payments-api"] and "outside" in nodes["orders-db"]
    assert "blast" in edges[FAILING_EDGE]["classes"].split()
    assert response[ID_MAP.BLAST_CLEAR]["hidden"] is False
    legend = json.dumps(response[ID_MAP.OVERLAY_LEGEND]["children"])
    assert "warehouse-service" in legend and "8 dependent nodes" in legend


def test_the_blast_button_toggles_the_selected_node(client):
    inputs = {f"{ID_MAP.BLAST_BUTTON}.n_clicks": 1}
    state = {f"{ID_MAP.SELECTION}.data": {"node": "integration-hub"}, f"{ID_MAP.BLAST}.data": ""}
    response = call(client, f"{ID_MAP.BLAST}.data", inputs, state)
    assert response[ID_MAP.BLAST]["data"] == "integration-hub"
    state[f"{ID_MAP.BLAST}.data"] = "integration-hub"
    assert call(client, f"{ID_MAP.BLAST}.data", inputs, state)[ID_MAP.BLAST]["data"] == ""


def test_the_connection_type_and_rate_filters_keep_only_their_edges(client):
    state = {"window": "all", "connection": "messaging_system"}
    _, edges = _elements(call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": state}))
    assert edges and {e["data"]["connection_type"] for e in edges.values()} == {"messaging_system"}
    assert ("shipment-service", "kafka/shipment-events") in edges
    state = {"window": "all", "min_rate": "0.02"}
    _, busy = _elements(call(client, f"{ID_MAP.GRAPH}.elements", {f"{ID_MAP.STATE}.data": state}))
    graph = client.get("/api/graph").get_json()
    assert 0 < len(busy) < len(graph["edges"])


def test_the_node_panel_shows_its_endpoints_and_place_in_the_graph(client):
    response = map_panel(client, {"node": "warehouse-service"})
    panel = json.dumps(response[ID_MAP.PANEL]["children"], ensure_ascii=False)
    for fact in ("Endpoints it serves (3)", "GET /stock/{sku}", "Fan-in / fan-out", "Betweenness"):
        assert fact in panel
    assert "Show blast radius (8)" in panel and ID_MAP.NODE_SERIES in panel
    hub = map_panel(client, {"node": "integration-hub"})
    assert "Single point of failure:" in json.dumps(hub[ID_MAP.PANEL]["children"])


def test_the_edge_panel_lists_the_edge_endpoints(client):
    response = map_panel(client, {"edge": list(FAILING_EDGE)})
    panel = response[ID_MAP.PANEL]["children"]
    text = json.dumps(panel, ensure_ascii=False)
    assert "Endpoints (3)" in text and "POST /pick-lists" in text
    latency = next(c for c in panel if c.get("props", {}).get("id") == ID_MAP.EDGE_LATENCY)
    assert [t["name"] for t in latency["props"]["figure"]["data"]] == ["p50", "p95", "p99"]


# --- Paths ------------------------------------------------------------------------------------


def test_the_router_renders_the_paths_page(client):
    page = routed(client, "/paths", "?window=all&path=abc")
    assert f'"id": "{ID_PATHS.LIST}"' in page and '"path": "abc"' in page


def test_the_paths_page_leads_from_the_failing_path_to_the_failing_span(client):
    response = call(
        client, f"{ID_PATHS.DETAIL}.children", {f"{ID_PATHS.STATE}.data": {"window": "all"}}
    )
    listing = json.dumps(response[ID_PATHS.LIST]["children"], ensure_ascii=False)
    assert "storefront-web" in listing and "warehouse-service" in listing
    assert "WMS connection pool exhausted" in listing
    paths = client.get("/api/paths").get_json()
    worst = paths[0]
    assert worst["failing_edge"] == {"client": FAILING_EDGE[0], "server": FAILING_EDGE[1]}
    detail = response[ID_PATHS.DETAIL]["children"]
    text = json.dumps(detail, ensure_ascii=False)
    assert worst["exemplar"]["trace_id"] in text
    assert '"wf-row failing critical error"' in text
    assert "503 Service Unavailable: WMS connection pool exhausted" in text
    assert f'"href": "/map?window=all&client={FAILING_EDGE[0]}&server={FAILING_EDGE[1]}"' in text
    assert response[ID_PATHS.MESSAGE]["children"] is None


def test_a_chosen_path_shows_its_own_exemplar(client):
    chosen = client.get("/api/paths").get_json()[-1]
    response = call(
        client,
        f"{ID_PATHS.DETAIL}.children",
        {f"{ID_PATHS.STATE}.data": {"window": "all", "path": chosen["id"]}},
    )
    assert chosen["exemplar"]["trace_id"] in json.dumps(response[ID_PATHS.DETAIL]["children"])
    assert response[ID_PATHS.TOOLBAR.PROBLEMS]["children"] == []
    gone = call(
        client,
        f"{ID_PATHS.DETAIL}.children",
        {f"{ID_PATHS.STATE}.data": {"window": "all", "path": "no-such-path"}},
    )
    assert "'no-such-path'" in json.dumps(gone[ID_PATHS.TOOLBAR.PROBLEMS]["children"])


def test_an_empty_window_has_no_failing_paths(client):
    response = call(client, f"{ID_PATHS.DETAIL}.children", {f"{ID_PATHS.STATE}.data": {}})
    assert "No failing paths in this window" in json.dumps(response[ID_PATHS.MESSAGE]["children"])
    assert response[ID_PATHS.DETAIL]["children"] == []


def test_the_paths_window_control_writes_the_url_and_drops_the_path(client):
    response = call(client, f"{ID_PATHS.STATE}.data", {f"{ID_PATHS.TOOLBAR.WINDOW}.value": "24h"})
    assert response[ids.PAGE_URL]["search"] == "?window=24h"
    assert response[ID_PATHS.STATE]["data"]["window"] == "24h"


# --- The JSON twins ---------------------------------------------------------------------------


def test_the_json_twins_of_the_new_views(client):
    node = client.get("/api/node?name=warehouse-service").get_json()
    assert node["node"]["id"] == "warehouse-service" and len(node["endpoints"]) == 3
    assert "integration-hub" in node["blast_radius"] and node["series"]
    endpoints = client.get(
        "/api/edge-endpoints?client=integration-hub&server=warehouse-service"
    ).get_json()
    assert {e["endpoint"] for e in endpoints} >= {"GET /stock/{sku}"}
    assert "storefront-web" in client.get("/api/blast-radius?node=warehouse-service").get_json()
    diff = client.get(f"/api/graph-diff?since={FAILING_SINCE}&until={SAMPLE_END}").get_json()
    assert any(
        (c["client"], c["server"]) == FAILING_EDGE and "error_ratio" in c["changes"]
        for c in diff["changed"]
    )
    worst = client.get("/api/paths").get_json()[0]
    trace = client.get(f"/api/traces/{worst['exemplar']['trace_id']}").get_json()
    failing = next(s for s in trace["spans"] if s["span_id"] == trace["failing_span_id"])
    assert failing["service"] == "warehouse-service" and failing["failing"]


def test_the_json_twins_refuse_missing_parameters_and_unknown_traces(client):
    for path in (
        "/api/node",
        "/api/edge-endpoints?client=a",
        "/api/blast-radius",
        "/api/graph-diff",
    ):
        response = client.get(path)
        assert response.status_code == 400, path
        assert "required" in response.get_data(as_text=True)
    assert client.get("/api/traces/0123").status_code == 404
    assert client.get("/api/paths?since=soon").status_code == 400


def test_hostile_names_travel_as_plain_strings_on_the_paths_page(hostile_db):
    client = create_app({"DATABASE_URL": "sqlite:///" + hostile_db, "AUTH": False}).test_client()
    response = call(
        client, f"{ID_PATHS.DETAIL}.children", {f"{ID_PATHS.STATE}.data": {"window": "all"}}
    )
    text = json.dumps(response)
    assert HOSTILE in json.dumps(response[ID_PATHS.LIST]["children"])
    assert HOSTILE in json.dumps(response[ID_PATHS.DETAIL]["children"])
    assert "dangerouslySetInnerHTML" not in text
