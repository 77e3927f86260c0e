"""Governance (``/governance``): the policy findings by rule, severity, team and system, their
trend over the evaluations, each team's and system's scorecard, every finding in a grid, the
waivers that accept some of them (with a form to add one and a button to revoke one), and the
compliance report to download.

For the governance board and the teams it asks to act. Filters (team, system, severity, state)
live in the URL; the report links carry the team and system. Waivers are the console's one
write, allowed where ``console.access.may_change_waivers`` says so.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html, no_update

from clew import store
from clew.store.findings import STATES
from console import access, components, figures, ids, policy_figures, queries
from console.state import WINDOW_KEYS
from policies.engine import SEVERITIES
from policies.reports import FORMATS

PATH = "/governance"
TITLE = "Governance"
ID = ids.Governance
#: The page's own URL parameters.
FILTER_KEYS = ("team", "system", "severity", "state")
#: How each waiver state reads.
WAIVER_STATES = {
    "active": "active",
    "expiring": "expiring soon",
    "expired": "expired",
    "revoked": "revoked",
}
REPORT_LABELS = {
    "html": "HTML",
    "pdf": "PDF",
    "csv": "CSV",
    "json": "JSON",
    "sarif": "SARIF",
    "junit": "JUnit XML",
}
#: Not responsive: each chart is as tall as its figure says (bars for every rule).
CHART = {"displayModeBar": False}


# --- URL state ----------------------------------------------------------------------------------


def filters_of(query: Mapping[str, object]) -> tuple[dict[str, str | None], list[str]]:
    """The team, system, severity and state in ``query`` and what was wrong with them (an
    unknown severity or state is dropped and explained)."""
    found: dict[str, str | None] = {}
    for key in FILTER_KEYS:
        value = query.get(key)
        found[key] = str(value).strip() or None if value is not None else None
    problems = []
    if found["severity"] is not None and found["severity"] not in SEVERITIES:
        problems.append(
            f"Severity {found['severity']!r} is not one of {', '.join(SEVERITIES)}; it is ignored."
        )
        found["severity"] = None
    if found["state"] is not None and found["state"] not in STATES:
        problems.append(
            f"State {found['state']!r} is not one of {', '.join(STATES)}; it is ignored."
        )
        found["state"] = None
    return found, problems


def governance_search(filters: Mapping[str, str | None], carry: Mapping[str, object]) -> str:
    """This page's query string: its filters, and the window the other pages use (``carry``)."""
    pairs = [(k, carry[k]) for k in WINDOW_KEYS if carry.get(k)]
    pairs += [(k, filters[k]) for k in FILTER_KEYS if filters.get(k)]
    return "?" + urlencode(pairs) if pairs else ""


def report_links(team: str | None, system: str | None, allowed: bool = True) -> list:
    """A download link per report format, for the page's team and system; for a role that may
    not run reports (``allowed`` false), a note saying so instead."""
    if not allowed:
        return [html.Span(access.REPORT_ROLE_TEXT, className="muted")]
    query = urlencode([(k, v) for k, v in (("team", team), ("system", system)) if v])
    return [
        html.Span("Report", className="field-label"),
        *[
            html.A(
                REPORT_LABELS[fmt],
                href=f"/reports/governance.{fmt}" + (f"?{query}" if query else ""),
                className="button button-small report-link",
            )
            for fmt in FORMATS
        ],
    ]


# --- Pure helpers -------------------------------------------------------------------------------


def when(value: str | None) -> str:
    """An ISO time as ``2026-11-18 11:06 UTC`` (``–`` for none)."""
    if not value:
        return "–"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def finding_rows(findings: Sequence[Mapping], severity: str | None = None) -> list[dict]:
    """Grid rows of ``findings`` (of ``severity`` when given): times as text, no owner as
    ``–``."""
    return [
        {
            "id": f["id"],
            "severity": f["severity"],
            "rule": f["rule"],
            "subject": f["subject"],
            "subject_kind": f["subject_kind"],
            "message": f["message"],
            "team": f["team"] or "–",
            "system": f["system"] or "–",
            "state": f["state"],
            "first_seen": when(f["first_seen_at"]),
            "last_seen": when(f["last_seen_at"]),
        }
        for f in findings
        if severity is None or f["severity"] == severity
    ]


def waiver_rows(waivers: Sequence[Mapping], shown: Sequence[Mapping] | None = None) -> list[dict]:
    """Grid rows of ``waivers``: state in words, what each covers as text. With ``shown`` (the
    findings of a team or system filter), only the waivers covering one of them."""
    wanted = None if shown is None else {(f["rule"], f["subject"]) for f in shown}
    rows = []
    for w in waivers:
        if wanted is not None and not any((c["rule"], c["subject"]) in wanted for c in w["covers"]):
            continue
        rows.append(
            {
                "id": w["id"],
                "state": WAIVER_STATES[w["state"]],
                "rule": w["rule"],
                "subject": w["subject"],
                "approver": w["approver"],
                "reason": w["reason"],
                "expires": when(w["expires_at"]),
                "waived": w["findings"],
                "covers": "; ".join(
                    f"{c['subject']} ({c['rule']}, {c['state']})" for c in w["covers"]
                )
                or "–",
                "origin": w["origin"] or "–",
            }
        )
    return rows


def expiring(waivers: Sequence[Mapping]) -> list[Mapping]:
    """The waivers expiring soon, soonest first."""
    return sorted(
        (w for w in waivers if w["state"] == "expiring"), key=lambda w: (w["expires_at"], w["id"])
    )


def callout(waivers: Sequence[Mapping], now: datetime) -> list:
    """The "expiring soon" notice: each waiver about to lapse, when, who approved it and what
    it waives; nothing when none is."""
    soon = expiring(waivers)
    if not soon:
        return []
    items = []
    for w in soon:
        days = (datetime.fromisoformat(w["expires_at"]) - now).days
        left = "today" if days < 1 else f"in {days} day" + ("s" if days != 1 else "")
        items.append(
            html.Li(
                [
                    html.Strong(f"{w['rule']} on {w['subject']}"),
                    f" expires {when(w['expires_at'])} ({left}); approved by {w['approver']};"
                    f" waives {w['findings']} finding" + ("s" if w["findings"] != 1 else "") + ".",
                ]
            )
        )
    count = len(soon)
    return [
        html.Div(
            [
                html.Strong(
                    f"{count} waiver{'s' if count != 1 else ''} expiring soon: the findings"
                    " open again when they lapse."
                ),
                html.Ul(items),
            ],
            className="notice notice-warning",
            role="status",
        )
    ]


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:g} %"


GRADE_TONES = {"A": "ok", "B": "ok", "C": "warn", "D": "warn", "F": "bad"}


def scorecards(cards: Mapping[str, Sequence[Mapping]]) -> list:
    """A table per kind (team, system): grade, score, evaluations and open findings by
    severity."""
    out = []
    for kind in ("team", "system"):
        rows = [
            [
                card["name"],
                html.Span(
                    card["grade"] or "–",
                    className=f"grade tone-{GRADE_TONES.get(card['grade'] or '', 'muted')}",
                ),
                _score(card["score"]),
                f"{card['failing']} of {card['evaluated']}",
                *[card["open"].get(s, 0) for s in SEVERITIES],
            ]
            for card in cards.get(kind, [])
        ]
        header = [kind.capitalize(), "Grade", "Score", "Failing", *SEVERITIES]
        out.append(
            html.Div(
                [
                    html.H3(f"By {kind}"),
                    components.table(header, rows)
                    if rows
                    else html.P("No evaluation yet.", className="muted"),
                ],
                className="scorecard",
            )
        )
    return out


def summary(report: Mapping) -> str:
    """One line on the last evaluation and what it left open."""
    if not report["evaluated"]:
        return report["message"]
    run = report["last_run"]
    state = report["counts"]["state"]
    return (
        f"Last evaluated {when(run['at'])}: {run['rules']} rules, {state['open']} open and"
        f" {state['waived']} waived findings"
    )


def owners(findings: Sequence[Mapping], key: str) -> list[str]:
    """The teams (or systems) findings name, sorted."""
    return sorted({f[key] for f in findings if f[key]})


def prefill(selected: Sequence[Mapping] | None) -> tuple[str, str] | None:
    """The waiver form's rule and subject for a selected finding row (the subject as a glob
    matching it exactly); None when no row is selected."""
    if not selected:
        return None
    row = selected[0]
    return row["rule"], glob.escape(row["subject"])


# --- Layout -------------------------------------------------------------------------------------


_SEVERITY_TONES = {
    "tone-bad": "params.value === 'error'",
    "tone-warn": "params.value === 'warning'",
    "muted": "params.value === 'hint'",
}
_FINDING_COLUMNS = [
    {"field": "severity", "headerName": "Severity", "minWidth": 100, "flex": 1,
     "cellClassRules": _SEVERITY_TONES},
    {"field": "rule", "headerName": "Rule", "minWidth": 170, "flex": 2},
    {"field": "subject", "headerName": "Subject", "minWidth": 220, "flex": 3,
     "tooltipField": "subject"},
    {"field": "message", "headerName": "Message", "minWidth": 260, "flex": 4,
     "tooltipField": "message"},
    {"field": "team", "headerName": "Team", "minWidth": 130, "flex": 1},
    {"field": "system", "headerName": "System", "minWidth": 100, "flex": 1},
    {"field": "state", "headerName": "State", "minWidth": 90, "flex": 1,
     "cellClassRules": {"muted": "params.value !== 'open'"}},
    {"field": "first_seen", "headerName": "First seen", "minWidth": 150, "flex": 1},
    {"field": "last_seen", "headerName": "Last seen", "minWidth": 150, "flex": 1},
]  # fmt: skip
_WAIVER_COLUMNS = [
    {"field": "id", "headerName": "#", "maxWidth": 70, "type": "numericColumn"},
    {"field": "state", "headerName": "State", "minWidth": 120, "flex": 1,
     "cellClassRules": {
         "tone-warn": "params.value === 'expiring soon'",
         "muted": "params.value === 'expired' || params.value === 'revoked'",
     }},
    {"field": "rule", "headerName": "Rule", "minWidth": 160, "flex": 2},
    {"field": "subject", "headerName": "Subject", "minWidth": 200, "flex": 2,
     "tooltipField": "subject"},
    {"field": "approver", "headerName": "Approver", "minWidth": 160, "flex": 2},
    {"field": "reason", "headerName": "Reason", "minWidth": 220, "flex": 3,
     "tooltipField": "reason"},
    {"field": "expires", "headerName": "Expires", "minWidth": 150, "flex": 1},
    {"field": "waived", "headerName": "Waives", "type": "numericColumn", "maxWidth": 100},
    {"field": "covers", "headerName": "Covers", "minWidth": 220, "flex": 3,
     "tooltipField": "covers"},
]  # fmt: skip


def _chart(chart_id: str, title: str) -> html.Div:
    return html.Div(
        [
            html.H3(title),
            dcc.Graph(
                id=chart_id,
                figure=figures.empty_figure(height=180),
                config=CHART,
                className="chart",
            ),
        ],
        className="governance-chart",
    )


def _dropdown(component_id: str, values: Sequence[str], value: str | None, label: str):
    return dcc.Dropdown(
        id=component_id,
        options=components.options(values, value),
        value=value,
        placeholder=label,
        className="filter",
    )


def waiver_form(rules: Sequence[str]) -> html.Div:
    """The form that creates a waiver: rule, subject glob, reason, approver, expiry."""
    text = {"type": "text", "className": "text-input", "debounce": False}
    return html.Div(
        [
            html.H3("Add a waiver"),
            html.P(
                "Select a finding above to fill in its rule and subject. Globs (* ?) widen"
                " either; the waiver applies at once and lapses at its expiry.",
                className="muted",
            ),
            html.Datalist([html.Option(value=r) for r in rules], id=ID.RULE_CHOICES),
            components.form_field("Rule", dcc.Input(id=ID.RULE, list=ID.RULE_CHOICES, **text)),
            components.form_field("Subject", dcc.Input(id=ID.SUBJECT, **text)),
            components.form_field(
                "Reason", dcc.Textarea(id=ID.REASON, className="text-input", rows=2)
            ),
            components.form_field("Approver", dcc.Input(id=ID.APPROVER, **text)),
            components.form_field(
                "Expires",
                dcc.Input(id=ID.EXPIRES, placeholder="YYYY-MM-DD", **text),
                "the end of that day, UTC",
            ),
            html.Button("Create waiver", id=ID.CREATE, n_clicks=0, className="button"),
            html.Div(id=ID.FORM_MESSAGE, role="status"),
        ],
        id=ID.FORM,
        className="waiver-form",
    )


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    found, problems = filters_of(query)
    return html.Div(
        [
            html.Div(
                [html.H1(TITLE), html.Div(id=ID.SUMMARY, className="subtitle")],
                className="page-header",
            ),
            dcc.Store(id=ID.STATE, data=dict(query)),
            dcc.Store(id=ID.VERSION, data=0),
            html.Div(
                [
                    _dropdown(ID.TEAM, [], found["team"], "Team"),
                    _dropdown(ID.SYSTEM, [], found["system"], "System"),
                    _dropdown(ID.SEVERITY, SEVERITIES, found["severity"], "Severity"),
                    _dropdown(ID.FINDING_STATE, STATES, found["state"], "State"),
                    html.Div(
                        [],  # filled by ``refresh``, which knows the caller's role
                        id=ID.REPORTS,
                        className="report-links",
                    ),
                ],
                className="toolbar",
            ),
            html.Div(components.problems(problems), id=ID.MESSAGE),
            html.Div(id=ID.CALLOUT),
            html.Section(
                [
                    html.H2("Findings now"),
                    html.Div(
                        [
                            html.Div(
                                [
                                    _chart(ID.BY_SEVERITY, "By severity"),
                                    _chart(ID.BY_TEAM, "By team"),
                                    _chart(ID.BY_SYSTEM, "By system"),
                                ]
                            ),
                            _chart(ID.BY_RULE, "By rule"),
                        ],
                        className="chart-grid",
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Trend"),
                    html.P(
                        "Open findings at each evaluation of the last 30 days, by severity.",
                        className="muted",
                    ),
                    dcc.Graph(
                        id=ID.TREND,
                        figure=figures.empty_figure(height=180),
                        config=CHART,
                        className="chart",
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Scorecards"),
                    html.P(
                        "The share of rule evaluations that pass, at the last evaluation:"
                        " A from 90 %, B 80, C 70, D 60, else F.",
                        className="muted",
                    ),
                    html.Div(id=ID.SCORECARDS, className="scorecards"),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Findings"),
                    components.selectable(
                        components.grid(
                            ID.FINDINGS,
                            _FINDING_COLUMNS,
                            "No finding matches these filters",
                            filters=True,
                            page_size=50,
                        )
                    ),
                ],
                className="panel",
            ),
            html.Section(
                [
                    html.H2("Waivers"),
                    components.selectable(
                        components.grid(ID.WAIVERS, _WAIVER_COLUMNS, "No waivers")
                    ),
                    components.action_bar(
                        [("Revoke the selected waiver", ID.REVOKE)], ID.REVOKE_MESSAGE
                    ),
                    waiver_form(sorted(queries.known_rules())),
                ],
                className="panel",
            ),
        ],
        className="page page-governance",
    )


# --- Callbacks ----------------------------------------------------------------------------------


def _notice(text: str, tone: str) -> html.Div:
    return html.Div(text, className=f"notice notice-{tone} compact")


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    def engine():
        return store.engine_of(flask_app)

    @app.callback(
        Output(ids.PAGE_URL, "search", allow_duplicate=True),
        Output(ids.URL_WRITTEN, "data", allow_duplicate=True),
        Output(ID.STATE, "data"),
        Input(ID.TEAM, "value"),
        Input(ID.SYSTEM, "value"),
        Input(ID.SEVERITY, "value"),
        Input(ID.FINDING_STATE, "value"),
        State(ID.STATE, "data"),
        prevent_initial_call=True,
    )
    def sync_url(team, system, severity, state, old):
        old = old or {}
        raw = {"team": team, "system": system, "severity": severity, "state": state}
        found, _ = filters_of(raw)
        query = governance_search(found, old)
        new = {k: v for k, v in old.items() if k in WINDOW_KEYS} | {
            k: v for k, v in found.items() if v
        }
        return query, query, no_update if new == old else new

    @app.callback(
        Output(ID.SUMMARY, "children"),
        Output(ID.MESSAGE, "children"),
        Output(ID.REPORTS, "children"),
        Output(ID.CALLOUT, "children"),
        Output(ID.BY_SEVERITY, "figure"),
        Output(ID.BY_RULE, "figure"),
        Output(ID.BY_TEAM, "figure"),
        Output(ID.BY_SYSTEM, "figure"),
        Output(ID.TREND, "figure"),
        Output(ID.SCORECARDS, "children"),
        Output(ID.FINDINGS, "rowData"),
        Output(ID.WAIVERS, "rowData"),
        Output(ID.TEAM, "options"),
        Output(ID.SYSTEM, "options"),
        Output(ID.CREATE, "disabled"),
        Output(ID.REVOKE, "disabled"),
        Input(ID.STATE, "data"),
        Input(ID.VERSION, "data"),
    )
    def refresh(raw, _version):
        found, problems = filters_of(raw or {})
        team, system = found["team"], found["system"]
        now = store.utcnow()
        report = queries.governance(engine(), now, team, system)
        states = (found["state"],) if found["state"] else ("open", "waived")
        shown = queries.findings(engine(), states=states, team=team, system=system)
        everyone = queries.findings(engine(), states=STATES)
        waivers = queries.waivers(engine(), now)
        filtered = team is not None or system is not None
        current = report["findings"]
        message = components.problems(problems)
        writable = access.may_change_waivers()
        if not writable:
            message.append(_notice(access.refusal(), "info"))
        if not report["evaluated"]:
            message.append(_notice(report["message"] + " Run `clew check`.", "info"))
        return (
            summary(report),
            message,
            report_links(team, system, access.may_download_reports()),
            callout(waivers, now),
            policy_figures.severity_bars(report["counts"].get("severity", {})),
            policy_figures.findings_bars(current, "rule"),
            policy_figures.findings_bars(current, "team"),
            policy_figures.findings_bars(current, "system"),
            policy_figures.trend_figure(
                report["trend"].get("series", []), report["since"], report["generated_at"]
            ),
            scorecards(report["scorecards"]),
            finding_rows(shown, found["severity"]),
            waiver_rows(waivers, current if filtered else None),
            components.options(owners(everyone, "team"), team),
            components.options(owners(everyone, "system"), system),
            not writable,
            not writable,
        )

    @app.callback(
        Output(ID.RULE, "value"),
        Output(ID.SUBJECT, "value"),
        Input(ID.FINDINGS, "selectedRows"),
        prevent_initial_call=True,
    )
    def fill_form(selected):
        filled = prefill(selected)
        return filled if filled else (no_update, no_update)

    @app.callback(
        Output(ID.FORM_MESSAGE, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Input(ID.CREATE, "n_clicks"),
        State(ID.RULE, "value"),
        State(ID.SUBJECT, "value"),
        State(ID.REASON, "value"),
        State(ID.APPROVER, "value"),
        State(ID.EXPIRES, "value"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def create(clicks, rule, subject, reason, approver, expires, version):
        if not clicks:
            return no_update, no_update
        if not access.may_change_waivers():
            return _notice(access.refusal(), "warning"), no_update
        try:
            made = queries.add_waiver(
                engine(),
                store.utcnow(),
                rule=rule or "",
                subject=subject or "",
                reason=reason or "",
                approver=approver or "",
                expires=expires or "",
                created_by=access.actor(),
            )
        except ValueError as error:
            return _notice(f"Not created: {error}.", "warning"), no_update
        waived = made["waived"]
        text = f"Waiver #{made['id']} created; it waives {waived} finding" + (
            "s." if waived != 1 else "."
        )
        return _notice(text, "info"), (version or 0) + 1

    @app.callback(
        Output(ID.REVOKE_MESSAGE, "children"),
        Output(ID.VERSION, "data", allow_duplicate=True),
        Input(ID.REVOKE, "n_clicks"),
        State(ID.WAIVERS, "selectedRows"),
        State(ID.VERSION, "data"),
        prevent_initial_call=True,
    )
    def revoke(clicks, selected, version):
        if not clicks:
            return no_update, no_update
        if not access.may_change_waivers():
            return access.refusal(), no_update
        if not selected:
            return "Select a waiver in the list first.", no_update
        waiver_id = int(selected[0]["id"])
        if not queries.revoke_waiver(engine(), waiver_id, store.utcnow()):
            return f"Waiver #{waiver_id} is already revoked.", no_update
        return f"Waiver #{waiver_id} revoked: its findings are open again.", (version or 0) + 1
