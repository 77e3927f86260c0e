"""The service map's legends: what shapes, colours, widths and dashes mean, and the legend of the
overlays that are on (the window diff, the blast radius)."""

from __future__ import annotations

from collections.abc import Mapping

from dash import html

from clew.records import NodeKind
from console import figures, formatting, ids, overlay

ID = ids.ServiceMap


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
        html.Span(
            f"p95 ≥ {formatting.ms(figures.SLOW_AT_MS)}: labelled",
            className="legend-item legend-slow",
        ),
    ]
    return html.Div(
        [html.Div(shapes, className="legend-row"), html.Div(edges + notes, className="legend-row")],
        id=ID.LEGEND,
        className="legend",
    )


def overlay_legend(
    counts: dict[str, int] | None,
    compared: str | None,
    thresholds: Mapping | None,
    blast: tuple[str, list[str]] | None,
    diff_problem: str | None = None,
    *,
    declared: dict[str, int] | None = None,
) -> list:
    """The legend of the overlays that are on: the window diff, the blast radius, and the
    catalog's declared dependencies."""
    rows = []
    if declared is not None:
        rows.append(
            html.Div(
                [
                    html.Span("Against the catalog:", className="legend-item strong"),
                    html.Span(
                        [
                            html.Span(className="legend-glow glow-undeclared"),
                            f"{declared['undeclared']} undeclared",
                        ],
                        className="legend-item",
                        title="Observed in the window, declared by no catalog entity",
                    ),
                    html.Span(
                        [html.Span(className="legend-line unused"), f"{declared['unused']} unused"],
                        className="legend-item",
                        title="Declared in the catalog, not observed in the window",
                    ),
                ],
                className="legend-row",
            )
        )
    if diff_problem:
        rows.append(html.Div(diff_problem, className="legend-row muted"))
    elif counts is not None:
        limits = overlay.thresholds_text(thresholds or {})
        rows.append(
            html.Div(
                [
                    html.Span(f"Compared with {compared}:", className="legend-item strong"),
                    html.Span(
                        [html.Span(className="legend-glow glow-added"), f"{counts['added']} new"],
                        className="legend-item",
                    ),
                    html.Span(
                        [html.Span(className="legend-line removed"), f"{counts['removed']} gone"],
                        className="legend-item",
                    ),
                    html.Span(
                        [
                            html.Span(className="legend-glow glow-changed"),
                            f"{counts['changed']} changed",
                        ],
                        className="legend-item",
                        title="Changed: " + limits if limits else None,
                    ),
                ],
                className="legend-row",
            )
        )
    if blast:
        node, radius = blast
        rows.append(
            html.Div(
                [
                    html.Span(className="legend-glow glow-blast"),
                    html.Span(
                        ["Blast radius of ", html.Strong(node), f": {len(radius)} dependent nodes"]
                    ),
                ],
                className="legend-row legend-item",
            )
        )
    return rows
