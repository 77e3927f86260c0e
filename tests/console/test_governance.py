"""The Governance page's pure helpers and the map's findings badges, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase

from console import figures, finding_badges, panels, policy_figures
from console.pages import governance

from .tree import texts

NOW = datetime(2026, 11, 18, 11, 6, tzinfo=UTC)


def finding(rule, subject, kind, severity="warning", state="open", **extra) -> dict:
    return {
        "id": extra.pop("id", 1),
        "rule": rule,
        "subject": subject,
        "subject_kind": kind,
        "severity": severity,
        "state": state,
        "message": extra.pop("message", f"{rule} on {subject}"),
        "team": extra.pop("team", None),
        "system": extra.pop("system", None),
        "first_seen_at": "2026-11-18T11:06:00+00:00",
        "last_seen_at": "2026-11-18T12:30:00+00:00",
        **extra,
    }


def waiver(waiver_id, state, expires, covers=(), waived=0, **extra) -> dict:
    return {
        "id": waiver_id,
        "rule": extra.get("rule", "edge-latency-p99"),
        "subject": extra.get("subject", "web → recs"),
        "state": state,
        "approver": "lead@shop.example",
        "reason": "slow tail blocks nothing",
        "expires_at": expires,
        "origin": extra.get("origin", "console"),
        "findings": waived,
        "covers": list(covers),
    }


# --- URL state ----------------------------------------------------------------------------------


def test_filters_come_from_the_url_and_bad_ones_are_explained():
    found, problems = governance.filters_of(
        {"team": "team-payments", "severity": "fatal", "state": "waived", "window": "all"}
    )
    assert found == {"team": "team-payments", "system": None, "severity": None, "state": "waived"}
    assert problems == ["Severity 'fatal' is not one of error, warning, info, hint; it is ignored."]
    _, problems = governance.filters_of({"state": "closed"})
    assert problems == ["State 'closed' is not one of open, waived, resolved; it is ignored."]


def test_the_query_string_keeps_the_filters_and_carries_the_window():
    filters = {"team": "team a", "system": None, "severity": "error", "state": None}
    assert (
        governance.governance_search(filters, {"window": "all", "node": "x"})
        == "?window=all&team=team+a&severity=error"
    )
    assert governance.governance_search(dict.fromkeys(governance.FILTER_KEYS), {}) == ""


def test_report_links_carry_the_team_and_system_for_every_format():
    links = [c for c in governance.report_links("team-payments", None) if hasattr(c, "href")]
    assert [link.href for link in links] == [
        f"/reports/governance.{fmt}?team=team-payments"
        for fmt in ("html", "pdf", "csv", "json", "sarif", "junit")
    ]
    assert [link.children for link in links] == ["HTML", "PDF", "CSV", "JSON", "SARIF", "JUnit XML"]
    bare = [c.href for c in governance.report_links(None, None) if hasattr(c, "href")]
    assert bare[0] == "/reports/governance.html"


# --- Grid rows, callout, scorecards -------------------------------------------------------------


def test_finding_rows_show_owners_and_times_and_filter_by_severity():
    found = [
        finding("zombie-endpoint", "payments-api POST /v2/refunds", "endpoint", "error", id=7,
                team="team-payments", system="payments"),
        finding("edge-latency-p99", "client → shop-edge", "edge", "warning", id=8),
    ]  # fmt: skip
    rows = governance.finding_rows(found)
    assert rows[0] == {
        "id": 7,
        "severity": "error",
        "rule": "zombie-endpoint",
        "subject": "payments-api POST /v2/refunds",
        "subject_kind": "endpoint",
        "message": "zombie-endpoint on payments-api POST /v2/refunds",
        "team": "team-payments",
        "system": "payments",
        "state": "open",
        "first_seen": "2026-11-18 11:06 UTC",
        "last_seen": "2026-11-18 12:30 UTC",
    }
    assert rows[1]["team"] == rows[1]["system"] == "–"
    assert [r["id"] for r in governance.finding_rows(found, "warning")] == [8]


def test_waiver_rows_name_the_state_and_what_each_covers():
    waivers = [
        waiver(1, "active", "2027-02-17T00:00:00+00:00", waived=1, rule="undocumented-service",
               subject="pos-api",
               covers=[{"rule": "undocumented-service", "subject": "pos-api", "state": "waived"}]),
        waiver(2, "expiring", "2026-11-29T00:00:00+00:00"),
        waiver(3, "expired", "2026-11-12T00:00:00+00:00"),
        waiver(4, "revoked", "2027-01-01T00:00:00+00:00"),
    ]  # fmt: skip
    rows = governance.waiver_rows(waivers)
    assert [r["state"] for r in rows] == ["active", "expiring soon", "expired", "revoked"]
    assert rows[0]["covers"] == "pos-api (undocumented-service, waived)"
    assert rows[0]["waived"] == 1 and rows[0]["expires"] == "2027-02-17 00:00 UTC"
    assert rows[1]["covers"] == "–"
    # with a team's findings shown, only the waivers covering one of them
    shown = [finding("undocumented-service", "pos-api", "service", "info")]
    assert [r["id"] for r in governance.waiver_rows(waivers, shown)] == [1]


def test_the_callout_lists_the_waivers_expiring_soon():
    waivers = [
        waiver(1, "active", "2027-02-17T00:00:00+00:00"),
        waiver(2, "expiring", "2026-11-29T00:00:00+00:00", waived=2),
        waiver(5, "expiring", "2026-11-19T00:00:00+00:00", waived=1, rule="shadow-endpoint",
               subject="order-service GET /orders/*"),
    ]  # fmt: skip
    (notice,) = governance.callout(waivers, NOW)
    text = texts(notice)
    assert text.startswith("2 waivers expiring soon")
    # soonest first, with when, who and what
    assert text.index("shadow-endpoint on order-service GET /orders/*") < text.index(
        "edge-latency-p99 on web → recs"
    )
    assert "expires 2026-11-19 00:00 UTC (today); approved by lead@shop.example;" in text
    assert "waives 1 finding." in text
    assert "expires 2026-11-29 00:00 UTC (in 10 days)" in text and "waives 2 findings." in text
    assert notice.className == "notice notice-warning"
    assert governance.callout([waiver(1, "active", "2027-02-17T00:00:00+00:00")], NOW) == []


def test_scorecards_show_grade_score_and_open_findings_by_severity():
    cards = {
        "team": [
            {"name": "team-payments", "evaluated": 107, "failing": 8, "score": 92.5,
             "grade": "A", "open": {"error": 3, "warning": 6, "info": 2, "hint": 0}},
            {"name": "(none)", "evaluated": 0, "failing": 0, "score": None, "grade": None,
             "open": {"error": 0, "warning": 1, "info": 0, "hint": 0}},
        ],
        "system": [],
    }  # fmt: skip
    team, system = governance.scorecards(cards)
    assert " ".join(texts(team).split()) == (
        "By team Team Grade Score Failing error warning info hint"
        " team-payments A 92.5 % 8 of 107 3 6 2 0"
        " (none) – – 0 of 0 0 1 0 0"
    )
    assert texts(system) == "By system No evaluation yet."


def test_the_summary_names_the_last_evaluation():
    report = {
        "evaluated": True,
        "last_run": {"at": "2026-11-18T11:06:00+00:00", "rules": 56},
        "counts": {"state": {"open": 55, "waived": 1}},
    }
    assert governance.summary(report) == (
        "Last evaluated 2026-11-18 11:06 UTC: 56 rules, 55 open and 1 waived findings"
    )
    assert governance.summary({"evaluated": False, "message": "Nothing yet."}) == "Nothing yet."


def test_a_selected_finding_prefills_a_glob_matching_exactly_its_subject():
    row = {"rule": "shadow-endpoint", "subject": "[external] GET /a*b"}
    rule, subject = governance.prefill([row])
    assert rule == "shadow-endpoint"
    assert fnmatchcase(row["subject"], subject)
    assert not fnmatchcase("[external] GET /aXb", subject)
    assert governance.prefill([]) is None and governance.prefill(None) is None


# --- Charts -------------------------------------------------------------------------------------


def test_findings_bars_stack_open_by_severity_and_waived_apart():
    found = [
        finding("a", "x", "service", "error", team="t1"),
        finding("a", "y", "service", "warning", team="t1"),
        finding("b", "z", "service", "info", state="waived", team=None),
    ]
    figure = policy_figures.findings_bars(found, "team")
    traces = {t.name: (list(t.y), list(t.x)) for t in figure.data}
    # the largest bar on top: plotly draws the first category at the bottom
    assert traces == {
        "error": (["(none)", "t1"], [0, 1]),
        "warning": (["(none)", "t1"], [0, 1]),
        "waived": (["(none)", "t1"], [1, 0]),
    }
    assert figure.layout.barmode == "stack"


def test_past_the_bar_limit_the_rest_are_summed_as_others():
    found = [
        finding(f"rule-{i:02}", "s", "service", id=i) for i in range(33) for _ in range(33 - i)
    ]
    rows = policy_figures.tally(found, "rule")
    assert len(rows) == policy_figures.MAX_BARS == 30
    assert rows[0] == ("rule-00", {"warning": 33})
    assert rows[-2] == ("rule-28", {"warning": 5})
    assert rows[-1] == ("(others)", {"warning": 4 + 3 + 2 + 1})


def test_severity_bars_and_the_trend_by_severity():
    bars = policy_figures.severity_bars({"error": 10, "warning": 31, "info": 15, "hint": 0})
    assert list(bars.data[0].y) == ["hint", "info", "warning", "error"]
    assert list(bars.data[0].x) == [0, 15, 31, 10]
    series = [
        {"at": "2026-11-17T11:06:00+00:00", "open": {"error": 12, "warning": 30, "info": 0}},
        {"at": "2026-11-18T11:06:00+00:00", "open": {"error": 10, "warning": 31, "info": 0}},
    ]
    trend = policy_figures.trend_figure(series)
    assert [t.name for t in trend.data] == ["warning", "error"]  # none at info or hint
    assert list(trend.data[1].y) == [12, 10]
    assert trend.data[1].x[0] == datetime(2026, 11, 17, 11, 6, tzinfo=UTC)


# --- The map's badges ---------------------------------------------------------------------------

NODES = {"web", "shop edge", "payments-api", "hub", "inventory", "orders", "broker"}
EDGES = {("web", "hub"), ("shop edge", "web"), ("orders", "broker")}


def test_each_kind_of_subject_lands_on_its_node_or_edge():
    contracts = {"Payments API@2.4.0": "payments-api"}

    def on(subject, kind):
        return finding_badges.places(finding("r", subject, kind), NODES, EDGES, contracts)

    assert on("web → hub", "edge") == [("edge", "web", "hub")]
    assert on("orders → broker (messaging)", "edge") == [("edge", "orders", "broker")]
    assert on("web → nowhere", "edge") == []
    # the longest node name the endpoint starts with: names may hold spaces
    assert on("shop edge GET /x", "endpoint") == [("node", "shop edge")]
    assert on("payments-api POST /v2/refunds", "endpoint") == [("node", "payments-api")]
    assert on("hub", "service") == [("node", "hub")]
    assert on("Payments API@2.4.0", "contract") == [("node", "payments-api")]
    assert on("Catalog API@3.9.0", "contract") == []  # served by nothing on the map
    assert on("hub → inventory → orders → hub", "cycle") == [
        ("node", "hub"),
        ("node", "inventory"),
        ("node", "orders"),
    ]


def test_badges_count_findings_and_keep_the_worst_severity():
    found = [
        finding("undocumented-service", "hub", "service", "info"),
        finding("dependency-cycle", "hub → inventory → orders → hub", "cycle", "warning"),
        finding("edge-error-ratio", "shop edge → web", "edge", "error"),
        finding("edge-latency-p99", "shop edge → web", "edge", "warning"),
    ]
    placed = finding_badges.by_place(found, NODES, EDGES)
    badges = finding_badges.badges(placed)
    assert badges[("node", "hub")] == {"count": 2, "worst": "warning"}
    assert badges[("node", "orders")] == {"count": 1, "worst": "warning"}
    assert badges[("edge", "shop edge", "web")] == {"count": 2, "worst": "error"}
    assert ("node", "web") not in badges
    # most severe first in the panels
    assert [f["rule"] for f in placed[("node", "hub")]] == [
        "dependency-cycle",
        "undocumented-service",
    ]
    assert finding_badges.badge([]) is None


def test_map_elements_carry_the_badge_the_stylesheet_draws():
    nodes = [
        {"id": "hub", "kind": "service", "requests": 1, "error_ratio": 0.0},
        {"id": "web", "kind": "service", "requests": 1, "error_ratio": 0.0},
    ]
    edges = [
        {"client": "web", "server": "hub", "connection_type": "direct", "rps": 1.0,
         "error_ratio": 0.0, "p95_ms": 5.0},
    ]  # fmt: skip
    badges = {
        ("node", "hub"): {"count": 2, "worst": "warning"},
        ("edge", "web", "hub"): {"count": 1, "worst": "error"},
    }
    elements = {
        e["data"]["id"]: e["data"] for e in figures.map_elements(nodes, edges, badges=badges)
    }
    assert elements["hub"]["findings"] == 2 and elements["hub"]["finding_severity"] == "warning"
    assert elements["hub"]["badge"] == "hub \u2691 2"
    assert "findings" not in elements["web"]
    edge = elements[figures.edge_id("web", "hub", "direct")]
    assert (edge["findings"], edge["finding_severity"], edge["badge"]) == (1, "error", "\u2691 1")
    selectors = {rule["selector"]: rule["style"] for rule in figures.map_stylesheet()}
    assert selectors["node[findings > 0]"]["label"] == "data(badge)"
    assert selectors["edge[findings > 0]"]["target-label"] == "data(badge)"
    assert selectors['[finding_severity = "error"]']["text-border-color"] == figures.BAD


def test_the_panels_list_the_subjects_findings():
    view = {
        "nodes": [{"id": "hub", "kind": "service", "requests": 0, "errors": 0, "error_ratio": 0}],
        "edges": [],
    }
    found = [finding("undocumented-service", "hub", "service", "info", message="no contract")]
    text = texts(panels.node_panel(view, "hub", findings=found))
    assert "Open findings (1) severity rule message info undocumented-service no contract" in text
    assert "Open findings" not in texts(panels.node_panel(view, "hub"))
    edge = texts(panels.edge_panel(view, "web", "hub", [], findings=found))
    assert "No traffic on this edge" in edge and "undocumented-service" in edge


def test_hostile_subjects_stay_text_in_the_rows_and_the_callout():
    from dash import html

    from .conftest import HOSTILE
    from .tree import walk

    rows = governance.finding_rows([finding("r", HOSTILE, "service")])
    assert rows[0]["subject"] == HOSTILE  # ag-grid draws cell values as text
    notice = governance.callout(
        [waiver(1, "expiring", "2026-11-20T00:00:00+00:00", subject=HOSTILE)], NOW
    )
    assert HOSTILE in texts(notice)
    assert not [c for c in walk(notice) if isinstance(c, html.Img)]
