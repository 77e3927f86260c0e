"""Governance over HTTP on a copy of the sample: the JSON twins, waivers written and refused, the
report downloads, the page's callbacks and the map's badges.

The clock is the sample's end (``store.utcnow`` patched), so the sample's three waivers are
active, expiring soon and expired whatever the day the tests run.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime

import pytest

from clew import store
from clew.app import create_app
from console import ids

from ..conftest import SAMPLE_END_NS
from .test_http import call

GOV, MAP = ids.Governance, ids.ServiceMap
SAMPLE_NOW = datetime.fromtimestamp(SAMPLE_END_NS / 1e9, UTC)
ZOMBIE = ("zombie-endpoint", "payments-api POST /v2/refunds")
BREAKING = ("breaking-change", "Payments API@2.4.0")
WAIVER = {
    "rule": "zombie-endpoint",
    "subject": "payments-api POST /v2/refunds",
    "reason": "Partners move off /v2/refunds by January (PAY-88)",
    "approver": "lead.payments@shop.example",
    "expires": "2027-01-31",
}


@pytest.fixture
def sample_copy(sample_db, tmp_path) -> str:
    """A writable copy of the sample database."""
    path = tmp_path / "clew.db"
    shutil.copyfile(sample_db, path)
    return str(path)


@pytest.fixture
def app(sample_copy, monkeypatch):
    monkeypatch.setattr(store, "utcnow", lambda: SAMPLE_NOW)
    app = create_app({"DATABASE_URL": "sqlite:///" + sample_copy, "AUTH": False})
    yield app
    store.engine_of(app).dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def pairs(found: list[dict]) -> set[tuple[str, str]]:
    return {(f["rule"], f["subject"]) for f in found}


# --- The JSON twins -----------------------------------------------------------------------------


def test_findings_filter_by_team_severity_and_state(client):
    found = client.get("/api/findings").get_json()
    assert {ZOMBIE, BREAKING} <= pairs(found)
    assert {f["state"] for f in found} == {"open", "waived"}
    zombie = next(f for f in found if (f["rule"], f["subject"]) == ZOMBIE)
    assert zombie | {"id": 0, "fingerprint": ""} == zombie | {
        "id": 0,
        "fingerprint": "",
        "severity": "error",
        "subject_kind": "endpoint",
        "team": "team-payments",
        "system": "payments",
        "state": "open",
        "waiver_id": None,
        "first_seen_at": "2026-11-18T11:06:00+00:00",
    }
    payments = client.get("/api/findings?team=team-payments&severity=error").get_json()
    assert {f["team"] for f in payments} == {"team-payments"}
    assert {f["severity"] for f in payments} == {"error"}
    assert {ZOMBIE, BREAKING} <= pairs(payments)
    waived = client.get("/api/findings?state=waived").get_json()
    assert pairs(waived) == {("undocumented-service", "pos-api")}
    assert client.get("/api/findings?system=payments&state=resolved").get_json() == []


def test_findings_refuse_an_unknown_state_or_severity(client):
    bad_state = client.get("/api/findings?state=closed")
    assert bad_state.status_code == 400 and "closed" in bad_state.get_json()["error"]
    bad_severity = client.get("/api/findings?severity=fatal")
    assert bad_severity.status_code == 400
    assert bad_severity.get_json() == {
        "error": "severity must be one of error, warning, info, hint"
    }


def test_waivers_have_their_state_and_what_they_cover(client):
    waivers = {w["subject"]: w for w in client.get("/api/waivers").get_json()}
    assert {w["state"] for w in waivers.values()} == {"active", "expiring", "expired"}
    tills = waivers["pos-api"]
    assert tills["state"] == "active" and tills["findings"] == 1
    assert tills["covers"] == [
        {"rule": "undocumented-service", "subject": "pos-api", "state": "waived"}
    ]
    assert waivers["storefront-web → recommendation-service"]["state"] == "expiring"
    lapsed = waivers["order-service GET /orders/backorders/*"]
    assert lapsed["state"] == "expired" and lapsed["findings"] == 0
    assert lapsed["covers"] == [
        {
            "rule": "shadow-endpoint",
            "subject": "order-service GET /orders/backorders/{sku}",
            "state": "open",
        }
    ]


def test_a_created_waiver_waives_the_finding_it_covers_until_revoked(client):
    created = client.post("/api/waivers", json=WAIVER)
    assert created.status_code == 201
    waiver = created.get_json()
    assert waiver["state"] == "active" and waiver["origin"] == "console"
    assert waiver["expires_at"] == "2027-02-01T00:00:00+00:00"  # the end of that day
    assert waiver["findings"] == 1
    waived = client.get("/api/findings?state=waived").get_json()
    zombie = next(f for f in waived if (f["rule"], f["subject"]) == ZOMBIE)
    assert zombie["waiver_id"] == waiver["id"]
    assert ZOMBIE not in pairs(client.get("/api/findings?state=open").get_json())

    revoked = client.post(f"/api/waivers/{waiver['id']}/revoke")
    assert revoked.status_code == 200 and revoked.get_json() == {
        "id": waiver["id"],
        "revoked": True,
    }
    assert ZOMBIE in pairs(client.get("/api/findings?state=open").get_json())
    again = client.post(f"/api/waivers/{waiver['id']}/revoke")
    assert again.status_code == 404 and "no active waiver" in again.get_json()["error"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"reason": ""}, "reason is required (a non-empty string)"),
        ({"approver": None}, "approver is required (a non-empty string)"),
        ({"expires": "next tuesday"}, "expiry 'next tuesday' is not a date (YYYY-MM-DD)"),
        ({"expires": "2026-11-01"}, "is not after now"),
        ({"rule": "zombie-endpoints"}, "the rule 'zombie-endpoints' names no known rule"),
    ],
)
def test_bad_waivers_are_refused_with_a_message(client, change, error):
    response = client.post("/api/waivers", json=WAIVER | change)
    assert response.status_code == 400
    assert error in response.get_json()["error"]
    assert len(client.get("/api/waivers").get_json()) == 3  # nothing stored


def test_a_body_that_is_not_a_json_object_is_refused(client):
    response = client.post("/api/waivers", data="rule=x", content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json() == {"error": "the body must be a JSON object"}


def test_a_read_only_clew_refuses_waiver_changes(sample_copy):
    app = create_app({"DATABASE_URL": "sqlite:///" + sample_copy, "READ_ONLY": True, "AUTH": False})
    client = app.test_client()
    assert client.post("/api/waivers", json=WAIVER).status_code == 403
    refused = client.post("/api/waivers/1/revoke")
    assert refused.status_code == 403 and "read-only" in refused.get_json()["error"]
    assert [w["revoked_at"] for w in client.get("/api/waivers").get_json()] == [None] * 3
    store.engine_of(app).dispose()


def test_the_governance_document_is_the_report_model(client):
    report = client.get("/api/governance?team=team-payments").get_json()
    assert report["filters"] == {"team": "team-payments", "system": None}
    assert report["evaluated"] is True
    assert {f["team"] for f in report["findings"]} == {"team-payments"}
    assert {ZOMBIE, BREAKING} <= pairs(report["findings"])
    assert report["counts"]["severity"]["error"] == sum(
        1 for f in report["findings"] if f["severity"] == "error"
    )
    (card,) = report["scorecards"]["team"]
    assert card["name"] == "team-payments" and card["grade"] in "ABCDF"
    assert [s["run"] for s in report["trend"]["series"]] == [report["last_run"]["id"]]


# --- Report downloads ---------------------------------------------------------------------------


def test_reports_download_with_their_type_and_file_name(client):
    expected = {
        "html": ("text/html; charset=utf-8", "html", b"<!DOCTYPE html"),
        "pdf": ("application/pdf", "pdf", b"%PDF-"),
        "csv": ("text/csv; charset=utf-8", "csv", "\ufefffingerprint,rule".encode()),
        "json": ("application/json", "json", b"{"),
        "sarif": ("application/sarif+json", "sarif", b"{"),
        "junit": ("application/xml; charset=utf-8", "xml", b"<?xml"),
    }
    for fmt, (media_type, extension, start) in expected.items():
        response = client.get(f"/reports/governance.{fmt}?team=team-payments")
        assert response.status_code == 200, fmt
        assert response.headers["Content-Type"] == media_type
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="clew-governance-team-payments.{extension}"'
        )
        assert response.data.lstrip().upper().startswith(start.upper()), fmt
    rows = list(csv.DictReader(io.StringIO(client.get("/reports/governance.csv?system=payments")
                                          .data.decode("utf-8-sig"))))  # fmt: skip
    assert {r["system"] for r in rows} == {"payments"} and ZOMBIE in pairs(rows)
    sarif = json.loads(client.get("/reports/governance.sarif").data)
    assert sarif["version"] == "2.1.0"
    assert client.get("/reports/governance.docx").status_code == 404


# --- The page's callbacks -----------------------------------------------------------------------


def refresh(client, state: dict) -> dict:
    return call(
        client,
        f"{GOV.FINDINGS}.rowData",
        {f"{GOV.STATE}.data": state, f"{GOV.VERSION}.data": 0},
    )


def test_the_page_shows_the_findings_the_callout_and_the_waivers(client):
    out = refresh(client, {})
    rows = out[GOV.FINDINGS]["rowData"]
    assert {ZOMBIE, BREAKING} <= pairs(rows)
    assert rows[0]["severity"] == "error"
    assert out[GOV.SUMMARY]["children"].startswith("Last evaluated 2026-11-18 11:06 UTC:")
    callout = json.dumps(out[GOV.CALLOUT]["children"], ensure_ascii=False)
    assert "1 waiver expiring soon" in callout
    assert "edge-latency-p99 on storefront-web \u2192 recommendation-service" in callout
    waivers = {w["subject"]: w["state"] for w in out[GOV.WAIVERS]["rowData"]}
    assert waivers["pos-api"] == "active"
    assert waivers["storefront-web \u2192 recommendation-service"] == "expiring soon"
    rule_bars = out[GOV.BY_RULE]["figure"]["data"]
    assert "zombie-endpoint" in {name for trace in rule_bars for name in trace["y"]}
    assert [o["value"] for o in out[GOV.TEAM]["options"]][:2] == [
        "team-logistics",
        "team-merchandising",
    ]
    assert out[GOV.CREATE]["disabled"] is False


def test_the_page_filters_by_team_severity_and_state(client):
    out = refresh(client, {"team": "team-payments", "severity": "error"})
    rows = out[GOV.FINDINGS]["rowData"]
    assert {(r["team"], r["severity"]) for r in rows} == {("team-payments", "error")}
    assert {ZOMBIE, BREAKING} <= pairs(rows)
    links = json.dumps(out[GOV.REPORTS]["children"])
    assert "/reports/governance.pdf?team=team-payments" in links
    waived = refresh(client, {"state": "waived"})[GOV.FINDINGS]["rowData"]
    assert pairs(waived) == {("undocumented-service", "pos-api")}


def create(client, **fields) -> dict:
    inputs = {f"{GOV.CREATE}.n_clicks": 1}
    state = {
        f"{GOV.RULE}.value": fields.get("rule"),
        f"{GOV.SUBJECT}.value": fields.get("subject"),
        f"{GOV.REASON}.value": fields.get("reason"),
        f"{GOV.APPROVER}.value": fields.get("approver"),
        f"{GOV.EXPIRES}.value": fields.get("expires"),
        f"{GOV.VERSION}.data": 0,
    }
    return call(client, f"{GOV.FORM_MESSAGE}.children", inputs, state)


def test_the_form_creates_a_waiver_or_says_what_is_wrong(client):
    refused = create(client, **(WAIVER | {"approver": ""}))
    assert "Not created: a waiver needs an approver." in json.dumps(refused)
    assert GOV.VERSION not in refused  # nothing to read again
    made = create(client, **WAIVER)
    assert "Waiver #4 created; it waives 1 finding." in json.dumps(made)
    assert made[GOV.VERSION]["data"] == 1
    out = refresh(client, {"state": "waived"})
    assert ZOMBIE in pairs(out[GOV.FINDINGS]["rowData"])
    assert "payments-api POST /v2/refunds" in {w["subject"] for w in out[GOV.WAIVERS]["rowData"]}


def test_selecting_a_finding_fills_in_the_form(client):
    selected = [{"id": 1, "rule": "undocumented-service", "subject": "[edge] x"}]
    out = call(client, f"{GOV.RULE}.value", {f"{GOV.FINDINGS}.selectedRows": selected})
    assert out[GOV.RULE]["value"] == "undocumented-service"
    assert out[GOV.SUBJECT]["value"] == "[[]edge] x"


def test_revoking_the_selected_waiver(client):
    inputs = {f"{GOV.REVOKE}.n_clicks": 1}
    selected = {f"{GOV.WAIVERS}.selectedRows": [{"id": 1}], f"{GOV.VERSION}.data": 2}
    out = call(client, f"{GOV.REVOKE_MESSAGE}.children", inputs, selected)
    assert out[GOV.REVOKE_MESSAGE]["children"] == (
        "Waiver #1 revoked: its findings are open again."
    )
    assert out[GOV.VERSION]["data"] == 3
    assert ("undocumented-service", "pos-api") in pairs(
        client.get("/api/findings?state=open").get_json()
    )
    none = call(client, f"{GOV.REVOKE_MESSAGE}.children", inputs, {})
    assert none[GOV.REVOKE_MESSAGE]["children"] == "Select a waiver in the list first."


# --- The map's badges ---------------------------------------------------------------------------


def test_the_map_badges_nodes_and_edges_and_its_panels_list_the_findings(client):
    inputs = {f"{MAP.STATE}.data": {"window": "all"}}
    elements = call(client, f"{MAP.GRAPH}.elements", inputs)[MAP.GRAPH]["elements"]
    data = {e["data"]["id"]: e["data"] for e in elements}
    open_findings = client.get("/api/findings?state=open").get_json()
    on_payments = [
        f
        for f in open_findings
        if f["subject"].startswith("payments-api ") or f["subject"] == "Payments API@2.4.0"
    ]
    assert data["payments-api"]["findings"] == len(on_payments)
    assert data["payments-api"]["finding_severity"] == "error"
    assert data["payments-api"]["badge"] == f"payments-api \u2691 {len(on_payments)}"
    # the cycle and the undocumented service on the hub; pos-api's finding is waived
    assert data["integration-hub"]["findings"] == 2
    assert data["integration-hub"]["finding_severity"] == "warning"
    assert "findings" not in data["pos-api"]
    edge = next(
        d
        for d in data.values()
        if (d.get("source"), d.get("target")) == ("shop-edge", "storefront-web")
    )
    assert (edge["findings"], edge["finding_severity"]) == (2, "error")

    panel = call(
        client,
        f"{MAP.PANEL}.children",
        {f"{MAP.SELECTION}.data": {"node": "payments-api"}, f"{MAP.STATE}.data": {"window": "all"}},
    )
    text = json.dumps(panel[MAP.PANEL]["children"])
    assert f"Open findings ({len(on_payments)})" in text
    assert "zombie-endpoint" in text and "breaking-change" in text


def test_the_filters_write_the_url_keeping_the_window(client):
    inputs = {
        f"{GOV.TEAM}.value": "team-payments",
        f"{GOV.SYSTEM}.value": None,
        f"{GOV.SEVERITY}.value": "error",
        f"{GOV.FINDING_STATE}.value": None,
    }
    out = call(client, f"{GOV.STATE}.data", inputs, {f"{GOV.STATE}.data": {"window": "all"}})
    assert out[ids.PAGE_URL]["search"] == "?window=all&team=team-payments&severity=error"
    assert out[GOV.STATE]["data"] == {"window": "all", "team": "team-payments", "severity": "error"}
