"""Pure functions from the compliance report's data to the Governance page's plotly figures.

The same palette and fonts as ``console.figures``; names (rules, teams, systems) go in as bar
categories, which plotly draws as text, never in hover templates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

import plotly.graph_objects as go

from console.figures import BAD, GRID, INK, MUTED, WARN, chart_layout
from policies.engine import SEVERITIES

#: A colour per severity, most severe the loudest; waived findings in grey.
SEVERITY_COLOURS = {"error": BAD, "warning": WARN, "info": "#2563eb", "hint": "#94a3b8"}
WAIVED_COLOUR = "#cbd5e1"
#: Bars shown at most in one chart; the rest are summed as "others".
MAX_BARS = 30
OTHERS = "(others)"
NONE = "(none)"


def _layout(height: int) -> dict:
    layout = chart_layout(height, {"l": 8, "r": 16, "t": 28, "b": 28})
    layout["legend"]["traceorder"] = "normal"
    return layout | {
        "barmode": "stack",
        "xaxis": {"gridcolor": GRID, "zeroline": False, "tickfont": {"color": MUTED}},
        "yaxis": {"automargin": True, "tickfont": {"color": INK}},
    }


def tally(findings: Sequence[Mapping], key: str) -> list[tuple[str, dict[str, int]]]:
    """Findings counted by ``key`` (rule, team, system), each as open ones by severity and
    ``waived``; most findings first, past ``MAX_BARS`` the rest summed as ``(others)``."""
    by: dict[str, Counter] = {}
    for f in findings:
        name = f.get(key) or NONE
        bucket = "waived" if f["state"] == "waived" else f["severity"]
        by.setdefault(name, Counter())[bucket] += 1
    ranked = sorted(by.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if len(ranked) > MAX_BARS:
        rest = Counter()
        for _, counts in ranked[MAX_BARS - 1 :]:
            rest.update(counts)
        ranked = [*ranked[: MAX_BARS - 1], (OTHERS, rest)]
    return [(name, dict(counts)) for name, counts in ranked]


def findings_bars(findings: Sequence[Mapping], key: str) -> go.Figure:
    """Horizontal bars of the findings by ``key``: open ones stacked by severity, waived ones
    in grey; the largest bar on top."""
    rows = tally(findings, key)
    names = [name for name, _ in reversed(rows)]
    figure = go.Figure(layout=_layout(max(160, 40 + 24 * len(rows))))
    for bucket, colour in [*SEVERITY_COLOURS.items(), ("waived", WAIVED_COLOUR)]:
        values = [counts.get(bucket, 0) for _, counts in reversed(rows)]
        if not any(values):
            continue
        figure.add_trace(
            go.Bar(
                x=values,
                y=names,
                name=bucket,
                orientation="h",
                marker={"color": colour},
                hovertemplate="%{x}",
            )
        )
    return figure


def severity_bars(counts: Mapping[str, int]) -> go.Figure:
    """One bar per severity (every severity, most severe first), from the report's counts."""
    figure = go.Figure(layout=_layout(160))
    figure.update_layout(showlegend=False, barmode="group")
    figure.add_trace(
        go.Bar(
            x=[counts.get(s, 0) for s in reversed(SEVERITIES)],
            y=list(reversed(SEVERITIES)),
            orientation="h",
            marker={"color": [SEVERITY_COLOURS[s] for s in reversed(SEVERITIES)]},
            hovertemplate="%{x}",
            name="findings",
        )
    )
    return figure


def _time(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def trend_figure(
    series: Sequence[Mapping],
    start: str | datetime | None = None,
    end: str | datetime | None = None,
) -> go.Figure:
    """Open findings at each run over time, stacked by severity (the report's trend series),
    over ``start``..``end`` when given (the report's period)."""
    times = [_time(r["at"]) for r in series]
    layout = _layout(220)
    layout["xaxis"] = {"gridcolor": GRID, "tickfont": {"color": MUTED}}
    if start is not None and end is not None:
        layout["xaxis"]["range"] = [_time(start), _time(end)]
    layout["yaxis"] = {
        "gridcolor": GRID,
        "rangemode": "tozero",
        "tickfont": {"color": MUTED},
        "title": {"text": "open findings", "font": {"color": MUTED, "size": 11}},
    }
    layout["hovermode"] = "x unified"
    figure = go.Figure(layout=layout)
    for severity in reversed(SEVERITIES):
        values = [r["open"].get(severity, 0) for r in series]
        if not any(values):
            continue
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                name=severity,
                mode="lines+markers",
                stackgroup="open",
                line={"color": SEVERITY_COLOURS[severity], "width": 1.5},
                hovertemplate="%{y}",
            )
        )
    return figure
