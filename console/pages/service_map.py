"""Service map (``/map``): the dependency graph, filtered and searched, with node/edge panels."""

from __future__ import annotations

import time
from collections.abc import Mapping

import dash_cytoscape as cyto
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from clew import store
from clew.records import NodeKind
from console import components, figures, formatting, ids, queries
from console.state import ViewState, parse, search

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


def map_search(state: ViewState, selection: dict | None, labels: bool) -> str:
    """This page's query string."""
    return search(state, **selection_keys(selection), labels="1" if labels else None)


# --- The view ---------------------------------------------------------------------------------


def _passes(node: dict, state: ViewState) -> bool:
    return (
        (state.namespace is None or node.get("namespace") == state.namespace)
        and (state.environment is None or node.get("environment") == state.environment)
        and (state.kind is None or node["kind"] == state.kind)
    )


def filter_graph(view: dict, state: ViewState) -> tuple[list[dict], list[dict], set[str]]:
    """Nodes and edges of ``view`` that pass the filters, with their direct neighbours.

    Returns (nodes, edges, context): edges touching a matching node, every node they touch, and
    the names of the nodes shown only as neighbours (drawn faded). No filter keeps everything.
    """
    if state.namespace is None and state.environment is None and state.kind is None:
        return list(view["nodes"]), list(view["edges"]), set()
    matched = {n["id"] for n in view["nodes"] if _passes(n, state)}
    edges = [e for e in view["edges"] if e["client"] in matched or e["server"] in matched]
    shown = matched | {e["client"] for e in edges} | {e["server"] for e in edges}
    nodes = [n for n in view["nodes"] if n["id"] in shown]
    return nodes, edges, shown - matched


def summary(nodes: list[dict], edges: list[dict], context: set[str], view: dict) -> str:
    """One line about what the map shows."""
    parts = [f"{len(nodes) - len(context)} nodes", f"{len(edges)} edges"]
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


def stylesheet(labels: bool, selection: dict | None, elements: list[dict] = ()) -> list[dict]:
    """The map's stylesheet, with the selection in focus.

    A selected node keeps itself, its edges and its neighbours (found in ``elements``) in full
    colour and fades the rest; a selected edge keeps itself and its two ends.
    """
    sheet = figures.map_stylesheet(edge_labels=labels)
    if not selection:
        return sheet
    focus = {"opacity": 1, "z-index": 20}
    sheet += [
        {"selector": "node", "style": {"opacity": 0.3}},
        {"selector": "edge", "style": {"opacity": 0.1}},
    ]
    if "node" in selection:
        name = selection["node"]
        quoted = _quoted(name)
        keep = sorted(neighbours(list(elements), name))
        if keep:
            sheet.append(
                {"selector": ", ".join(f"node[id = {_quoted(n)}]" for n in keep), "style": focus}
            )
        sheet += [
            {"selector": f"edge[source = {quoted}], edge[target = {quoted}]", "style": focus},
            {
                "selector": f"node[id = {quoted}]",
                "style": {
                    **focus,
                    "border-color": figures.ACCENT,
                    "border-width": 4,
                    "background-color": "#dbe6ff",
                },
            },
        ]
    else:
        client, server = map(_quoted, selection["edge"])
        sheet += [
            {"selector": f"node[id = {client}], node[id = {server}]", "style": focus},
            {
                "selector": f"edge[source = {client}][target = {server}]",
                "style": {
                    **focus,
                    "underlay-color": figures.ACCENT,
                    "underlay-opacity": 0.25,
                    "underlay-padding": 5,
                },
            },
        ]
    return sheet


def legend() -> html.Div:
    """What shapes, colours, widths and dashes mean."""
    shapes = [
        html.Span(
            [
                html.Span(
                    className=f"legend-shape shape-{kind}",
                    # Clipped shapes lose their border, so they are filled with its colour.
                    style={
                        "backgroundColor": style["border"]
                        if kind == NodeKind.EXTERNAL
                        else style["fill"],
                        "borderColor": style["border"],
                    },
                ),
                style["label"],
            ],
            className="legend-item",
        )
        for kind, style in figures.NODE_STYLES.items()
    ]
    edges = [
        html.Span(
            [html.Span(className="legend-line", style={"backgroundColor": colour}), text],
            className="legend-item",
        )
        for colour, text in (
            (figures.OK, "errors < 1 %"),
            (figures.WARN, "< 5 %"),
            (figures.BAD, "≥ 5 %"),
        )
    ]
    notes = [
        html.Span(
            [html.Span(className="legend-line dashed"), "messaging"], className="legend-item"
        ),
        html.Span("width ∝ log rate", className="legend-item muted"),
    ]
    return html.Div(
        [html.Div(shapes, className="legend-row"), html.Div(edges + notes, className="legend-row")],
        id=ID.LEGEND,
        className="legend",
    )


def _edge_rows(edges: list[dict], other: str) -> list[list]:
    return [
        [
            e[other],
            e["connection_type"].replace("_", " "),
            formatting.rate(e["rps"]),
            html.Span(
                formatting.ratio(e["error_ratio"]),
                className=f"tone-{figures.health(e['error_ratio'])}",
            ),
            formatting.ms(e["p95_ms"]),
        ]
        for e in sorted(edges, key=lambda e: (-e["rps"], e[other]))
    ]


def node_panel(view: dict, name: str) -> list:
    """The side panel for node ``name``: what it is, what it serves, its edges in and out."""
    node = next((n for n in view["nodes"] if n["id"] == name), None)
    if node is None:
        return [
            html.H3(name, className="panel-title"),
            html.P("No traffic to or from this node in this window.", className="muted"),
        ]
    inbound = [e for e in view["edges"] if e["server"] == name]
    outbound = [e for e in view["edges"] if e["client"] == name]
    header = ["", "type", "rate", "errors", "p95"]
    kind = node["kind"]
    out = [
        html.Div(figures.NODE_STYLES.get(kind, {}).get("label", kind), className="panel-kicker"),
        html.H3(name, className="panel-title"),
        components.key_values(
            [
                ("Namespace", node.get("namespace")),
                ("Environment", node.get("environment")),
                ("Inbound calls", formatting.count(node["requests"])),
                (
                    "Inbound errors",
                    f"{formatting.count(node['errors'])} ({formatting.ratio(node['error_ratio'])})",
                ),
            ]
        ),
        html.H4(f"Called by ({len(inbound)})"),
        components.table(["client", *header[1:]], _edge_rows(inbound, "client"))
        if inbound
        else html.P("No callers: an entry point.", className="muted"),
        html.H4(f"Calls ({len(outbound)})"),
        components.table(["server", *header[1:]], _edge_rows(outbound, "server"))
        if outbound
        else html.P("Calls nothing observed.", className="muted"),
    ]
    if kind == NodeKind.CLIENT:
        out.insert(
            2, html.P("Stands for the callers of root spans outside the traces.", className="muted")
        )
    return out


def edge_panel(view: dict, client: str, server: str, series: list[dict]) -> list:
    """The side panel for the edge client → server: percentiles, errors, rate and a chart."""
    edges = [e for e in view["edges"] if e["client"] == client and e["server"] == server]
    title = [
        html.Div("Edge", className="panel-kicker"),
        html.H3([client, html.Span(" → ", className="arrow"), server], className="panel-title"),
    ]
    if not edges:
        return [*title, html.P("No traffic on this edge in this window.", className="muted")]
    out = list(title)
    for edge in edges:
        out.append(
            components.key_values(
                [
                    ("Connection", edge["connection_type"].replace("_", " ")),
                    ("Evidence", ", ".join(edge["sources"])),
                    ("Calls", formatting.count(edge["count"])),
                    ("Rate", formatting.rate(edge["rps"])),
                    (
                        "Errors",
                        html.Span(
                            f"{formatting.count(edge['errors'])}"
                            f" ({formatting.ratio(edge['error_ratio'])})",
                            className=f"tone-{figures.health(edge['error_ratio'])}",
                        ),
                    ),
                    ("4xx", formatting.count(edge.get("client_errors"))),
                    (
                        "p50 / p95 / p99",
                        " / ".join(formatting.ms(edge[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
                    ),
                    ("Max", formatting.ms(edge.get("max_ms"))),
                ]
            )
        )
    out += [
        html.H4("Per minute"),
        dcc.Graph(
            id=ID.EDGE_SERIES,
            figure=figures.series_figure(figures.fill_minutes(series), height=200),
            config={"displayModeBar": False, "responsive": True},
        ),
    ]
    return out


def failing_edges(view: dict) -> list[dict]:
    """Edges at or above the failing threshold, worst first."""
    failing = [e for e in view["edges"] if figures.health(e["error_ratio"]) == "bad"]
    return sorted(failing, key=lambda e: (-e["error_ratio"], e["client"], e["server"]))


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
            html.Ul(
                [
                    html.Li(
                        [
                            dcc.Link(
                                [e["client"], " → ", e["server"]],
                                href=PATH
                                + map_search(state, {"edge": [e["client"], e["server"]]}, labels),
                                className="link",
                            ),
                            html.Span(formatting.ratio(e["error_ratio"]), className="tone-bad num"),
                        ]
                    )
                    for e in failing
                ],
                className="plain-list",
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
    graph: dict, facets: queries.Facets, state: ViewState, data_range: tuple[int | None, int | None]
) -> dict:
    """Everything ``refresh`` outputs, from the graph view and the facets (pure, for tests)."""
    nodes, edges, context = filter_graph(graph, state)
    message = None
    if not graph["edges"]:
        message = components.no_data(state, PATH, data_range)
    elif not edges:
        message = html.Div("No nodes match these filters.", className="notice notice-info")
    return {
        "elements": figures.map_elements(nodes, edges, context=context, query=state.q),
        "namespaces": components.options(facets.namespaces, state.namespace),
        "environments": components.options(facets.environments, state.environment),
        "summary": f"{state.describe()} · {summary(nodes, edges, context, graph)}",
        "message": message,
    }


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    state, problems = parse(query)
    selection = selection_of(query)
    labels = query.get("labels") == "1"
    return html.Div(
        [
            html.Div(
                [html.H1(TITLE), html.Div(state.describe(), id=ID.SUMMARY, className="subtitle")],
                className="page-header",
            ),
            dcc.Store(id=ID.STATE, data=dict(query)),
            dcc.Store(id=ID.SELECTION, data=selection),
            components.toolbar(TB, state, filters=True),
            html.Div(components.problems(problems), id=TB.PROBLEMS),
            html.Div(id=ID.MESSAGE),
            html.Div(
                [
                    html.Div(
                        [
                            cyto.Cytoscape(
                                id=ID.GRAPH,
                                elements=[],
                                layout=figures.map_layout(),
                                stylesheet=stylesheet(labels, selection),
                                autounselectify=True,
                                boxSelectionEnabled=False,
                                minZoom=0.2,
                                maxZoom=1.5,  # a fitted small graph stays at reading size
                                className="map-canvas",
                                style={"width": "100%", "height": "100%", "minHeight": "360px"},
                            ),
                            html.Div(
                                [
                                    legend(),
                                    dcc.Checklist(
                                        id=ID.LABELS,
                                        options=[{"label": "Edge labels", "value": "on"}],
                                        value=["on"] if labels else [],
                                        className="check",
                                    ),
                                ],
                                className="map-footer",
                            ),
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
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
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
        Input(TB.SEARCH, "value"),
        Input(ID.LABELS, "value"),
        Input(ID.SELECTION, "data"),
        State(ID.STATE, "data"),
        prevent_initial_call=True,
    )
    def sync_url(window, since, until, namespace, environment, kind, q, labels, selection, old):
        raw = {
            "window": window,
            "since": since,
            "until": until,
            "namespace": namespace,
            "environment": environment,
            "kind": kind,
            "q": q,
        }
        state, _ = parse(raw)
        query = map_search(state, selection, bool(labels))
        # A new selection or the labels alone leave the data as it is: do not fetch it again.
        return query, query, no_update if raw == old else raw

    @app.callback(
        Output(ID.GRAPH, "elements"),
        Output(TB.NAMESPACE, "options"),
        Output(TB.ENVIRONMENT, "options"),
        Output(ID.SUMMARY, "children"),
        Output(ID.MESSAGE, "children"),
        Output(TB.PROBLEMS, "children"),
        Input(ID.STATE, "data"),
    )
    def refresh(raw):
        now = time.time_ns()
        state, problems = parse(raw or {}, now)
        out = view(
            queries.graph(engine(), state.resolve(now)),
            queries.facets(engine()),
            state,
            queries.data_range(engine()),
        )
        return (
            out["elements"],
            out["namespaces"],
            out["environments"],
            out["summary"],
            out["message"],
            components.problems(problems),
        )

    @app.callback(
        Output(ID.GRAPH, "stylesheet"),
        Input(ID.LABELS, "value"),
        Input(ID.SELECTION, "data"),
        Input(ID.GRAPH, "elements"),
        prevent_initial_call=True,
    )
    def restyle(labels, selection, elements):
        return stylesheet(bool(labels), selection, elements or [])

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
        Output(ID.PANEL, "children"),
        Output(ID.CLEAR, "disabled"),
        Input(ID.SELECTION, "data"),
        Input(ID.STATE, "data"),
        State(ID.LABELS, "value"),
    )
    def panel(selection, raw, labels):
        now = time.time_ns()
        state, _ = parse(raw or {}, now)
        window = state.resolve(now)
        view = queries.graph(engine(), window)
        if not selection:
            return overview_panel(view, state, bool(labels)), True
        if "node" in selection:
            return node_panel(view, selection["node"]), False
        client, server = selection["edge"]
        series = queries.edge_series(engine(), window, client, server)
        return edge_panel(view, client, server, series), False
