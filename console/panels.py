"""The service map's side panels: a node (RED figures, endpoints, callers and callees, its place
in the graph) and an edge (percentiles, errors, rate over time, its endpoints).

Pure functions from view models to components; names go in as text children.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from clew.records import NodeKind
from console import components, figures, formatting, ids

ID = ids.ServiceMap
CHART = {"displayModeBar": False, "responsive": True}


def _error_cell(errors: int, ratio: float) -> html.Span:
    return html.Span(
        f"{formatting.count(errors)} ({formatting.ratio(ratio)})",
        className=f"tone-{figures.health(ratio)}",
    )


def _ratio_cell(ratio: float) -> html.Span:
    return html.Span(formatting.ratio(ratio), className=f"tone-{figures.health(ratio)}")


def _edge_rows(edges: list[dict], other: str) -> list[list]:
    return [
        [
            e[other],
            e["connection_type"].replace("_", " "),
            formatting.rate(e["rps"]),
            _ratio_cell(e["error_ratio"]),
            formatting.ms(e["p95_ms"]),
        ]
        for e in sorted(edges, key=lambda e: (-e["rps"], e[other]))
    ]


def endpoint_table(endpoints: Sequence[dict]):
    """The endpoints of a node or an edge with their rate, errors and latency, busiest first."""
    if not endpoints:
        return html.P("No endpoints recorded in this window.", className="muted")
    rows = [
        [
            html.Span(e["endpoint"], title=e["connection_type"].replace("_", " ")),
            formatting.rate(e["rps"]),
            _ratio_cell(e["error_ratio"]),
            formatting.latencies(e.get("p50_ms"), e.get("p95_ms"), e.get("p99_ms")),
        ]
        for e in sorted(endpoints, key=lambda e: (-e["count"], e["endpoint"]))
    ]
    return components.table(["endpoint", "rate", "errors", "p50 / p95 / p99"], rows)


def findings_list(findings: Sequence[dict]) -> list:
    """A node's or an edge's open policy findings (rule, severity, message), with a link to
    the Governance page; nothing when it has none."""
    if not findings:
        return []
    rows = [
        [
            html.Span(f["severity"], className=f"severity severity-{f['severity']}"),
            f["rule"],
            f["message"],
        ]
        for f in findings
    ]
    return [
        html.H4(f"Open findings ({len(findings)})"),
        html.Table(
            [
                html.Thead(html.Tr([html.Th("severity"), html.Th("rule"), html.Th("message")])),
                html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
            ],
            className="mini-table findings-table",
        ),
        html.P(
            dcc.Link("Governance →", href="/governance", className="link"), className="panel-more"
        ),
    ]


def _chart(chart_id: str, figure) -> dcc.Graph:
    return dcc.Graph(id=chart_id, figure=figure, config=CHART, className="panel-chart")


def place_in_graph(node: dict, blast_radius: Sequence[str] | None) -> list[tuple[str, object]]:
    """Fan-in, fan-out, betweenness, single point of failure and blast radius, as label/value."""
    betweenness = node.get("betweenness")
    articulation = node.get("articulation")
    pairs: list[tuple[str, object]] = [
        ("Fan-in / fan-out", f"{node.get('fan_in', '–')} / {node.get('fan_out', '–')}"),
        ("Betweenness", None if betweenness is None else f"{betweenness:.3f}"),
        (
            "Single point of failure",
            None
            if articulation is None
            else html.Span("yes", className="tone-bad")
            if articulation
            else "no",
        ),
    ]
    if blast_radius is not None:
        pairs.append(("Blast radius", f"{len(blast_radius)} dependent nodes"))
    return pairs


def blast_button(name: str, active: bool, radius: Sequence[str] | None) -> html.Button:
    """The button that shows (or hides) on the map every node that depends on ``name``."""
    if active:
        text = "Hide blast radius"
    else:
        text = "Show blast radius" + (f" ({len(radius)})" if radius is not None else "")
    return html.Button(
        text,
        id=ID.BLAST_BUTTON,
        n_clicks=0,
        className="button" + (" button-active" if active else ""),
        disabled=radius is not None and not radius and not active,
        title=f"Highlight every node that depends on {name}, directly or transitively",
    )


def node_panel(
    view: dict,
    name: str,
    *,
    endpoints: Sequence[dict] = (),
    series: Sequence[dict] = (),
    blast_radius: Sequence[str] | None = None,
    blast_active: bool = False,
    findings: Sequence[dict] = (),
) -> list:
    """The side panel for node ``name``: RED figures, endpoints, place in the graph, edges,
    and its open policy findings."""
    node = next((n for n in view["nodes"] if n["id"] == name), None)
    if node is None:
        return [
            html.H3(name, className="panel-title"),
            html.P("No traffic to or from this node in this window.", className="muted"),
            *findings_list(findings),
        ]
    inbound = [e for e in view["edges"] if e["server"] == name]
    outbound = [e for e in view["edges"] if e["client"] == name]
    header = ["type", "rate", "errors", "p95"]
    kind = node["kind"]
    out: list = [
        html.Div(figures.NODE_STYLES.get(kind, {}).get("label", kind), className="panel-kicker"),
        html.H3(name, className="panel-title"),
    ]
    if kind == NodeKind.CLIENT:
        out.append(
            html.P("Stands for the callers of root spans outside the traces.", className="muted")
        )
    if node.get("articulation"):
        out.append(
            html.Div(
                "Single point of failure: without it the landscape falls apart in pieces.",
                className="notice notice-warning compact",
            )
        )
    out += [
        components.key_values(
            [
                ("Namespace", node.get("namespace")),
                ("Environment", node.get("environment")),
                ("Rate (inbound)", formatting.rate(node.get("rps"))),
                ("Inbound calls", formatting.count(node["requests"])),
                ("Inbound errors", _error_cell(node["errors"], node["error_ratio"])),
                (
                    "p50 / p95 / p99",
                    " / ".join(formatting.ms(node.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms")),
                ),
                *place_in_graph(node, blast_radius),
            ]
        ),
        blast_button(name, blast_active, blast_radius),
        *findings_list(findings),
    ]
    if series:
        filled = figures.fill_minutes(series)
        out += [
            html.H4("Inbound per minute"),
            _chart(ID.NODE_SERIES, figures.series_figure(filled, height=170)),
        ]
    out += [
        html.H4(f"Endpoints it serves ({len(endpoints)})"),
        endpoint_table(endpoints),
        html.H4(f"Called by ({len(inbound)})"),
        components.table(["client", *header], _edge_rows(inbound, "client"))
        if inbound
        else html.P("No callers: an entry point.", className="muted"),
        html.H4(f"Calls ({len(outbound)})"),
        components.table(["server", *header], _edge_rows(outbound, "server"))
        if outbound
        else html.P("Calls nothing observed.", className="muted"),
    ]
    return out


def edge_panel(
    view: dict,
    client: str,
    server: str,
    series: Sequence[dict],
    endpoints: Sequence[dict] = (),
    findings: Sequence[dict] = (),
) -> list:
    """The side panel for the edge client → server: percentiles, errors, rate over time, the
    endpoints it calls, and its open policy findings."""
    edges = [e for e in view["edges"] if e["client"] == client and e["server"] == server]
    title = [
        html.Div("Edge", className="panel-kicker"),
        html.H3([client, html.Span(" → ", className="arrow"), server], className="panel-title"),
    ]
    if not edges:
        return [
            *title,
            html.P("No traffic on this edge in this window.", className="muted"),
            *findings_list(findings),
        ]
    out = [*title, *findings_list(findings)]
    for edge in edges:
        out.append(
            components.key_values(
                [
                    ("Connection", edge["connection_type"].replace("_", " ")),
                    ("Evidence", ", ".join(edge["sources"])),
                    ("Calls", formatting.count(edge["count"])),
                    ("Rate", formatting.rate(edge["rps"])),
                    ("Errors", _error_cell(edge["errors"], edge["error_ratio"])),
                    ("4xx", formatting.count(edge.get("client_errors"))),
                    (
                        "p50 / p95 / p99",
                        " / ".join(formatting.ms(edge[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
                    ),
                    ("Max", formatting.ms(edge.get("max_ms"))),
                    *([("Queue lag p50 / p95", _lag(edge))] if edge.get("lag_count") else []),
                    *(
                        [("Gateway overhead p50 / p95", _lag(edge, "overhead"))]
                        if edge.get("overhead_count")
                        else []
                    ),
                ]
            )
        )
    filled = figures.fill_minutes(series)
    out += [
        html.H4("Rate and errors per minute"),
        _chart(ID.EDGE_SERIES, figures.series_figure(filled, height=190)),
        html.H4("Latency per minute"),
        _chart(ID.EDGE_LATENCY, figures.latency_figure(filled, height=170)),
        html.H4(f"Endpoints ({len(endpoints)})"),
        endpoint_table(endpoints),
    ]
    return out


def _lag(edge: dict, kind: str = "lag") -> str:
    """Time added by the node in between (``lag``: a queue's; ``overhead``: a gateway's)."""
    return (
        f"{formatting.ms(edge.get(f'{kind}_p50_ms'))} / {formatting.ms(edge.get(f'{kind}_p95_ms'))}"
    )
