"""Contracts (``/contracts``): every API contract read with its versions, and the changes between
any two versions, breaking ones first, each with the consumers seen calling what it breaks.

For the architect weighing a change: which callers a new version would break, by name and by how
often they call, over the window chosen in the toolbar.
"""

from __future__ import annotations

import time

from dash import Dash, Input, Output, dcc, html

from clew import store
from console import components, ids, queries
from console.state import parse

PATH = "/contracts"
TITLE = "Contracts"
ID = ids.Contracts
TB = ID.TOOLBAR


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through the callbacks."""
    return html.Div(
        [
            *components.window_page_top(TITLE, ID, query),
            html.Section(
                [
                    html.H2("Versions"),
                    html.P(
                        "Each contract's versions in the order they were first read.",
                        className="muted",
                    ),
                    components.grid(ID.VERSIONS, _VERSION_COLUMNS, "No contract has been read yet"),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Changes between two versions"),
                    html.Div(
                        [
                            html.Span("From", className="field-label"),
                            dcc.Dropdown(id=ID.OLD, clearable=False, className="version-pick"),
                            html.Span("to", className="field-label"),
                            dcc.Dropdown(id=ID.NEW, clearable=False, className="version-pick"),
                        ],
                        className="toolbar",
                    ),
                    html.P(id=ID.SUMMARY, className="muted"),
                    components.grid(
                        ID.CHANGES, _CHANGE_COLUMNS, "No changes between these versions"
                    ),
                ],
                className="panel",
            ),
        ],
        className="page page-contracts",
    )


_VERSION_COLUMNS = [
    {"field": "title", "headerName": "Contract", "flex": 2, "minWidth": 180},
    {"field": "kind", "headerName": "Kind", "flex": 1, "minWidth": 90},
    {"field": "version", "headerName": "Version", "flex": 1, "minWidth": 100},
    {"field": "spec_version", "headerName": "Spec", "flex": 1, "minWidth": 80},
    {"field": "operations", "headerName": "Operations", "type": "numericColumn", "flex": 1},
    {"field": "deprecated", "headerName": "Deprecated", "type": "numericColumn", "flex": 1},
    {"field": "hash", "headerName": "Content hash", "flex": 1, "minWidth": 120},
    {"field": "source", "headerName": "First read from", "flex": 3, "tooltipField": "source"},
]
_CHANGE_COLUMNS = [
    {
        "field": "breaks",
        "headerName": "Breaking",
        "flex": 1,
        "minWidth": 100,
        "cellClassRules": {"tone-bad": "params.value === 'breaking'"},
    },
    {"field": "operation", "headerName": "Operation", "flex": 2, "minWidth": 160},
    {"field": "id", "headerName": "Change", "flex": 2, "minWidth": 200},
    {"field": "where", "headerName": "Where", "flex": 2, "minWidth": 160, "tooltipField": "where"},
    {"field": "consumers", "headerName": "Consumers it breaks", "flex": 3, "minWidth": 200},
]


def version_options(versions: list[dict]) -> list[dict]:
    """Dropdown options, one per version: ``Title@version`` and its hash's first characters."""
    return [
        {
            "label": f"{v['title']} @ {v['version'] or '?'} ({v['content_hash'][:12]})",
            "value": v["content_hash"],
        }
        for v in versions
    ]


def default_pair(versions: list[dict]) -> tuple[str | None, str | None]:
    """The last two versions of the first contract with two or more; else none."""
    by_contract: dict[tuple[str, str], list[dict]] = {}
    for v in versions:
        by_contract.setdefault((v["kind"], v["title"]), []).append(v)
    for found in by_contract.values():
        if len(found) >= 2:
            return found[-2]["content_hash"], found[-1]["content_hash"]
    return None, None


def change_rows(changes: list[dict]) -> list[dict]:
    """Grid rows, breaking changes first; consumers as ``name (calls)`` text."""
    rows = [
        c
        | {
            "breaks": "breaking" if c["breaking"] else "",
            "consumers": ", ".join(f"{x['name']} ({x['calls']:,})" for x in c["consumers"])
            if c["breaking"]
            else "",
        }
        for c in changes
    ]
    rows.sort(key=lambda r: (not r["breaking"], r["operation"], r["id"], r["where"]))
    return rows


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    components.register_window_sync(app, TB, ID.STATE)

    @app.callback(
        Output(ID.MESSAGE, "children"),
        Output(ID.VERSIONS, "rowData"),
        Output(ID.OLD, "options"),
        Output(ID.NEW, "options"),
        Output(ID.OLD, "value"),
        Output(ID.NEW, "value"),
        Input(ID.STATE, "data"),
    )
    def versions(_raw):
        found = queries.contract_versions(store.engine_of(flask_app))
        message = None
        if not found:
            message = html.P(
                "No contract has been read yet: `clew ingest` OpenAPI and AsyncAPI files, or a"
                " Backstage catalog.",
                className="muted",
            )
        rows = [v | {"hash": v["content_hash"][:12]} for v in found]
        options = version_options(found)
        old, new = default_pair(found)
        return message, rows, options, options, old, new

    @app.callback(
        Output(TB.PROBLEMS, "children"),
        Output(ID.WINDOW_LABEL, "children"),
        Output(ID.SUMMARY, "children"),
        Output(ID.CHANGES, "rowData"),
        Input(ID.STATE, "data"),
        Input(ID.OLD, "value"),
        Input(ID.NEW, "value"),
    )
    def changes(raw, old, new):
        now = time.time_ns()
        state, problems = parse(raw or {}, now)
        window = state.resolve(now)
        if not old or not new:
            return components.problems(problems), state.describe(), "Pick two versions.", []
        report = queries.contract_diff(store.engine_of(flask_app), window, old, new)
        if report is None:
            return components.problems(problems), state.describe(), "Unknown version.", []
        rows = change_rows(report["changes"])
        breaking = sum(1 for r in rows if r["breaking"])
        summary = f"{report['old']} → {report['new']}: {len(rows)} changes, {breaking} breaking"
        if report["service"]:
            via = f" through {', '.join(report['gateways'])}" if report["gateways"] else ""
            summary += f"; served by {report['service']}{via}, consumers over the window"
        return components.problems(problems), state.describe(), summary, rows
