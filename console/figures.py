"""Pure functions from view models to plotly figures and cytoscape elements and styles.

Nothing here reads the store or Dash callback context, so every picture the console draws can be
tested as data. Names are never put in a figure's HTML-capable text (titles, hover templates):
they go through cytoscape's canvas labels or React text nodes, both of which render them inert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from clew.records import NodeKind
from console import formatting

# A sober palette: slate text, one blue accent, and the traffic-light trio for health only.
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
OK = "#2f9e5b"
WARN = "#d4900f"
BAD = "#d64545"
# Cytoscape accepts only double quotes in a font-family list.
FONT = 'Inter, "Segoe UI", system-ui, -apple-system, Roboto, "Helvetica Neue", Arial, sans-serif'

#: Overlays: the window diff (added, changed; removed edges are drawn muted and dashed) and the
#: blast radius.
ADDED = "#2563eb"
CHANGED = "#7c3aed"
REMOVED = "#9ca3af"
BLAST = "#c2410c"
#: An observed edge the catalog does not declare.
UNDECLARED = "#db2777"
SLOW = "#9a3412"

#: Error ratio thresholds: below WARN_AT is healthy, below BAD_AT needs a look, above is failing.
WARN_AT = 0.01
BAD_AT = 0.05

#: An edge whose p95 is at least this slow carries its p95 on the map, labels on or off.
SLOW_AT_MS = 500.0

#: Edge widths in pixels: the busiest edge of the view gets MAX, one WIDTH_DECADES slower gets MIN.
MIN_WIDTH = 1.2
MAX_WIDTH = 9.0
WIDTH_DECADES = 3.0

#: How each node kind is drawn: cytoscape shape, size (w, h), fill and border.
NODE_STYLES: dict[str, dict[str, object]] = {
    NodeKind.SERVICE: {
        "shape": "round-rectangle",
        "size": (44, 26),
        "fill": "#e8eefb",
        "border": "#3b5fb0",
        "label": "Service",
    },
    NodeKind.DATABASE: {
        "shape": "barrel",
        "size": (30, 34),
        "fill": "#e7f3ea",
        "border": "#3f7d4f",
        "label": "Database",
    },
    NodeKind.BROKER: {
        "shape": "diamond",
        "size": (36, 36),
        "fill": "#fbf1dc",
        "border": "#a8741a",
        "label": "Broker",
    },
    NodeKind.TOPIC: {
        "shape": "cut-rectangle",
        "size": (46, 24),
        "fill": "#fdf6e6",
        "border": "#a8741a",
        "label": "Topic (inside its broker)",
    },
    NodeKind.EXTERNAL: {
        "shape": "hexagon",
        "size": (38, 32),
        "fill": "#f1ecf8",
        "border": "#6f53a3",
        "label": "External",
    },
    NodeKind.GATEWAY: {
        "shape": "rhomboid",
        "size": (48, 26),
        "fill": "#e3f3f5",
        "border": "#23808d",
        "label": "Gateway",
    },
    NodeKind.CLIENT: {
        "shape": "ellipse",
        "size": (28, 28),
        "fill": "#f3f4f6",
        "border": "#6b7280",
        "label": "Client (entry)",
    },
}


def health(error_ratio: float) -> str:
    """``ok`` below 1 %, ``warn`` below 5 %, ``bad`` from 5 %."""
    if error_ratio >= BAD_AT:
        return "bad"
    if error_ratio >= WARN_AT:
        return "warn"
    return "ok"


HEALTH_COLOURS = {"ok": OK, "warn": WARN, "bad": BAD}


def edge_colour(error_ratio: float) -> str:
    """Green, amber or red for an edge's error ratio."""
    return HEALTH_COLOURS[health(error_ratio)]


def edge_width(rps: float, max_rps: float) -> float:
    """Width for an edge carrying ``rps`` when the busiest edge carries ``max_rps`` (log scale).

    Each decade below the busiest edge takes away a third of the range, so both a 500/s and a
    0.5/s edge stay visible.
    """
    if max_rps <= 0 or rps <= 0:
        return MIN_WIDTH
    decades = min(WIDTH_DECADES, max(0.0, math.log10(max_rps / rps)))
    return round(MAX_WIDTH - (MAX_WIDTH - MIN_WIDTH) * decades / WIDTH_DECADES, 2)


def edge_id(client: str, server: str, connection_type: str) -> str:
    """A stable element id for one edge (names may hold any character; cytoscape does not mind)."""
    return f"{client}\u2192{server}\u00b7{connection_type}"


def edge_label(edge: dict) -> str:
    """The optional text on an edge: rate, error ratio and p95."""
    return (
        f"{formatting.rate(edge['rps'])} · {formatting.ratio(edge['error_ratio'])}"
        f" · p95 {formatting.ms(edge.get('p95_ms'))}"
    )


def matches(name: str, query: str | None) -> bool:
    """Whether a node name matches the search text (case-insensitive substring)."""
    return bool(query) and query.casefold() in name.casefold()


def map_elements(
    nodes: Sequence[dict],
    edges: Sequence[dict],
    *,
    context: Iterable[str] = (),
    query: str | None = None,
    selected_node: str | None = None,
    selected_edge: tuple[str, str] | None = None,
    blast: tuple[str, Iterable[str]] | None = None,
    badges: Mapping[tuple[str, ...], Mapping] | None = None,
) -> list[dict]:
    """Cytoscape elements for graph-view ``nodes`` and ``edges``.

    ``context`` names nodes shown only as neighbours of the filtered ones (drawn faded); ``query``
    highlights matching nodes and fades the rest; the selected node or edge is pre-selected.
    ``blast`` is (node, the nodes that depend on it): those and the edges among them are marked,
    the rest fade. An edge carrying a ``diff`` mark (see ``console.overlay``) gets its class.
    ``badges`` (``console.finding_badges``) puts each node's and edge's open findings in its data
    (``findings``, ``finding_severity`` and the ``badge`` text the stylesheet draws).
    """
    badges = badges or {}
    context = set(context)
    origin, radius = (blast[0], set(blast[1]) | {blast[0]}) if blast else (None, set())
    max_rps = max((e["rps"] for e in edges), default=0.0)
    elements: list[dict] = []
    shown = {node["id"] for node in nodes}
    for node in sorted(nodes, key=lambda n: n["id"]):
        classes = [node["kind"] if node["kind"] in NODE_STYLES else NodeKind.SERVICE]
        if node["requests"]:
            classes.append("node-" + health(node["error_ratio"]))
        if node["id"] in context:
            classes.append("context")
        if query:
            classes.append("match" if matches(node["id"], query) else "dim")
        if node.get("diff"):
            classes.append("diff-" + node["diff"])
        if node.get("declared"):
            classes.append("declared-" + node["declared"])
        if blast:
            in_radius = node["id"] in radius
            classes.append(
                "blast-origin" if node["id"] == origin else "blast" if in_radius else "outside"
            )
        elements.append(
            {
                "group": "nodes",
                "data": {
                    "id": node["id"],
                    "label": node["id"],
                    "kind": node["kind"],
                    "namespace": node.get("namespace"),
                    "environment": node.get("environment"),
                    # a topic is drawn inside its broker (a cytoscape compound node)
                    **({"parent": node["parent"]} if node.get("parent") in shown else {}),
                    **_badge_data(badges.get(("node", node["id"])), node["id"] + " "),
                },
                "classes": " ".join(classes),
                "selected": node["id"] == selected_node,
            }
        )
    for edge in sorted(edges, key=lambda e: (e["client"], e["server"], e["connection_type"])):
        classes = [health(edge["error_ratio"]), edge["connection_type"]]
        if edge["client"] in context or edge["server"] in context:
            classes.append("context")
        if query and not (matches(edge["client"], query) or matches(edge["server"], query)):
            classes.append("dim")
        if (edge.get("p95_ms") or 0) >= SLOW_AT_MS:
            classes.append("slow")
        mark = edge.get("diff")
        if mark:
            classes.append("diff-" + mark)
        declared = edge.get("declared")
        if declared:
            classes.append("declared-" + declared)
        if blast:
            inside = edge["client"] in radius and edge["server"] in radius
            classes.append("blast" if inside else "outside")
        elements.append(
            {
                "group": "edges",
                "data": {
                    "id": edge_id(edge["client"], edge["server"], edge["connection_type"]),
                    "source": edge["client"],
                    "target": edge["server"],
                    "connection_type": edge["connection_type"],
                    "colour": REMOVED
                    if mark == "removed" or declared == "unused"
                    else edge_colour(edge["error_ratio"]),
                    "width": edge_width(edge["rps"], max_rps),
                    "label": edge_label(edge),
                    "slow_label": f"p95 {formatting.ms(edge.get('p95_ms'))}",
                    **({"diff_label": diff_label(edge)} if mark else {}),
                    **(
                        {"declared_label": "undeclared" if declared == "undeclared" else "unused"}
                        if declared
                        else {}
                    ),
                    **_badge_data(badges.get(("edge", edge["client"], edge["server"])), ""),
                },
                "classes": " ".join(classes),
                "selected": selected_edge == (edge["client"], edge["server"]),
            }
        )
    return elements


#: The mark before a findings count on the map.
FINDINGS_MARK = "\u2691"


def _badge_data(badge: Mapping | None, prefix: str) -> dict:
    """The element data of a findings badge: its count, worst severity and text."""
    if not badge:
        return {}
    return {
        "findings": badge["count"],
        "finding_severity": badge["worst"],
        "badge": f"{prefix}{FINDINGS_MARK} {badge['count']}",
    }


def diff_label(edge: dict) -> str:
    """The overlay's text on an edge: new, removed, or what changed (``error ratio ↑``)."""
    mark = edge.get("diff")
    if mark != "changed":
        return {"added": "new", "removed": "removed"}.get(mark or "", "")
    return ", ".join(edge.get("changes") or ["changed"]).replace("_", " ")


def map_layout() -> dict:
    """A deterministic layered layout (dagre): callers above, what they call below."""
    return {
        "name": "dagre",
        "rankDir": "TB",
        "ranker": "network-simplex",
        "nodeDimensionsIncludeLabels": True,
        "nodeSep": 22,
        "rankSep": 30,
        "edgeSep": 10,
        "padding": 24,
        "fit": True,
        "animate": False,
    }


def map_stylesheet(edge_labels: bool = False) -> list[dict]:
    """The map's cytoscape stylesheet; edge labels (rate · error ratio) only when asked for."""
    sheet: list[dict] = [
        {
            "selector": "node",
            "style": {
                "label": "data(label)",
                "font-family": FONT,
                "font-size": 13,
                "color": INK,
                "text-valign": "bottom",
                "text-halign": "center",
                "text-margin-y": 4,
                "text-wrap": "ellipsis",
                "text-max-width": 190,
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.85,
                "text-background-padding": 1,
                "border-width": 1.5,
                "min-zoomed-font-size": 6,
            },
        },
    ]
    for kind, style in NODE_STYLES.items():
        width, height = style["size"]
        sheet.append(
            {
                "selector": f"node.{kind}",
                "style": {
                    "shape": style["shape"],
                    "width": width,
                    "height": height,
                    "background-color": style["fill"],
                    "border-color": style["border"],
                },
            }
        )
    sheet += [
        {"selector": "node.external", "style": {"border-style": "dashed"}},
        {
            "selector": ":parent",
            "style": {
                "shape": "round-rectangle",
                "text-valign": "top",
                "padding": "12px",
                "border-style": "dashed",
            },
        },
        {"selector": "node.node-warn", "style": {"border-color": WARN, "border-width": 3}},
        {"selector": "node.node-bad", "style": {"border-color": BAD, "border-width": 3}},
        {
            "selector": "edge",
            "style": {
                "curve-style": "bezier",
                "line-color": "data(colour)",
                "target-arrow-color": "data(colour)",
                "target-arrow-shape": "triangle",
                "arrow-scale": 0.9,
                "width": "data(width)",
                "line-opacity": 0.8,
            },
        },
        {"selector": "edge.messaging_system", "style": {"line-style": "dashed"}},
        {"selector": ".context", "style": {"opacity": 0.35}},
        {"selector": ".dim", "style": {"opacity": 0.18}},
        {
            "selector": "node.match",
            "style": {
                "border-color": ACCENT,
                "border-width": 4,
                "font-weight": "bold",
                "z-index": 10,
            },
        },
    ]
    sheet += overlay_stylesheet()
    sheet += findings_stylesheet()
    sheet.append(
        {
            "selector": "edge.slow",
            "style": {
                "label": "data(slow_label)",
                "font-family": FONT,
                "font-size": 12,
                "font-weight": "bold",
                "color": SLOW,
                "text-rotation": "autorotate",
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.9,
                "text-background-padding": 2,
            },
        }
    )
    if edge_labels:
        sheet.append(
            {
                "selector": "edge",
                "style": {
                    "label": "data(label)",
                    "font-family": FONT,
                    "font-size": 10,
                    "color": INK,
                    "text-rotation": "autorotate",
                    "text-background-color": "#ffffff",
                    "text-background-opacity": 0.9,
                    "text-background-padding": 1,
                },
            }
        )
    sheet += overlay_labels()
    return sheet


def overlay_stylesheet() -> list[dict]:
    """How the window diff and the blast radius mark the map (classes set by ``map_elements``)."""
    return [
        {
            "selector": "edge.diff-added",
            "style": {"underlay-color": ADDED, "underlay-opacity": 0.3, "underlay-padding": 5},
        },
        {
            "selector": "edge.diff-changed",
            "style": {"underlay-color": CHANGED, "underlay-opacity": 0.3, "underlay-padding": 5},
        },
        {
            "selector": "edge.diff-removed",
            "style": {
                "line-style": "dashed",
                "line-dash-pattern": [7, 5],
                "target-arrow-shape": "triangle-backcurve",
                "line-opacity": 0.9,
            },
        },
        {
            "selector": "node.diff-removed",
            "style": {"border-style": "dashed", "border-color": REMOVED, "opacity": 0.7},
        },
        {"selector": ".outside", "style": {"opacity": 0.12}},
        {
            "selector": "node.blast",
            "style": {"underlay-color": BLAST, "underlay-opacity": 0.25, "underlay-padding": 6},
        },
        {
            "selector": "node.blast-origin",
            "style": {
                "border-color": BLAST,
                "border-width": 4,
                "underlay-color": BLAST,
                "underlay-opacity": 0.4,
                "underlay-padding": 8,
                "font-weight": "bold",
            },
        },
        {"selector": "edge.blast", "style": {"line-opacity": 1, "z-index": 15}},
        {
            "selector": "edge.declared-undeclared",
            "style": {
                "underlay-color": UNDECLARED,
                "underlay-opacity": 0.35,
                "underlay-padding": 5,
            },
        },
        {
            "selector": "edge.declared-unused",
            "style": {
                "line-style": "dotted",
                "target-arrow-shape": "triangle-backcurve",
                "line-opacity": 0.9,
            },
        },
        {
            "selector": "node.declared-unused",
            "style": {"border-style": "dotted", "border-color": REMOVED, "opacity": 0.75},
        },
    ]


#: A findings badge's colours by its worst severity: (text and border, background).
BADGE_COLOURS = {
    "error": (BAD, "#fde8e8"),
    "warning": ("#a16207", "#fdf3d8"),
    "info": (ACCENT, "#e0ebff"),
    "hint": (MUTED, "#f3f4f6"),
}


def findings_stylesheet() -> list[dict]:
    """Findings badges: a node's label gains the count in a box coloured by the worst
    severity; an edge carries the count by its target."""
    sheet: list[dict] = [
        {
            "selector": "node[findings > 0]",
            "style": {
                "label": "data(badge)",
                "text-border-width": 1.5,
                "text-border-opacity": 1,
                "text-border-style": "solid",
                "text-background-opacity": 1,
                "text-background-padding": 2,
                "text-background-shape": "round-rectangle",
            },
        },
        {
            "selector": "edge[findings > 0]",
            "style": {
                "target-label": "data(badge)",
                "target-text-offset": 26,
                "font-family": FONT,
                "font-size": 11,
                "font-weight": "bold",
                "text-background-opacity": 1,
                "text-background-padding": 1,
                "text-background-shape": "round-rectangle",
            },
        },
    ]
    for severity, (ink, fill) in BADGE_COLOURS.items():
        sheet.append(
            {
                "selector": f'[finding_severity = "{severity}"]',
                "style": {
                    "text-border-color": ink,
                    "text-background-color": fill,
                    "color": ink,
                },
            }
        )
    return sheet


def overlay_labels() -> list[dict]:
    """The diff overlay's edge text, which wins over the optional rate labels."""
    return [
        {
            "selector": "edge.diff-added, edge.diff-removed, edge.diff-changed",
            "style": {
                "label": "data(diff_label)",
                "font-family": FONT,
                "font-size": 10,
                "font-weight": "bold",
                "color": INK,
                "text-rotation": "autorotate",
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.9,
                "text-background-padding": 2,
            },
        },
        {"selector": "edge.diff-added", "style": {"color": ADDED}},
        {"selector": "edge.diff-changed", "style": {"color": CHANGED}},
        {"selector": "edge.diff-removed", "style": {"color": MUTED}},
        {
            "selector": "edge.declared-undeclared, edge.declared-unused",
            "style": {
                "label": "data(declared_label)",
                "font-family": FONT,
                "font-size": 10,
                "font-weight": "bold",
                "text-rotation": "autorotate",
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.9,
                "text-background-padding": 2,
            },
        },
        {"selector": "edge.declared-undeclared", "style": {"color": UNDECLARED}},
        {"selector": "edge.declared-unused", "style": {"color": MUTED}},
    ]


def fill_minutes(
    series: Sequence[dict], since: int | None = None, until: int | None = None, limit: int = 20_160
) -> list[dict]:
    """``series`` with the minutes that had no traffic filled in as zero, from ``since``
    (default: its first minute) up to ``until`` exclusive (default: after its last minute).

    A silent minute is a real zero, not a gap. Past ``limit`` minutes the series is returned as is.
    """
    if not series:
        return []
    first = series[0]["minute"] if since is None else min(since, series[0]["minute"])
    end = series[-1]["minute"] + 1 if until is None else max(until, series[-1]["minute"] + 1)
    if end - first > limit:
        return list(series)
    by_minute = {row["minute"]: row for row in series}
    empty = {
        "rps": 0.0,
        "errors": 0,
        "error_ratio": 0.0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }
    return [by_minute.get(m) or {"minute": m, **empty} for m in range(first, end)]


def _times(series: Sequence[dict]) -> list[datetime]:
    return [datetime.fromtimestamp(row["minute"] * 60, UTC) for row in series]


def chart_layout(height: int, margin: dict[str, int]) -> dict:
    """What every chart of the console shares: its height and margins, the house font, no
    background, and a horizontal legend above the plot."""
    return {
        "height": height,
        "margin": margin,
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 11},
            "bgcolor": "rgba(0,0,0,0)",
        },
    }


def _base_layout(height: int) -> dict:
    """A RED chart: calls/s on the left axis, the error ratio on the right."""
    return chart_layout(height, {"l": 48, "r": 56, "t": 24, "b": 32}) | {
        "hovermode": "x unified",
        "xaxis": {"gridcolor": GRID, "linecolor": GRID, "tickfont": {"color": MUTED}},
        "yaxis": {
            "gridcolor": GRID,
            "zeroline": False,
            "rangemode": "tozero",
            "tickfont": {"color": MUTED},
            "title": {"text": "calls/s", "font": {"color": MUTED, "size": 11}},
        },
        "yaxis2": {
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickformat": ".1%",
            "tickfont": {"color": BAD},
            "title": {"text": "error ratio", "font": {"color": BAD, "size": 11}},
        },
    }


def series_figure(series: Sequence[dict], height: int = 260) -> go.Figure:
    """Per-minute calls/s (area) and error ratio (line, right axis) over time, in UTC."""
    times = _times(series)
    figure = go.Figure(layout=_base_layout(height))
    figure.add_trace(
        go.Scatter(
            x=times,
            y=[row["rps"] for row in series],
            name="calls/s",
            mode="lines",
            line={"color": ACCENT, "width": 1.5},
            fill="tozeroy",
            fillcolor="rgba(37, 99, 235, 0.12)",
            hovertemplate="%{y:.3~f}/s",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=[row["error_ratio"] for row in series],
            name="error ratio",
            mode="lines",
            line={"color": BAD, "width": 1.5},
            yaxis="y2",
            hovertemplate="%{y:.2%}",
        )
    )
    return figure


#: The latency lines a chart draws, when the series carries them.
PERCENTILES = (("p50_ms", "p50", "#93c5fd"), ("p95_ms", "p95", ACCENT), ("p99_ms", "p99", INK))


def latency_figure(series: Sequence[dict], height: int = 180) -> go.Figure:
    """Per-minute latency percentiles (p50, p95, p99: those the series holds) in ms, in UTC."""
    times = _times(series)
    layout = _base_layout(height)
    layout["yaxis"]["title"]["text"] = "ms"
    layout["yaxis"]["rangemode"] = "tozero"
    layout.pop("yaxis2")
    figure = go.Figure(layout=layout)
    for key, name, colour in PERCENTILES:
        if not any(row.get(key) is not None for row in series):
            continue
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[row.get(key) for row in series],
                name=name,
                mode="lines",
                connectgaps=False,
                line={"color": colour, "width": 1.5},
                hovertemplate="%{y:.1f} ms",
            )
        )
    return figure


def empty_figure(height: int = 260) -> go.Figure:
    """A blank chart with no axes, for while there is nothing to draw."""
    figure = go.Figure(layout=_base_layout(height))
    figure.update_layout(
        showlegend=False,
        xaxis={"visible": False},
        yaxis={"visible": False},
        yaxis2={"visible": False},
    )
    return figure
