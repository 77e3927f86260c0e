"""Admin (``/admin``): accounts and API tokens, for the admin role.

Everything the command line's ``clew users`` and ``clew tokens`` do for a running Clew: add a
local account, give an account another role, disable or enable it (its sessions end at once),
make an API token (its text shown here once) and revoke one. Every callback asks
``console.access.may_administer`` first; other roles see the page's notice and nothing else. The
last enabled admin cannot be demoted or disabled here, nor an admin's own account changed.
"""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from clew import store
from clew.store import accounts
from console import access, components, ids, queries

PATH = "/admin"
TITLE = "Admin"
ID = ids.Admin

_USER_COLUMNS = [
    {"field": "username", "headerName": "Account", "minWidth": 160, "flex": 2},
    {"field": "role", "headerName": "Role", "minWidth": 110, "flex": 1},
    {"field": "login", "headerName": "Logs in with", "minWidth": 180, "flex": 2,
     "tooltipField": "login"},
    {"field": "last_login", "headerName": "Last login", "minWidth": 170, "flex": 1},
    {"field": "created", "headerName": "Created", "minWidth": 170, "flex": 1},
    {"field": "state", "headerName": "State", "minWidth": 100, "flex": 1,
     "cellClassRules": {"tone-warn": "params.value === 'disabled'"}},
]  # fmt: skip
_TOKEN_COLUMNS = [
    {"field": "id", "headerName": "#", "maxWidth": 70, "type": "numericColumn"},
    {"field": "name", "headerName": "Name", "minWidth": 160, "flex": 2},
    {"field": "scope", "headerName": "Scope", "minWidth": 100, "flex": 1},
    {"field": "last_used", "headerName": "Last used", "minWidth": 170, "flex": 1},
    {"field": "created", "headerName": "Created", "minWidth": 170, "flex": 1},
    {"field": "state", "headerName": "State", "minWidth": 190, "flex": 1,
     "cellClassRules": {"muted": "params.value.startsWith('revoked')"}},
]  # fmt: skip
SCOPE_TEXT = {
    "ingest": "ingest: sends traces to POST /v1/traces, nothing else",
    "read": "read: the JSON API and the console, as a viewer",
    "admin": "admin: everything, as an admin",
}


def _text(component_id: str, kind: str = "text", **extra) -> dcc.Input:
    return dcc.Input(id=component_id, type=kind, className="text-input", **extra)


def _choice(component_id: str, values, value: str | None, label: str) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=component_id,
        options=[{"label": label_of, "value": v} for v, label_of in values],
        value=value,
        placeholder=label,
        clearable=False,
        className="filter",
    )


def layout(**_query: str) -> html.Div:
    """The page; its grids are filled by ``refresh``."""
    roles = [(r, r) for r in accounts.ROLES]
    return html.Div(
        [
            html.Div([html.H1(TITLE)], className="page-header"),
            dcc.Store(id=ID.VERSION, data=0),
            html.Div(id=ID.MESSAGE),
            html.Section(
                [
                    html.H2("Accounts"),
                    html.P(
                        "viewer reads everything; governance also changes waivers and runs"
                        " reports; admin also manages accounts and tokens. An account that"
                        " logs in with single sign-on gets its role from the provider at each"
                        " login. Select an account to change it.",
                        className="muted",
                    ),
                    components.selectable(
                        components.grid(ID.USERS, _USER_COLUMNS, "No accounts"), "username"
                    ),
                    components.action_bar(
                        [
                            ("Give the selected account this role", ID.SET_ROLE),
                            ("Disable", ID.DISABLE),
                            ("Enable", ID.ENABLE),
                        ],
                        ID.USER_MESSAGE,
                        _choice(ID.ROLE, roles, "viewer", "Role"),
                    ),
                    html.Div(
                        [
                            html.H3("Add a local account"),
                            components.form_field("Username", _text(ID.NEW_NAME)),
                            components.form_field(
                                "Password",
                                _text(ID.NEW_PASSWORD, "password", autoComplete="new-password"),
                            ),
                            components.form_field(
                                "Role", _choice(ID.NEW_ROLE, roles, "viewer", "Role")
                            ),
                            html.Button("Add account", id=ID.ADD, n_clicks=0, className="button"),
                            html.Div(id=ID.ADD_MESSAGE, role="status"),
                        ],
                        className="waiver-form admin-form",
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("API tokens"),
                    html.P(
                        "Sent as 'Authorization: Bearer clew_…'. Only a token's hash is kept:"
                        " its text is shown once, when it is made.",
                        className="muted",
                    ),
                    components.selectable(
                        components.grid(ID.TOKENS, _TOKEN_COLUMNS, "No API tokens")
                    ),
                    components.action_bar(
                        [("Revoke the selected token", ID.REVOKE)], ID.REVOKE_MESSAGE
                    ),
                    html.Div(
                        [
                            html.H3("Make a token"),
                            components.form_field(
                                "Name", _text(ID.TOKEN_NAME), "what or who will use it"
                            ),
                            components.form_field(
                                "Scope",
                                _choice(ID.TOKEN_SCOPE, SCOPE_TEXT.items(), "ingest", "Scope"),
                            ),
                            html.Button("Make token", id=ID.CREATE, n_clicks=0, className="button"),
                            html.Div(id=ID.CREATED, role="status"),
                        ],
                        className="waiver-form admin-form",
                    ),
                ],
                className="panel",
            ),
        ],
        className="page page-admin",
    )


def _notice(text: str, tone: str) -> html.Div:
    return html.Div(text, className=f"notice notice-{tone} compact")


def _refusal() -> str:
    return access.ADMIN_TEXT.format(role=access.role() or "none")


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    def engine():
        return store.engine_of(flask_app)

    @app.callback(
        Output(ID.USERS, "rowData"),
        Output(ID.TOKENS, "rowData"),
        Output(ID.MESSAGE, "children"),
        Input(ID.VERSION, "data"),
    )
    def refresh(_version):
        if not access.may_administer():
            return [], [], _notice(_refusal(), "warning")
        return queries.users(engine()), queries.tokens(engine()), None

    @app.callback(
        Output(ID.USER_MESSAGE, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Input(ID.SET_ROLE, "n_clicks"),
        Input(ID.DISABLE, "n_clicks"),
        Input(ID.ENABLE, "n_clicks"),
        State(ID.USERS, "selectedRows"),
        State(ID.ROLE, "value"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def change_user(_set, _disable, _enable, selected, role, version):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return no_update, no_update
        if not access.may_administer():
            return _refusal(), no_update
        if not selected:
            return "Select an account in the list first.", no_update
        username = str(selected[0]["username"])
        try:
            if ctx.triggered_id == ID.SET_ROLE:
                queries.set_user_role(engine(), username, role or "", access.user())
                done = f"{username} is now {role}."
            else:
                disable = ctx.triggered_id == ID.DISABLE
                queries.set_user_disabled(
                    engine(), username, disable, store.utcnow(), access.user()
                )
                done = f"{username} is {'disabled' if disable else 'enabled'}."
        except accounts.AccountError as error:
            return f"Not changed: {error}.", no_update
        return done, (version or 0) + 1

    @app.callback(
        Output(ID.ADD_MESSAGE, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Output(ID.NEW_PASSWORD, "value"),
        Input(ID.ADD, "n_clicks"),
        State(ID.NEW_NAME, "value"),
        State(ID.NEW_PASSWORD, "value"),
        State(ID.NEW_ROLE, "value"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def add_user(clicks, username, password, role, version):
        if not clicks:
            return no_update, no_update, no_update
        if not access.may_administer():
            return _notice(_refusal(), "warning"), no_update, ""
        try:
            queries.add_user(engine(), username or "", password or "", role or "", store.utcnow())
        except accounts.AccountError as error:
            return _notice(f"Not added: {error}.", "warning"), no_update, ""
        return _notice(f"{username} added as {role}.", "info"), (version or 0) + 1, ""

    @app.callback(
        Output(ID.CREATED, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Input(ID.CREATE, "n_clicks"),
        State(ID.TOKEN_NAME, "value"),
        State(ID.TOKEN_SCOPE, "value"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def create_token(clicks, name, scope, version):
        if not clicks:
            return no_update, no_update
        if not access.may_administer():
            return _notice(_refusal(), "warning"), no_update
        try:
            token_id, token = queries.create_token(
                engine(), (name or "").strip(), scope or "", store.utcnow()
            )
        except accounts.AccountError as error:
            return _notice(f"Not made: {error}.", "warning"), no_update
        shown = html.Div(
            [
                html.P(f"Token #{token_id} ({scope}) made. Copy it now: it is not shown again."),
                html.Code(token, id=f"{ID.CREATED}-token", className="token-text"),
            ],
            className="notice notice-info compact",
        )
        return shown, (version or 0) + 1

    @app.callback(
        Output(ID.REVOKE_MESSAGE, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Input(ID.REVOKE, "n_clicks"),
        State(ID.TOKENS, "selectedRows"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def revoke_token(clicks, selected, version):
        if not clicks:
            return no_update, no_update
        if not access.may_administer():
            return _refusal(), no_update
        if not selected:
            return "Select a token in the list first.", no_update
        token_id = int(selected[0]["id"])
        if not queries.revoke_token(engine(), token_id, store.utcnow()):
            return f"Token #{token_id} is already revoked.", no_update
        return f"Token #{token_id} revoked.", (version or 0) + 1
