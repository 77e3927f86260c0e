"""Overview (``/``): the headline figures of a window, their trend, and the worst edges."""

from __future__ import annotations

import time

import dash_ag_grid as dag
from dash import Dash, Input, Output, dcc, html

from clew import store
from console import components, figures, formatting, ids, queries
from console.state import WINDOW_KEYS, ViewState, parse, search

PATH = "/"
TITLE = "Overview"
ID = ids.Overview
TB = ID.TOOLBAR


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    return html.Div(
        [
            *components.window_page_top(TITLE, ID, query),
            html.Div(id=ID.CARDS, className="cards"),
            html.Section(
                [
                    html.H2("Traffic and errors per minute"),
                    dcc.Graph(
                        id=ID.SERIES,
                        figure=figures.empty_figure(),
                        config={"displayModeBar": False, "responsive": True},
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Worst edges"),
                    html.P(
                        "Highest error ratio first, then slowest p95. Open one on the map to see "
                        "its neighbours.",
                        className="muted",
                    ),
                    worst_grid(),
                ],
                className="panel",
            ),
        ],
        className="page page-overview",
    )


def worst_grid() -> dag.AgGrid:
    """The worst-edges table (rows come from ``worst_rows``)."""
    tone = {
        "tone-bad": f"params.value >= {figures.BAD_AT}",
        "tone-warn": f"params.value >= {figures.WARN_AT} && params.value < {figures.BAD_AT}",
    }
    columns = [
        {"field": "client", "headerName": "Client", "flex": 2, "minWidth": 150},
        {"field": "server", "headerName": "Server", "flex": 2, "minWidth": 150},
        {
            "field": "connection_type",
            "headerName": "Connection",
            "flex": 1,
            "minWidth": 120,
            "valueFormatter": {"function": "params.value.replaceAll('_', ' ')"},
        },
        {
            "field": "count",
            "headerName": "Calls",
            "type": "numericColumn",
            "flex": 1,
            "valueFormatter": {"function": "d3.format(',')(params.value)"},
        },
        {
            "field": "error_ratio",
            "headerName": "Error ratio",
            "type": "numericColumn",
            "flex": 1,
            "valueFormatter": {"function": "d3.format('.2%')(params.value)"},
            "cellClassRules": tone,
        },
        {
            "field": "p95_ms",
            "headerName": "p95 (ms)",
            "type": "numericColumn",
            "flex": 1,
            "valueFormatter": {
                "function": "params.value == null ? '–' : d3.format(',.1f')(params.value)"
            },
        },
        {
            "field": "rps",
            "headerName": "Rate (/s)",
            "type": "numericColumn",
            "flex": 1,
            "valueFormatter": {"function": "d3.format(',.3~f')(params.value)"},
        },
        {
            "field": "map",
            "headerName": "",
            "cellRenderer": "markdown",
            "sortable": False,
            "width": 110,
            "minWidth": 110,
        },
    ]
    return dag.AgGrid(
        id=ID.WORST,
        columnDefs=columns,
        rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True},
        dashGridOptions={
            "domLayout": "autoHeight",
            "suppressCellFocus": True,
            "localeText": {"noRowsToShow": "No edges in this window"},
        },
        className="ag-theme-alpine clew-grid",
        style={"width": "100%"},
    )


def cards(figs: dict) -> list[html.Div]:
    """The headline cards for ``clew.metrics.overview`` figures."""
    ratio = figs["error_ratio"]
    return [
        components.card("Services", formatting.count(figs["services"]), hint="instrumented"),
        components.card("Edges", formatting.count(figs["edges"]), hint="with traffic"),
        components.card(
            "Calls",
            formatting.rate(figs["rps"]),
            hint=f"{formatting.count(figs['calls'])} calls, all edges",
        ),
        components.card(
            "Entry requests", formatting.rate(figs["entry_rps"]), hint="from outside callers"
        ),
        components.card("p95 latency", formatting.ms(figs["p95_ms"]), hint="all edges"),
        components.card(
            "Error ratio",
            formatting.ratio(ratio),
            tone=figures.health(ratio),
            hint="5xx and span errors",
        ),
    ]


def map_link(state: ViewState, client: str, server: str) -> str:
    """The service map URL with this window and the edge client → server selected."""
    return "/map" + search(state, WINDOW_KEYS, client=client, server=server)


def worst_rows(rows: list[dict], state: ViewState) -> list[dict]:
    """Grid rows for the worst edges; the last column links to the edge on the map.

    The link text is fixed and the names are URL-encoded in the target, so a name cannot inject
    markdown or HTML into the cell.
    """
    keep = ("client", "server", "connection_type", "count", "error_ratio", "p95_ms", "rps")
    return [
        {
            **{k: row[k] for k in keep},
            "map": f"[Show on map]({map_link(state, row['client'], row['server'])})",
        }
        for row in rows
    ]


def view(
    model: queries.OverviewModel, state: ViewState, window, now_minute: int | None = None
) -> dict:
    """Everything ``refresh`` outputs, from the view model (pure, so it can be tested).

    A window open towards now is charted up to ``now_minute``, so traffic that stopped shows.
    """
    if model.empty:
        return {
            "message": components.no_data(state, PATH, model.data_range),
            "cards": [],
            "figure": figures.empty_figure(),
            "rows": [],
        }
    until = window.until_minute
    if until is None and window.since_minute is not None and now_minute is not None:
        until = now_minute + 1
    series = figures.fill_minutes(model.series, window.since_minute, until)
    return {
        "message": None,
        "cards": cards(model.figures),
        "figure": figures.series_figure(series),
        "rows": worst_rows(model.figures["worst_edges"], state),
    }


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time).

    Controls write the URL and the page's state store; the view is drawn from the state store
    only, so a loaded URL and a clicked control take the same path.
    """
    flask_app = app.server

    components.register_window_sync(app, TB, ID.STATE)

    @app.callback(
        Output(TB.PROBLEMS, "children"),
        Output(ID.WINDOW_LABEL, "children"),
        Output(ID.MESSAGE, "children"),
        Output(ID.CARDS, "children"),
        Output(ID.SERIES, "figure"),
        Output(ID.WORST, "rowData"),
        Input(ID.STATE, "data"),
    )
    def refresh(raw):
        now = time.time_ns()
        state, problems = parse(raw or {}, now)
        window = state.resolve(now)
        model = queries.overview(store.engine_of(flask_app), window)
        out = view(model, state, window, now // 60_000_000_000)
        return (
            components.problems(problems),
            window_label(state, window),
            out["message"],
            out["cards"],
            out["figure"],
            out["rows"],
        )


def window_label(state: ViewState, window) -> str:
    """The window in words and, when bounded, in UTC minutes."""
    label = state.describe()
    if window.since_minute is not None:
        until = formatting.minute(window.until_minute) if window.until_minute else "now"
        label += f" · {formatting.minute(window.since_minute)} → {until}"
    return label
