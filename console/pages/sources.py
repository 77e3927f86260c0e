"""Sources (``/sources``): every file Clew reads, how far and how fast, and what it quarantined.

For the operator who feeds Clew: a source whose last read is old or whose unread bytes grow is
stalled; a source with quarantined lines has input Clew could not read, and the second table says
where and why. Refreshed every 15 seconds.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime

from dash import Dash, Input, Output, dcc, html

from clew import store
from console import components, formatting, ids, queries

PATH = "/sources"
TITLE = "Sources"
ID = ids.Sources
#: How often the page reads the store again (ms).
REFRESH_MS = 15_000


def layout(**_query: str) -> html.Div:
    """The page; its tables are filled by ``refresh`` (it has no parameters)."""
    return html.Div(
        [
            html.Div([html.H1(TITLE)], className="page-header"),
            dcc.Interval(id=ID.TICK, interval=REFRESH_MS),
            html.Div(id=ID.MESSAGE),
            html.Section(
                [
                    html.H2("Sources"),
                    html.P(
                        "Each file read, latest first: how far it has been read, what its latest"
                        " run read and how fast, and how many of its records are in quarantine.",
                        className="muted",
                    ),
                    components.grid(ID.SOURCES, _SOURCE_COLUMNS, "No source has been read yet"),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Quarantine"),
                    html.P(
                        "Input that could not be read, newest first, with where it was and why.",
                        className="muted",
                    ),
                    components.grid(ID.QUARANTINE, _QUARANTINE_COLUMNS, "Nothing is in quarantine"),
                ],
                className="panel",
            ),
        ],
        className="page page-sources",
    )


_NUMBER = {"function": "params.value == null ? '–' : d3.format(',')(params.value)"}
_SOURCE_COLUMNS = [
    {
        "field": "source",
        "headerName": "Source",
        "flex": 3,
        "minWidth": 240,
        "tooltipField": "source",
    },
    {"field": "collector", "headerName": "Format", "flex": 1, "minWidth": 110},
    {"field": "last_read", "headerName": "Last read (UTC)", "flex": 1, "minWidth": 175},
    {"field": "since", "headerName": "", "flex": 1, "minWidth": 120},
    {
        "field": "unread",
        "headerName": "Unread bytes",
        "type": "numericColumn",
        "flex": 1,
        "valueFormatter": _NUMBER,
    },
    {
        "field": "records",
        "headerName": "Records",
        "type": "numericColumn",
        "flex": 1,
        "valueFormatter": _NUMBER,
    },
    {
        "field": "rate",
        "headerName": "Records/s",
        "headerTooltip": "Records per second in the latest run that read the source",
        "type": "numericColumn",
        "flex": 1,
        "valueFormatter": {
            "function": "params.value == null ? '–' : d3.format(',.0f')(params.value)"
        },
    },
    {
        "field": "quarantined",
        "headerName": "Quarantined",
        "type": "numericColumn",
        "flex": 1,
        "valueFormatter": _NUMBER,
        "cellClassRules": {"tone-bad": "params.value > 0"},
    },
]
_QUARANTINE_COLUMNS = [
    {
        "field": "source",
        "headerName": "Source",
        "flex": 2,
        "minWidth": 200,
        "tooltipField": "source",
    },
    {"field": "position", "headerName": "Where", "flex": 1, "minWidth": 110},
    {"field": "reason", "headerName": "Why", "flex": 3, "minWidth": 240, "tooltipField": "reason"},
    {
        "field": "excerpt",
        "headerName": "Excerpt",
        "flex": 3,
        "minWidth": 240,
        "tooltipField": "excerpt",
    },
    {"field": "created_at", "headerName": "When (UTC)", "flex": 1, "minWidth": 160},
]


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _unread(source: str, offset: int, size: int) -> int:
    """Bytes of the source not read yet: of the file as it is now where this process can see it,
    else as it was at its last read."""
    with contextlib.suppress(OSError):
        size = os.stat(source).st_size
    return max(size - offset, 0)


def source_rows(sources: list[dict], now: datetime) -> list[dict]:
    """Grid rows for ``clew.store.queries.sources``: times in UTC, how long since the last read,
    and the bytes still to read."""
    rows = []
    for source in sources:
        last = source["last_read"]
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        since = formatting.ago(int(last.timestamp() * 1e9), int(now.timestamp() * 1e9))
        rows.append(
            {
                "source": source["source"],
                "collector": source["collector"] or "not a known format",
                "last_read": _utc(last),
                "since": since,
                "unread": _unread(source["source"], source["offset"], source["size"]),
                "records": source["records"],
                "rate": source["rate"],
                "quarantined": source["quarantined"],
            }
        )
    return rows


def quarantine_rows(items: list[dict]) -> list[dict]:
    """Grid rows for ``clew.store.queries.quarantine`` (times in UTC)."""
    return [item | {"created_at": _utc(item["created_at"])} for item in items]


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    @app.callback(
        Output(ID.MESSAGE, "children"),
        Output(ID.SOURCES, "rowData"),
        Output(ID.QUARANTINE, "rowData"),
        Input(ID.TICK, "n_intervals"),
    )
    def refresh(_ticks):
        model = queries.sources(store.engine_of(flask_app))
        now = datetime.now(UTC)
        message = None
        if not model["sources"]:
            message = html.P(
                "Nothing has been read yet: `clew ingest PATH` reads trace files and access logs.",
                className="muted",
            )
        return (
            message,
            source_rows(model["sources"], now),
            quarantine_rows(model["quarantine"]),
        )
