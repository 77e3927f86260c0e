"""Building blocks shared by the pages: header, window/filter toolbar, messages, cards, tables.

Everything here is a pure function from values to Dash components; text goes in as React text
children, so names render inert whatever characters they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, dcc, html

from clew.records import ConnectionType, NodeKind
from console import formatting, ids
from console.state import WINDOW_KEYS, WINDOWS, ViewState, parse, search


def options(values: Sequence[str], current: str | None) -> list[dict]:
    """Dropdown options for ``values``, keeping ``current`` (from a URL) even if not among them."""
    values = list(values)
    if current and current not in values:
        values.append(current)
    return [{"label": v, "value": v} for v in values]


def page_header(title: str, state: ViewState, subtitle_id: str) -> html.Div:
    """A page's title over its window in words (``subtitle_id`` lets callbacks rewrite that)."""
    return html.Div(
        [html.H1(title), html.Div(state.describe(), id=subtitle_id, className="subtitle")],
        className="page-header",
    )


def toolbar(
    tb: ids.Toolbar,
    state: ViewState,
    *,
    filters: bool = False,
    namespaces: Sequence[str] = (),
    environments: Sequence[str] = (),
) -> html.Div:
    """The window presets, an explicit since/until, and (on pages that filter) the filters:
    namespace, environment, node kind, connection type and minimum rate."""
    window = html.Div(
        [
            html.Span("Window", className="field-label"),
            dcc.RadioItems(
                id=tb.WINDOW,
                options=[{"label": k, "value": k} for k in WINDOWS],
                value=state.window,
                inline=True,
                className="segmented" + (" overridden" if state.explicit else ""),
            ),
        ],
        className="field",
        title="Relative to now; since/until, when given, take precedence",
    )
    explicit = html.Div(
        [
            dcc.Input(
                id=tb.SINCE,
                type="text",
                value=state.since or "",
                placeholder="since…",
                debounce=True,
                className="text-input time-input",
            ),
            html.Span("→", className="arrow"),
            dcc.Input(
                id=tb.UNTIL,
                type="text",
                value=state.until or "",
                placeholder="until…",
                debounce=True,
                className="text-input time-input",
            ),
        ],
        className="field",
        title="Since/until: now, a duration before now (15m, 3h, 2d), ISO 8601 or epoch seconds",
    )
    items = [window, explicit]
    if filters:
        items += [
            dcc.Dropdown(
                id=tb.NAMESPACE,
                options=options(namespaces, state.namespace),
                value=state.namespace,
                placeholder="Namespace",
                className="filter",
            ),
            dcc.Dropdown(
                id=tb.ENVIRONMENT,
                options=options(environments, state.environment),
                value=state.environment,
                placeholder="Environment",
                className="filter",
            ),
            dcc.Dropdown(
                id=tb.KIND,
                options=options(NodeKind.ALL, state.kind),
                value=state.kind,
                placeholder="Node kind",
                className="filter",
            ),
            dcc.Dropdown(
                id=tb.CONNECTION,
                options=[{"label": c.replace("_", " "), "value": c} for c in ConnectionType.ALL],
                value=state.connection,
                placeholder="Connection",
                className="filter",
            ),
            html.Div(
                [
                    dcc.Input(
                        id=tb.MIN_RATE,
                        type="number",
                        min=0,
                        step="any",
                        value=state.min_rate,
                        placeholder="min rate",
                        debounce=True,
                        className="text-input rate-input",
                    ),
                    html.Span("/s", className="muted"),
                ],
                className="field",
                title="Only edges carrying at least this many calls per second",
            ),
        ]
    return html.Div(items, className="toolbar")


def search_box(tb: ids.Toolbar, state: ViewState) -> dcc.Input:
    """The node search: highlights matching nodes and fades the rest."""
    return dcc.Input(
        id=tb.SEARCH,
        type="search",
        value=state.q or "",
        placeholder="Search nodes…",
        debounce=True,
        className="text-input search-input",
    )


def problems(messages: Sequence[str]) -> list:
    """The problems found in the URL or the controls, as a warning box (nothing when none)."""
    if not messages:
        return []
    return [
        html.Div(
            [
                html.Strong("Some of this view's settings were not understood."),
                html.Ul([html.Li(m) for m in messages]),
            ],
            className="notice notice-warning",
            role="alert",
        )
    ]


def no_data(state: ViewState, path: str, data_range: tuple[int | None, int | None]) -> html.Div:
    """The friendly empty state: nothing in this window, with a link to all data."""
    first, last = data_range
    if first is None:
        return html.Div(
            [
                html.Strong("No data yet. "),
                "Ingest traces with ",
                html.Code("clew ingest"),
                " or load the sample landscape with ",
                html.Code("clew demo"),
                ".",
            ],
            className="notice notice-info",
        )
    everything = search(replace(state, window="all", since=None, until=None))
    return html.Div(
        [
            html.Strong(f"No data in this window ({state.describe()}). "),
            f"The store holds data from {formatting.minute(first)} to {formatting.minute(last)}; ",
            dcc.Link("try all", href=path + everything, className="link"),
            ".",
        ],
        className="notice notice-info",
    )


def card(label: str, value: str, *, tone: str | None = None, hint: str | None = None) -> html.Div:
    """One headline figure."""
    return html.Div(
        [
            html.Div(label, className="card-label"),
            html.Div(value, className="card-value" + (f" tone-{tone}" if tone else "")),
            html.Div(hint or "\u00a0", className="card-hint"),
        ],
        className="card",
    )


def key_values(pairs: Sequence[tuple[str, object]]) -> html.Dl:
    """A compact definition list of label → value."""
    children = []
    for label, value in pairs:
        children += [html.Dt(label), html.Dd("–" if value in (None, "") else value)]
    return html.Dl(children, className="kv")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, numeric_from: int = 1):
    """A small read-only table; columns from ``numeric_from`` on are right-aligned numbers."""
    head = html.Thead(
        html.Tr(
            [
                html.Th(h, className="num" if i >= numeric_from else None)
                for i, h in enumerate(header)
            ]
        )
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(c, className="num" if i >= numeric_from else None)
                    for i, c in enumerate(row)
                ]
            )
            for row in rows
        ]
    )
    return html.Table([head, body], className="mini-table")


def grid(
    grid_id: str,
    columns: list[dict],
    empty: str,
    *,
    filters: bool = False,
    page_size: int | None = None,
    csv_name: str | None = None,
) -> dag.AgGrid:
    """A read-only grid of ``columns``, sortable and resizable, sized to its rows; ``empty`` is
    what it says with none. Column filters, pages and a CSV file name where a page wants them."""
    options: dict = {
        "domLayout": "autoHeight",
        "suppressCellFocus": True,
        "tooltipShowDelay": 300,
        "localeText": {"noRowsToShow": empty},
    }
    if page_size:
        options |= {"pagination": True, "paginationPageSize": page_size}
    return dag.AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        defaultColDef={
            "sortable": True,
            "resizable": True,
            "suppressMovable": True,
            **({"filter": True} if filters else {}),
        },
        dashGridOptions=options,
        **({"csvExportParams": {"fileName": csv_name}} if csv_name else {}),
        className="ag-theme-alpine clew-grid",
        style={"width": "100%"},
    )


def register_window_sync(
    app: Dash,
    tb: ids.Toolbar,
    state_id: str,
    to_search: Callable[[ViewState], str] | None = None,
) -> None:
    """For a page whose only controls are the window's: a change writes the URL (``to_search``
    of the new state, by default the window's keys) and the page's state store, which its view
    is drawn from."""

    @app.callback(
        Output(ids.PAGE_URL, "search", allow_duplicate=True),
        Output(ids.URL_WRITTEN, "data", allow_duplicate=True),
        Output(state_id, "data"),
        Input(tb.WINDOW, "value"),
        Input(tb.SINCE, "value"),
        Input(tb.UNTIL, "value"),
        prevent_initial_call=True,
    )
    def sync_url(window, since, until):
        raw = {"window": window, "since": since, "until": until}
        state, _ = parse(raw)
        query = to_search(state) if to_search else search(state, WINDOW_KEYS)
        return query, query, raw


def window_page_top(title: str, page: type, query: dict) -> list:
    """The top of a page whose controls are the window's: its header, the store of its URL
    parameters, the toolbar, the URL's problems and the message slot (``page`` is its ids
    class: ``WINDOW_LABEL``, ``STATE``, ``TOOLBAR``, ``MESSAGE``)."""
    state, problems_found = parse(query)
    return [
        page_header(title, state, page.WINDOW_LABEL),
        dcc.Store(id=page.STATE, data=dict(query)),
        toolbar(page.TOOLBAR, state),
        html.Div(problems(problems_found), id=page.TOOLBAR.PROBLEMS),
        html.Div(id=page.MESSAGE),
    ]


def selectable(grid: dag.AgGrid, row_id: str = "id") -> dag.AgGrid:
    """``grid`` with one row selectable by a click (read from its ``selectedRows``), each row
    known by its field ``row_id``."""
    grid.getRowId = f"params.data.{row_id}"
    grid.dashGridOptions = grid.dashGridOptions | {
        "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True}
    }
    return grid


def form_field(label: str, control: Any, hint: str | None = None) -> html.Label:
    """A form's labelled control, with a hint under it where one helps."""
    return html.Label(
        [html.Span(label, className="field-label"), control]
        + ([html.Span(hint, className="muted field-hint")] if hint else []),
        className="form-field",
    )


def action_bar(buttons: Sequence[tuple[str, str]], status: str, *controls: Any) -> html.Div:
    """A toolbar of ``controls`` then small buttons (label, id) acting on a grid's selection, and
    the span (``status``) that says what they did."""
    return html.Div(
        [
            *controls,
            *[
                html.Button(label, id=button_id, n_clicks=0, className="button button-small")
                for label, button_id in buttons
            ],
            html.Span(id=status, role="status"),
        ],
        className="toolbar",
    )
