"""Service map (``/map``): the dependency graph, filtered and searched, with node and edge panels,
and two overlays: the blast radius of a node, and the diff with the previous window."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import dash_cytoscape as cyto
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from clew import store
from console import (
    components,
    figures,
    finding_badges,
    formatting,
    ids,
    legends,
    overlay,
    panels,
    queries,
)
from console.state import WINDOW_KEYS, ViewState, parse, search

PATH = "/map"
TITLE = "Service map"
ID = ids.ServiceMap
TB = ID.TOOLBAR

# --- URL state of this page -------------------------------------------------------------------


def selection_of(query: Mapping[str, str | None]) -> dict:
    """The selected node (``node=``) or edge (``client=``&``server=``) in a URL; ``{}`` if none.

    Never ``None``: a ``dcc.Store`` mounted with ``None`` reports a change of its data at once,
    which would fire this page's callbacks as if the user had acted.
    """
    if query.get("client") and query.get("server"):
        return {"edge": [query["client"], query["server"]]}
    if query.get("node"):
        return {"node": query["node"]}
    return {}


def selection_keys(selection: dict | None) -> dict[str, str]:
    """The URL keys for a selection (the inverse of ``selection_of``)."""
    if not selection:
        return {}
    if "edge" in selection:
        client, server = selection["edge"]
        return {"client": client, "server": server}
    return {"node": selection["node"]}


def selection_from_tap(
    trigger: str | None, node: dict | None, edge: dict | None, current: dict | None
) -> dict:
    """The selection after a tap on a node or an edge, or a click on the clear button."""
    if trigger == "tapNodeData" and node:
        return {"node": node["id"]}
    if trigger == "tapEdgeData" and edge:
        return {"edge": [edge["source"], edge["target"]]}
    if trigger == "clear":
        return {}
    return current or {}


def map_search(
    state: ViewState,
    selection: dict | None,
    labels: bool = False,
    *,
    blast: str | None = None,
    diff: bool = False,
    declared: bool = False,
) -> str:
    """This page's query string: the view state, the selection, and the overlays."""
    return search(
        state,
        **selection_keys(selection),
        labels="1" if labels else None,
        blast=blast or None,
        diff="1" if diff else None,
        declared="1" if declared else None,
    )


def blast_toggle(selection: dict | None, current: str | None) -> str:
    """The node whose blast radius shows after a click on the node panel's button ("" for none)."""
    node = (selection or {}).get("node")
    if not node:
        return current or ""
    return "" if current == node else node


# --- The view ---------------------------------------------------------------------------------


def _passes(node: dict, state: ViewState) -> bool:
    return (
        (state.namespace is None or node.get("namespace") == state.namespace)
        and (state.environment is None or node.get("environment") == state.environment)
        and (state.kind is None or node["kind"] == state.kind)
    )


def _edge_passes(edge: dict, state: ViewState) -> bool:
    return (state.connection is None or edge["connection_type"] == state.connection) and (
        state.min_rate is None or edge["rps"] >= state.min_rate
    )


def filter_graph(view: dict, state: ViewState) -> tuple[list[dict], list[dict], set[str]]:
    """Nodes and edges of ``view`` that pass the filters, with their direct neighbours.

    Edge filters (connection type, minimum rate) drop edges, and nodes left without any; node
    filters (namespace, environment, kind) keep matching nodes and the edges touching them.
    Returns (nodes, edges, context): context names the nodes shown only as neighbours (drawn
    faded). A topic's broker stays around it. No filter keeps everything.
    """
    node_filter = not (state.namespace is None and state.environment is None and state.kind is None)
    edge_filter = not (state.connection is None and state.min_rate is None)
    if not node_filter and not edge_filter:
        return list(view["nodes"]), list(view["edges"]), set()
    edges = [e for e in view["edges"] if _edge_passes(e, state)]
    matched = {n["id"] for n in view["nodes"] if _passes(n, state)}
    if edge_filter:
        matched &= {e["client"] for e in edges} | {e["server"] for e in edges}
    if node_filter:
        edges = [e for e in edges if e["client"] in matched or e["server"] in matched]
    shown = matched | {e["client"] for e in edges} | {e["server"] for e in edges}
    context = shown - matched
    by_id = {n["id"]: n for n in view["nodes"]}
    parents = {by_id[n].get("parent") for n in shown if n in by_id} - {None}
    nodes = [n for n in view["nodes"] if n["id"] in shown | parents]
    return nodes, edges, context


def summary(nodes: list[dict], edges: list[dict], context: set[str], view: dict) -> str:
    """One line about what the map shows."""
    edges = [e for e in edges if e.get("diff") != "removed"]
    parts = [
        f"{len([n for n in nodes if n.get('diff') != 'removed']) - len(context)} nodes",
        f"{len(edges)} edges",
    ]
    if context:
        parts.append(f"{len(context)} neighbours faded")
    cycles = len(view.get("cycles", []))
    if cycles:
        parts.append(f"{cycles} cycle" + ("s" if cycles > 1 else ""))
    return " · ".join(parts)


def _quoted(value: str) -> str:
    """A string literal for a cytoscape selector."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def neighbours(elements: list[dict], name: str) -> set[str]:
    """Names of the nodes one edge away from ``name`` among cytoscape ``elements``."""
    found = set()
    for element in elements:
        data = element.get("data", {})
        if data.get("source") == name:
            found.add(data["target"])
        elif data.get("target") == name:
            found.add(data["source"])
    return found


def stylesheet(
    labels: bool, selection: dict | None, elements: list[dict] = (), *, blast: bool = False
) -> list[dict]:
    """The map's stylesheet, with the selection in focus.

    A selected node keeps itself, its edges and its neighbours (found in ``elements``) in full
    colour and fades the rest; a selected edge keeps itself and its two ends. While a blast
    radius shows (``blast``), it decides what fades, and the selection is only outlined.
    """
    sheet = figures.map_stylesheet(edge_labels=labels)
    if not selection:
        return sheet
    focus = {} if blast else {"opacity": 1, "z-index": 20}
    if not blast:
        sheet += [
            {"selector": "node", "style": {"opacity": 0.3}},
            {"selector": "edge", "style": {"opacity": 0.1}},
        ]
    if "node" in selection:
        name = selection["node"]
        quoted = _quoted(name)
        keep = [] if blast else sorted(neighbours(list(elements), name))
        if keep:
            sheet.append(
                {"selector": ", ".join(f"node[id = {_quoted(n)}]" for n in keep), "style": focus}
            )
        if not blast:
            sheet.append(
                {"selector": f"edge[source = {quoted}], edge[target = {quoted}]", "style": focus}
            )
        sheet.append(
            {
                "selector": f"node[id = {quoted}]",
                "style": {
                    **focus,
                    "border-color": figures.ACCENT,
                    "border-width": 4,
                    "background-color": "#dbe6ff",
                },
            }
        )
    else:
        client, server = map(_quoted, selection["edge"])
        if not blast:
            sheet.append({"selector": f"node[id = {client}], node[id = {server}]", "style": focus})
        sheet.append(
            {
                "selector": f"edge[source = {client}][target = {server}]",
                "style": {
                    **focus,
                    "underlay-color": figures.ACCENT,
                    "underlay-opacity": 0.25,
                    "underlay-padding": 5,
                },
            }
        )
    return sheet


def failing_edges(view: dict) -> list[dict]:
    """Edges at or above the failing threshold, worst first."""
    failing = [e for e in view["edges"] if figures.health(e["error_ratio"]) == "bad"]
    return sorted(failing, key=lambda e: (-e["error_ratio"], e["client"], e["server"]))


def slowest_edges(view: dict) -> list[dict]:
    """Edges whose p95 is at or above ``figures.SLOW_AT_MS``, slowest first."""
    slow = [e for e in view["edges"] if (e.get("p95_ms") or 0) >= figures.SLOW_AT_MS]
    return sorted(slow, key=lambda e: (-e["p95_ms"], e["client"], e["server"]))


def edge_links(
    edges: list[dict], state: ViewState, labels: bool, figure: Callable[[dict], str], tone: str
) -> html.Ul:
    """Each edge as a link that selects it on this map, with its ``figure`` in the ``tone``."""
    return html.Ul(
        [
            html.Li(
                [
                    dcc.Link(
                        [e["client"], " → ", e["server"]],
                        href=PATH + map_search(state, {"edge": [e["client"], e["server"]]}, labels),
                        className="link",
                    ),
                    html.Span(figure(e), className=f"tone-{tone} num"),
                ]
            )
            for e in edges
        ],
        className="plain-list",
    )


def overview_panel(view: dict, state: ViewState, labels: bool = False) -> list:
    """The side panel when nothing is selected: how to use the map, failing edges and cycles."""
    out = [
        html.H3("Nothing selected", className="panel-title"),
        html.P(
            "Click a node or an edge for its details. Search highlights matching nodes; "
            "filters keep matching nodes and fade their neighbours.",
            className="muted",
        ),
    ]
    failing = failing_edges(view)
    if failing:
        out.append(html.H4(f"Failing edges ({len(failing)})"))
        out.append(
            edge_links(failing, state, labels, lambda e: formatting.ratio(e["error_ratio"]), "bad")
        )
    slow = slowest_edges(view)
    if slow:
        out.append(html.H4(f"Slow edges, p95 ≥ {formatting.ms(figures.SLOW_AT_MS)} ({len(slow)})"))
        out.append(edge_links(slow, state, labels, lambda e: formatting.ms(e["p95_ms"]), "slow"))
    if failing:
        out.append(
            html.P(
                dcc.Link(
                    "Failing paths from entry point to failing edge →",
                    href="/paths" + search(state, WINDOW_KEYS),
                    className="link",
                ),
                className="panel-more",
            )
        )
    cycles = view.get("cycles") or []
    if cycles:
        out.append(html.H4(f"Dependency cycles ({len(cycles)})"))
        out.append(
            html.Ul([html.Li(" → ".join([*c, c[0]])) for c in cycles], className="cycle-list")
        )
    return out


def view(
    graph: dict,
    facets: queries.Facets,
    state: ViewState,
    data_range: tuple[int | None, int | None],
    *,
    diff: queries.GraphDiff | None = None,
    diff_problem: str | None = None,
    blast: tuple[str, list[str]] | None = None,
    declared: list[dict] | None = None,
    findings: dict | None = None,
) -> dict:
    """Everything ``refresh`` outputs, from the graph view, the facets and the overlays (pure).

    ``findings`` (``finding_badges.by_place``) gives nodes and edges their findings badges."""
    shown = overlay.with_diff(graph, diff.diff, diff.nodes) if diff else graph
    if declared is not None:
        shown = overlay.with_declared(shown, declared, diff.nodes if diff else None)
    nodes, edges, context = filter_graph(shown, state)
    message = None
    if not graph["edges"] and not (diff and diff.diff["removed"]):
        message = components.no_data(state, PATH, data_range)
    elif not edges:
        message = html.Div("No nodes match these filters.", className="notice notice-info")
    text = f"{state.describe()} · {summary(nodes, edges, context, graph)}"
    counts = overlay.counts(edges) if diff else None
    compared = None
    if diff:
        minutes = diff.old.until_minute - diff.old.since_minute
        compared = f"the {formatting.duration_minutes(minutes)} before"
        text += f" · vs {compared}: +{counts['added']} −{counts['removed']} ~{counts['changed']}"
    if blast:
        radius = set(blast[1])
        blast = (blast[0], sorted(radius))
    return {
        "elements": figures.map_elements(
            nodes,
            edges,
            context=context,
            query=state.q,
            blast=blast,
            badges=finding_badges.badges(findings) if findings else None,
        ),
        "namespaces": components.options(facets.namespaces, state.namespace),
        "environments": components.options(facets.environments, state.environment),
        "summary": text,
        "message": message,
        "overlay": legends.overlay_legend(
            counts,
            compared,
            diff.diff.get("thresholds") if diff else None,
            blast,
            diff_problem,
            declared=overlay.declared_counts(edges) if declared is not None else None,
        ),
    }


def placed_findings(graph: dict, found: list[dict], contract_services: dict[str, str]) -> dict:
    """The open findings of ``found`` on the nodes and edges of ``graph``."""
    return finding_badges.by_place(
        found,
        [n["id"] for n in graph["nodes"]],
        [(e["client"], e["server"]) for e in graph["edges"]],
        contract_services,
    )


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    state, problems = parse(query)
    selection = selection_of(query)
    labels = query.get("labels") == "1"
    blast = query.get("blast") or ""
    return html.Div(
        [
            components.page_header(TITLE, state, ID.SUMMARY),
            dcc.Store(id=ID.STATE, data=dict(query)),
            dcc.Store(id=ID.SELECTION, data=selection),
            dcc.Store(id=ID.BLAST, data=blast),
            components.toolbar(TB, state, filters=True),
            html.Div(components.problems(problems), id=TB.PROBLEMS),
            html.Div(id=ID.MESSAGE),
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(components.search_box(TB, state), className="map-search"),
                            cyto.Cytoscape(
                                id=ID.GRAPH,
                                elements=[],
                                layout=figures.map_layout(),
                                stylesheet=stylesheet(labels, selection, blast=bool(blast)),
                                autounselectify=True,
                                boxSelectionEnabled=False,
                                minZoom=0.2,
                                maxZoom=1.5,  # a fitted small graph stays at reading size
                                className="map-canvas",
                                style={"width": "100%", "height": "100%", "minHeight": "360px"},
                            ),
                            html.Div(id=ID.OVERLAY_LEGEND, className="legend overlay-legend"),
                            html.Div(
                                [
                                    html.Button(
                                        "Clear blast radius",
                                        id=ID.BLAST_CLEAR,
                                        n_clicks=0,
                                        hidden=not blast,
                                        className="button button-small",
                                    ),
                                    dcc.Checklist(
                                        id=ID.DIFF,
                                        options=[
                                            {"label": "Compare with previous window", "value": "on"}
                                        ],
                                        value=["on"] if query.get("diff") == "1" else [],
                                        className="check",
                                    ),
                                    dcc.Checklist(
                                        id=ID.DECLARED,
                                        options=[{"label": "Declared dependencies", "value": "on"}],
                                        value=["on"] if query.get("declared") == "1" else [],
                                        className="check",
                                    ),
                                    dcc.Checklist(
                                        id=ID.LABELS,
                                        options=[{"label": "Edge labels", "value": "on"}],
                                        value=["on"] if labels else [],
                                        className="check",
                                    ),
                                ],
                                className="map-switches",
                            ),
                            html.Div(legends.legend(), className="map-footer"),
                        ],
                        className="map-area",
                    ),
                    html.Aside(
                        [
                            html.Button(
                                "Clear selection",
                                id=ID.CLEAR,
                                n_clicks=0,
                                disabled=not selection,
                                className="button-link",
                            ),
                            html.Div(id=ID.PANEL),
                        ],
                        className="side-panel",
                    ),
                ],
                className="map-layout",
            ),
        ],
        className="page page-map",
    )


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time).

    Controls write the URL and the state store; ``refresh`` draws the graph from the state store
    alone, so a loaded URL and a clicked control take the same path.
    """
    flask_app = app.server

    def engine():
        return store.engine_of(flask_app)

    @app.callback(
        Output(ids.PAGE_URL, "search", allow_duplicate=True),
        Output(ids.URL_WRITTEN, "data", allow_duplicate=True),
        Output(ID.STATE, "data"),
        Input(TB.WINDOW, "value"),
        Input(TB.SINCE, "value"),
        Input(TB.UNTIL, "value"),
        Input(TB.NAMESPACE, "value"),
        Input(TB.ENVIRONMENT, "value"),
        Input(TB.KIND, "value"),
        Input(TB.CONNECTION, "value"),
        Input(TB.MIN_RATE, "value"),
        Input(TB.SEARCH, "value"),
        Input(ID.LABELS, "value"),
        Input(ID.DIFF, "value"),
        Input(ID.DECLARED, "value"),
        Input(ID.BLAST, "data"),
        Input(ID.SELECTION, "data"),
        State(ID.STATE, "data"),
        prevent_initial_call=True,
    )
    def sync_url(
        window,
        since,
        until,
        namespace,
        environment,
        kind,
        connection,
        min_rate,
        q,
        labels,
        diff,
        declared,
        blast,
        selection,
        old,
    ):
        raw = {
            "window": window,
            "since": since,
            "until": until,
            "namespace": namespace,
            "environment": environment,
            "kind": kind,
            "connection": connection,
            "min_rate": min_rate,
            "q": q,
            "blast": blast or None,
            "diff": "1" if diff else None,
            "declared": "1" if declared else None,
        }
        state, _ = parse(raw)
        query = map_search(
            state, selection, bool(labels), blast=blast, diff=bool(diff), declared=bool(declared)
        )
        # A new selection or the labels alone leave the data as it is: do not fetch it again.
        return query, query, no_update if raw == old else raw

    @app.callback(
        Output(ID.GRAPH, "elements"),
        Output(TB.NAMESPACE, "options"),
        Output(TB.ENVIRONMENT, "options"),
        Output(ID.SUMMARY, "children"),
        Output(ID.MESSAGE, "children"),
        Output(TB.PROBLEMS, "children"),
        Output(ID.OVERLAY_LEGEND, "children"),
        Output(ID.BLAST_CLEAR, "hidden"),
        Input(ID.STATE, "data"),
    )
    def refresh(raw):
        raw = raw or {}
        now = time.time_ns()
        state, problems = parse(raw, now)
        window = state.resolve(now)
        diff, diff_problem = None, None
        if raw.get("diff") == "1":
            if window.since_minute is None:
                diff_problem = (
                    "Comparing needs a window with a start: choose a preset other than"
                    " “all”, or a since."
                )
            else:
                diff = queries.graph_diff(engine(), window)
        blast = None
        if raw.get("blast"):
            blast = (raw["blast"], queries.blast_radius(engine(), window, raw["blast"]))
        declared = None
        if raw.get("declared") == "1":
            declared = queries.endpoints(engine(), window)["dependencies"]
        graph = queries.graph(engine(), window)
        found = placed_findings(
            graph, queries.open_findings(engine()), queries.contract_services(engine(), window)
        )
        out = view(
            graph,
            queries.facets(engine()),
            state,
            queries.data_range(engine()),
            diff=diff,
            diff_problem=diff_problem,
            blast=blast,
            declared=declared,
            findings=found,
        )
        return (
            out["elements"],
            out["namespaces"],
            out["environments"],
            out["summary"],
            out["message"],
            components.problems(problems),
            out["overlay"],
            not blast,
        )

    @app.callback(
        Output(ID.GRAPH, "stylesheet"),
        Input(ID.LABELS, "value"),
        Input(ID.SELECTION, "data"),
        Input(ID.GRAPH, "elements"),
        State(ID.BLAST, "data"),
        prevent_initial_call=True,
    )
    def restyle(labels, selection, elements, blast):
        return stylesheet(bool(labels), selection, elements or [], blast=bool(blast))

    @app.callback(
        Output(ID.SELECTION, "data"),
        Input(ID.GRAPH, "tapNodeData"),
        Input(ID.GRAPH, "tapEdgeData"),
        Input(ID.CLEAR, "n_clicks"),
        State(ID.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def select(node, edge, _clicks, current):
        prop = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else None
        trigger = "clear" if ctx.triggered_id == ID.CLEAR else prop
        selected = selection_from_tap(trigger, node, edge, current)
        return no_update if selected == current else selected

    @app.callback(
        Output(ID.BLAST, "data"),
        Input(ID.BLAST_BUTTON, "n_clicks"),
        Input(ID.BLAST_CLEAR, "n_clicks"),
        State(ID.SELECTION, "data"),
        State(ID.BLAST, "data"),
        prevent_initial_call=True,
    )
    def toggle_blast(clicks, clears, selection, current):
        if ctx.triggered_id == ID.BLAST_CLEAR:
            return "" if clears else no_update
        if not clicks:
            return no_update  # the panel was drawn again, with a fresh button
        return blast_toggle(selection, current)

    @app.callback(
        Output(ID.PANEL, "children"),
        Output(ID.CLEAR, "disabled"),
        Input(ID.SELECTION, "data"),
        Input(ID.STATE, "data"),
        State(ID.LABELS, "value"),
    )
    def panel(selection, raw, labels):
        raw = raw or {}
        now = time.time_ns()
        state, _ = parse(raw, now)
        window = state.resolve(now)
        graph = queries.graph(engine(), window)
        if not selection:
            return overview_panel(graph, state, bool(labels)), True
        found = placed_findings(
            graph, queries.open_findings(engine()), queries.contract_services(engine(), window)
        )
        if "node" in selection:
            name = selection["node"]
            detail = queries.node_detail(engine(), window, name)
            return (
                panels.node_panel(
                    graph,
                    name,
                    endpoints=detail.endpoints,
                    series=detail.series,
                    blast_radius=detail.blast_radius,
                    blast_active=raw.get("blast") == name,
                    findings=found.get(("node", name), []),
                ),
                False,
            )
        client, server = selection["edge"]
        series = queries.edge_series(engine(), window, client, server)
        endpoints = queries.edge_endpoints(engine(), window, client, server)
        return (
            panels.edge_panel(
                graph, client, server, series, endpoints, found.get(("edge", client, server), [])
            ),
            False,
        )
