"""Endpoints (``/endpoints``): the inventory of a window, every endpoint from traffic and
contracts with its status, and the catalog's declared dependencies against the observed ones.

For the governance board: shadow endpoints are traffic no contract covers, zombies are calls to
what a contract retired, orphans are promises nobody uses, unversioned endpoints are ones a
client cannot pin. The grid filters by status and exports to CSV as shown.
"""

from __future__ import annotations

import time

from dash import Dash, Input, Output, dcc, html

from clew import store
from clew.inventory import STATUSES
from console import components, formatting, ids, queries
from console.state import parse

PATH = "/endpoints"
TITLE = "Endpoints"
ID = ids.Endpoints
TB = ID.TOOLBAR
#: The status filter's choices: every status, and the unversioned flag.
CHOICES = ("all", *STATUSES, "unversioned")


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    return html.Div(
        [
            *components.window_page_top(TITLE, ID, query),
            html.Div(id=ID.CARDS, className="cards"),
            html.Section(
                [
                    html.H2("Inventory"),
                    html.Div(
                        [
                            html.Span("Status", className="field-label"),
                            dcc.RadioItems(
                                id=ID.STATUS,
                                options=[{"label": c, "value": c} for c in CHOICES],
                                value="all",
                                inline=True,
                                className="segmented",
                            ),
                            html.Button("Export CSV", id=ID.EXPORT, className="button"),
                        ],
                        className="toolbar",
                    ),
                    components.grid(
                        ID.GRID,
                        _ENDPOINT_COLUMNS,
                        "No endpoint in this window",
                        filters=True,
                        page_size=50,
                        csv_name="clew-endpoints.csv",
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Declared and observed dependencies"),
                    html.P(
                        "The catalog's dependencies against the edges traffic shows: undeclared"
                        " ones first, then unused ones.",
                        className="muted",
                    ),
                    components.grid(
                        ID.DEPENDENCIES,
                        _DEPENDENCY_COLUMNS,
                        "No catalog dependencies",
                        filters=True,
                    ),
                ],
                className="panel",
            ),
        ],
        className="page page-endpoints",
    )


_NUMBER = {"function": "params.value == null ? '–' : d3.format(',')(params.value)"}
_TONE = {
    "tone-bad": "params.value === 'zombie' || params.value === 'undeclared'",
    "tone-warn": "params.value === 'shadow' || params.value === 'unused'",
    "muted": "params.value === 'orphan'",
}
_ENDPOINT_COLUMNS = [
    {"field": "service", "headerName": "Service", "flex": 2, "minWidth": 150},
    {"field": "method", "headerName": "Method", "flex": 1, "minWidth": 90},
    {"field": "route", "headerName": "Route", "flex": 3, "minWidth": 200, "tooltipField": "route"},
    {
        "field": "status",
        "headerName": "Status",
        "flex": 1,
        "minWidth": 110,
        "cellClassRules": _TONE,
    },
    {
        "field": "versioned",
        "headerName": "Version pinned by",
        "headerTooltip": "Whether a client can pin a version (path, server, header, media, query)",
        "flex": 1,
        "minWidth": 110,
        "tooltipField": "versioned",
        "cellClassRules": {"tone-warn": "params.value === 'no'"},
    },
    {
        "field": "calls",
        "headerName": "Calls",
        "type": "numericColumn",
        "flex": 1,
        "minWidth": 100,
        "valueFormatter": _NUMBER,
    },
    {
        "field": "error_ratio",
        "headerName": "Errors",
        "type": "numericColumn",
        "flex": 1,
        "minWidth": 100,
        "valueFormatter": {"function": "d3.format('.2%')(params.value)"},
    },
    {
        "field": "callers",
        "headerName": "Callers",
        "flex": 2,
        "minWidth": 150,
        "tooltipField": "callers",
    },
    {"field": "owner", "headerName": "Owner", "flex": 1, "minWidth": 130},
    {"field": "contract", "headerName": "Contract", "flex": 2, "minWidth": 150},
    {"field": "why", "headerName": "Why", "flex": 3, "minWidth": 220, "tooltipField": "why"},
]
_DEPENDENCY_COLUMNS = [
    {"field": "client", "headerName": "From", "flex": 2, "minWidth": 150},
    {"field": "server", "headerName": "To", "flex": 2, "minWidth": 150},
    {
        "field": "status",
        "headerName": "Status",
        "flex": 1,
        "minWidth": 110,
        "cellClassRules": _TONE,
    },
    {
        "field": "calls",
        "headerName": "Calls",
        "type": "numericColumn",
        "flex": 1,
        "valueFormatter": _NUMBER,
    },
    {"field": "declared_by", "headerName": "Declared by", "flex": 3, "minWidth": 220},
]


def endpoint_rows(endpoints: list[dict], status: str) -> list[dict]:
    """Grid rows of the inventory with ``status`` (``all``, a status, or ``unversioned``); lists
    become text, so the grid shows and exports them alike."""
    rows = []
    for e in endpoints:
        if status == "unversioned" and not e["unversioned"]:
            continue
        if status not in ("all", "unversioned") and e["status"] != status:
            continue
        rows.append(e | {"callers": ", ".join(e["callers"]), "versioned": e["version_pin"] or "no"})
    return rows


def cards(endpoints: list[dict]) -> list[html.Div]:
    """A card per status, and the unversioned count."""
    tones = {"zombie": "bad", "shadow": "warn"}
    out = [
        components.card(
            status.capitalize(),
            formatting.count(sum(1 for e in endpoints if e["status"] == status)),
            tone=tones.get(status) if any(e["status"] == status for e in endpoints) else None,
        )
        for status in STATUSES
    ]
    unversioned = sum(1 for e in endpoints if e["unversioned"])
    out.append(components.card("Unversioned", formatting.count(unversioned)))
    return out


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    components.register_window_sync(app, TB, ID.STATE)

    @app.callback(
        Output(TB.PROBLEMS, "children"),
        Output(ID.WINDOW_LABEL, "children"),
        Output(ID.MESSAGE, "children"),
        Output(ID.CARDS, "children"),
        Output(ID.GRID, "rowData"),
        Output(ID.DEPENDENCIES, "rowData"),
        Input(ID.STATE, "data"),
        Input(ID.STATUS, "value"),
    )
    def refresh(raw, status):
        now = time.time_ns()
        state, problems = parse(raw or {}, now)
        window = state.resolve(now)
        model = queries.endpoints(store.engine_of(flask_app), window)
        message = None
        if not any(e["calls"] for e in model["endpoints"]):  # orphans alone: no traffic
            message = components.no_data(state, PATH, model["data_range"])
        dependencies = [
            d | {"declared_by": "; ".join(d["declared_by"])} for d in model["dependencies"]
        ]
        return (
            components.problems(problems),
            state.describe(),
            message,
            cards(model["endpoints"]),
            endpoint_rows(model["endpoints"], status or "all"),
            dependencies,
        )

    @app.callback(
        Output(ID.GRID, "exportDataAsCsv"),
        Input(ID.EXPORT, "n_clicks"),
        prevent_initial_call=True,
    )
    def export(_clicks):
        return True
