"""A trace as a waterfall of HTML rows: spans indented by depth, bars on a shared time axis, the
failing span and the critical path marked.

HTML rows rather than a plotly figure: span and service names go in as text children (inert,
whatever they hold), and a row can carry its own classes for the marks.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import html

from clew.records import SpanKind
from console import formatting

#: Indentation per depth level, in pixels.
INDENT = 14
#: Most spans drawn; a longer trace is cut with a note (the JSON API has every span).
MAX_SPANS = 400
#: Narrowest bar, as a percentage of the axis, so that an instant span stays visible.
MIN_BAR = 0.4

NS_PER_MS = 1_000_000


def kind_name(kind: int | None) -> str:
    """``server``, ``client``, ... for an OTLP span kind number; ``""`` when unspecified."""
    try:
        value = SpanKind(kind)
    except (TypeError, ValueError):
        return ""
    return "" if value is SpanKind.UNSPECIFIED else value.name.lower()


def bar(span: dict, start_ns: int, duration_ns: int) -> tuple[float, float]:
    """Where a span's bar sits on the trace's axis: (left, width) in percent."""
    if duration_ns <= 0:
        return 0.0, 100.0
    left = max(0.0, min(100.0, (span["start_ns"] - start_ns) * 100 / duration_ns))
    width = max(MIN_BAR, min(100.0 - left, span["duration_ns"] * 100 / duration_ns))
    return round(left, 3), round(width, 3)


def ticks(duration_ns: int, count: int = 4) -> list[tuple[float, str]]:
    """Axis ticks: (position in percent, label) from 0 to the trace's duration."""
    return [
        (round(100 * i / count, 3), formatting.ms(duration_ns * i / count / NS_PER_MS))
        for i in range(count + 1)
    ]


def label_side(left: float, width: float) -> str:
    """Where a bar's duration goes: after the bar, before it, or inside it when neither fits."""
    if left + width <= 80:
        return ""
    return " wf-duration-before" if left >= 12 else " wf-duration-inside"


def label_place(left: float, width: float) -> dict:
    """The duration label's position for ``label_side``."""
    side = label_side(left, width)
    if not side:
        return {"left": f"{left + width}%"}
    if side == " wf-duration-before":
        return {"right": f"{round(100 - left, 3)}%"}
    return {"right": f"{round(100 - left - width, 3)}%"}


def row_classes(span: dict) -> str:
    """A row's classes: ``failing``, ``critical`` and ``error`` marks as they apply."""
    classes = ["wf-row"]
    if span.get("failing"):
        classes.append("failing")
    if span.get("critical"):
        classes.append("critical")
    if span.get("error") or span.get("status") == 2 or (span.get("http_status") or 0) >= 500:
        classes.append("error")
    return " ".join(classes)


def _row(span: dict, start_ns: int, duration_ns: int) -> html.Div:
    left, width = bar(span, start_ns, duration_ns)
    kind = kind_name(span.get("kind"))
    failing = span.get("failing")
    marks = [html.Span("✕", className="wf-mark", title="failing span")] if failing else []
    label = html.Div(
        [
            *marks,
            html.Span(span["service"], className="wf-service"),
            html.Span(span["name"], className="wf-name"),
            *([html.Span(kind, className="wf-kind")] if kind else []),
        ],
        className="wf-label",
        style={"paddingLeft": f"{span.get('depth', 0) * INDENT + 4}px"},
        title=f"{span['service']} · {span['name']}",
    )
    offset = formatting.ms((span["start_ns"] - start_ns) / NS_PER_MS)
    track = html.Div(
        [
            html.Div(className="wf-bar", style={"left": f"{left}%", "width": f"{width}%"}),
            html.Span(
                formatting.ms(span["duration_ns"] / NS_PER_MS),
                className="wf-duration" + label_side(left, width),
                style=label_place(left, width),
            ),
        ],
        className="wf-track",
        title=f"starts at +{offset}",
    )
    return html.Div(
        [label, track],
        className=row_classes(span),
        **{"data-span-id": span["span_id"], "data-depth": str(span.get("depth", 0))},
    )


def legend() -> html.Div:
    """What the waterfall's marks mean."""
    items = (
        ("wf-swatch failing", "failing span (where the failure began)"),
        ("wf-swatch critical", "critical path"),
        ("wf-swatch error", "other span with an error"),
        ("wf-swatch", "span"),
    )
    return html.Div(
        [html.Span([html.Span(className=c), text], className="legend-item") for c, text in items],
        className="legend-row wf-legend",
    )


def waterfall(trace: dict, spans_limit: int = MAX_SPANS) -> html.Div:
    """The waterfall of ``trace`` (``clew.metrics.trace_view``), spans in the order given."""
    start, duration = trace["start_ns"], trace["duration_ns"]
    spans: Sequence[dict] = trace["spans"]
    axis = html.Div(
        [
            html.Div("span", className="wf-label wf-axis-label"),
            html.Div(
                [
                    html.Span(text, className="wf-tick", style={"left": f"{position}%"})
                    for position, text in ticks(duration)
                ],
                className="wf-track wf-axis",
            ),
        ],
        className="wf-row wf-header",
    )
    rows = [_row(span, start, duration) for span in spans[:spans_limit]]
    notes = []
    if len(spans) > spans_limit:
        notes.append(
            html.P(
                f"The first {spans_limit} of {len(spans)} spans; /api/traces/<id> has them all.",
                className="muted",
            )
        )
    return html.Div([legend(), axis, *rows, *notes], className="waterfall")


def failing_span(trace: dict) -> dict | None:
    """The span where the failure began, if the trace has one."""
    wanted = trace.get("failing_span_id")
    return next((s for s in trace["spans"] if s["span_id"] == wanted), None) if wanted else None
