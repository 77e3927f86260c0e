"""The report as one self-contained HTML page: inline CSS, charts as inline SVG drawn here, no
script and no external URL, so it can be mailed, filed or printed (the PDF is this page).

Every value reaches the page through Jinja2 with autoescaping; the charts' geometry is
computed here as numbers and drawn by the template, so their labels are escaped like the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2

from policies.engine import SEVERITIES

#: Severity colours, chosen to stay apart in greyscale print as well.
COLOURS = {"error": "#b3261e", "warning": "#c77700", "info": "#1f6fb2", "hint": "#6b7280"}
BAR_COLOUR = "#34577a"
#: Bar charts list this many bars at most; the rest are summed into one "others" bar.
MAX_BARS = 12
CHART_WIDTH = 640
LABEL_WIDTH = 240
BAR_HEIGHT = 18
BAR_GAP = 6
TREND_WIDTH = 640
TREND_HEIGHT = 180
TREND_PAD = 32


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def _template_source(name: str) -> str:
    return (resources.files("policies.reports") / "templates" / name).read_text("utf-8")


def when(value: str | None) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM UTC``; an empty string for none."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def bars(counts: Mapping[str, int], colours: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A horizontal bar chart's geometry: each bar's label, value, top and length."""
    items = [(k, v) for k, v in counts.items()]
    if len(items) > MAX_BARS:
        rest = sum(v for _, v in items[MAX_BARS - 1 :])
        items = [*items[: MAX_BARS - 1], (f"{len(counts) - MAX_BARS + 1} others", rest)]
    top = max((v for _, v in items), default=0) or 1
    room = CHART_WIDTH - LABEL_WIDTH - 50
    drawn = [
        {
            "label": label,
            "value": value,
            "y": i * (BAR_HEIGHT + BAR_GAP),
            "width": round(room * value / top, 1),
            "colour": (colours or {}).get(label, BAR_COLOUR),
        }
        for i, (label, value) in enumerate(items)
    ]
    return {
        "width": CHART_WIDTH,
        "height": max(len(drawn) * (BAR_HEIGHT + BAR_GAP), BAR_HEIGHT),
        "label_width": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "bars": drawn,
    }


def trend(series: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The trend chart's geometry: a line per severity of open findings over the runs, by
    time, with the first and last run's dates and the highest count on the axes."""
    if not series:
        return {"lines": [], "width": TREND_WIDTH, "height": TREND_HEIGHT}
    times = [datetime.fromisoformat(point["at"]).timestamp() for point in series]
    low, high = min(times), max(times)
    top = max(max(point["open"].values(), default=0) for point in series) or 1
    inner_w = TREND_WIDTH - 2 * TREND_PAD
    inner_h = TREND_HEIGHT - 2 * TREND_PAD

    def x(t: float) -> float:
        share = (t - low) / (high - low) if high > low else 0.5
        return round(TREND_PAD + inner_w * share, 1)

    def y(v: int) -> float:
        return round(TREND_PAD + inner_h - inner_h * v / top, 1)

    lines = []
    for severity in SEVERITIES:
        points = [(x(t), y(p["open"].get(severity, 0))) for t, p in zip(times, series, strict=True)]
        lines.append(
            {
                "severity": severity,
                "colour": COLOURS[severity],
                "points": " ".join(f"{px},{py}" for px, py in points),
                "dots": points,
                "last": series[-1]["open"].get(severity, 0),
            }
        )
    return {
        "lines": lines,
        "width": TREND_WIDTH,
        "height": TREND_HEIGHT,
        "pad": TREND_PAD,
        "top": top,
        "first": series[0]["at"],
        "last": series[-1]["at"],
        "runs": len(series),
    }


def render(report: Mapping[str, Any]) -> bytes:
    """The HTML page of ``report`` (its ``as_dict()``), UTF-8."""
    counts = report.get("counts") or {}
    charts = {
        "severity": bars(counts.get("severity", {}), COLOURS),
        "rule": bars(counts.get("rule", {})),
        "team": bars(counts.get("team", {})),
        "trend": trend((report.get("trend") or {}).get("series", [])),
    }
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(report=report, charts=charts, severities=SEVERITIES, colours=COLOURS)
    )
    return page.encode("utf-8")
