"""The compliance reports: the model's figures from hand-made runs across two periods, and each
format (HTML, PDF, CSV, JSON, SARIF 2.1.0 against the official schema, JUnit XML)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pypdfium2
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from clew.cli import main
from clew.store import findings as store
from policies import reports
from policies.engine import Finding
from policies.reports import exports, junit, model, sarif

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)  # 2026-11-07 12:00, the default period's start
HOSTILE = "<img src=x onerror=alert(1)>"


def at(month: int, day: int, hour: int = 6) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def finding(rule: str, severity: str, subject: str, team: str, system: str, **more) -> dict:
    return Finding(
        rule=rule,
        severity=severity,
        subject_kind=more.pop("subject_kind", "operation"),
        subject=subject,
        message=more.pop("message", f"{rule} on {subject}"),
        team=team,
        system=system,
        pack=more.pop("pack", "governance"),
        **more,
    ).as_dict()


A = finding("R1", "error", "GET /payments", "payments", "checkout")
B = finding("R2", "warning", "POST /refunds", "payments", "billing")
C = finding("R3", "info", "tracking-events", "shipping", "tracking", subject_kind="contract")
D = finding("R1", "error", "GET /parcels", "shipping", "tracking")
E = finding("R4-docs", "hint", "GET /payments/{id}", "payments", "checkout")
F = finding(
    "R1",
    "error",
    HOSTILE,
    "shipping",
    "tracking",
    source="contracts/tracking.yaml",
    line=12,
    column=5,
    path=("paths", "/parcels", "get"),
)
PREVIOUS_COVERAGE = {("payments", "checkout"): [10, 2], ("shipping", "tracking"): [10, 2]}
#: The latest run's coverage: payments 30 evaluations, 6 failing (80.0: B); shipping 5, 3
#: failing (40.0: F); systems billing 10/1 (90.0: A), checkout 20/5 (75.0: C), tracking F.
LATEST_COVERAGE = {
    ("payments", "checkout"): [20, 5],
    ("payments", "billing"): [10, 1],
    ("shipping", "tracking"): [5, 3],
}


def govern(engine: Engine) -> Engine:
    """Four runs: two in the period before (A, B, C, D open), two in this one (D resolved; E
    and F new); waivers: W1 on C expired on 20 November, W2 on B active, W3 on R4* expiring
    within 14 days, W4 revoked."""
    with engine.begin() as conn:
        store.record_run(conn, [A, B, C, D], now=at(10, 20), rules=4, coverage=PREVIOUS_COVERAGE)
        store.record_run(conn, [A, B, C, D], now=at(11, 1), rules=4, coverage=PREVIOUS_COVERAGE)
        store.add_waiver(
            conn,
            rule="R3",
            subject="tracking-*",
            reason="replaced in Q1",
            approver="cto",
            expires_at=at(11, 20, 0),
            now=at(11, 2),
        )
        store.record_run(conn, [A, B, C, E], now=at(11, 10), rules=4, coverage=PREVIOUS_COVERAGE)
        store.add_waiver(
            conn,
            rule="R2",
            subject="POST /refunds",
            reason="legacy partner",
            approver="ciso",
            expires_at=at(3, 1, 0).replace(year=2027),
            now=at(11, 15),
        )
        revoked = store.add_waiver(
            conn,
            rule="R9",
            subject="*",
            reason="trial",
            approver="ciso",
            expires_at=at(12, 31),
            now=at(11, 15),
        )
        store.revoke_waiver(conn, revoked, at(11, 16))
        store.add_waiver(
            conn,
            rule="R4*",
            subject="*",
            reason="docs sprint",
            approver="head of api",
            expires_at=at(12, 15, 0),
            now=at(12, 1, 0),
        )
        store.record_run(conn, [A, B, C, E, F], now=at(12, 1), rules=4, coverage=LATEST_COVERAGE)
        store.reopen_expired(conn, NOW)
    return engine


@pytest.fixture
def governed(engine: Engine) -> Engine:
    """The governed store on SQLite, for the renderers."""
    return govern(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def governed_db(request, engine) -> Engine:
    """The governed store on SQLite and, when configured, PostgreSQL, for the model's figures."""
    return govern(engine if request.param == "sqlite" else request.getfixturevalue("pg_engine"))


def build(engine: Engine, **filters) -> reports.Report:
    with engine.connect() as conn:
        return reports.build(conn, now=NOW, **filters)


def test_counts_are_those_of_the_open_and_waived_findings(governed_db):
    report = build(governed_db)
    assert [(f["rule"], f["subject"], f["state"]) for f in report.findings] == [
        ("R1", HOSTILE, "open"),
        ("R1", "GET /payments", "open"),
        ("R2", "POST /refunds", "waived"),
        ("R3", "tracking-events", "open"),
        ("R4-docs", "GET /payments/{id}", "waived"),
    ]
    assert report.counts == {
        "rule": {"R1": 2, "R2": 1, "R3": 1, "R4-docs": 1},
        "severity": {"error": 2, "warning": 1, "info": 1, "hint": 1},
        "team": {"payments": 3, "shipping": 2},
        "system": {"checkout": 2, "tracking": 2, "billing": 1},
        "state": {"open": 3, "waived": 2},
    }
    assert report.last_run["rules"] == 4 and report.last_run["findings"] == 5
    waived = next(f for f in report.findings if f["rule"] == "R2")
    assert waived["waiver"]["reason"] == "legacy partner"


def test_trend_compares_the_last_run_of_each_period(governed_db):
    trend = build(governed_db).trend
    previous, current = trend["previous"], trend["current"]
    assert previous["start"] == SINCE - timedelta(days=30) and previous["end"] == SINCE
    assert previous["run"]["at"] == at(11, 1)
    assert (previous["open"], previous["waived"]) == (4, 0)
    assert previous["severity"] == {"error": 2, "warning": 1, "info": 1, "hint": 0}
    assert current["run"]["at"] == at(12, 1)
    assert (current["open"], current["waived"]) == (3, 2)
    assert current["severity"] == {"error": 2, "warning": 0, "info": 1, "hint": 0}
    assert {f["subject"] for f in current["findings"]} == {
        A["subject"],
        B["subject"],
        C["subject"],
        E["subject"],
        HOSTILE,
    }
    assert trend["change"] == {"open": -1, "waived": 2}
    assert [(f["subject"], f["first_seen_at"]) for f in trend["new"]] == [
        (HOSTILE, at(12, 1)),
        ("GET /payments/{id}", at(11, 10)),
    ]
    assert [(f["subject"], f["resolved_at"]) for f in trend["resolved"]] == [
        ("GET /parcels", at(11, 10))
    ]
    assert [(p["at"], p["open"], p["waived"]) for p in trend["series"]] == [
        (at(10, 20), {"error": 2, "warning": 1, "info": 1, "hint": 0}, 0),
        (at(11, 1), {"error": 2, "warning": 1, "info": 1, "hint": 0}, 0),
        (at(11, 10), {"error": 1, "warning": 1, "info": 0, "hint": 1}, 1),  # C waived by W1
        (at(12, 1), {"error": 2, "warning": 0, "info": 1, "hint": 0}, 2),  # B by W2, E by W3
    ]


def test_a_shorter_period_has_its_own_previous_period(governed_db):
    trend = build(governed_db, since=NOW - timedelta(days=10)).trend
    assert trend["current"]["run"]["at"] == at(12, 1)
    assert trend["previous"]["run"] is None  # 17-27 November: no run
    assert trend["previous"]["open"] == 0
    assert [f["subject"] for f in trend["new"]] == [HOSTILE]
    assert trend["resolved"] == []
    assert [p["at"] for p in trend["series"]] == [at(12, 1)]


def test_scorecards_grade_the_passing_share_of_the_latest_run(governed_db):
    cards = build(governed_db).scorecards
    assert [
        (c["name"], c["evaluated"], c["failing"], c["score"], c["grade"]) for c in cards["team"]
    ] == [
        ("payments", 30, 6, 80.0, "B"),
        ("shipping", 5, 3, 40.0, "F"),
    ]
    assert [(c["name"], c["score"], c["grade"]) for c in cards["system"]] == [
        ("billing", 90.0, "A"),
        ("checkout", 75.0, "C"),
        ("tracking", 40.0, "F"),
    ]
    shipping = cards["team"][1]
    assert shipping["open"] == {"error": 1, "warning": 0, "info": 1, "hint": 0}


@pytest.mark.parametrize(
    ("value", "letter"),
    [
        (100.0, "A"),
        (90.0, "A"),
        (89.9, "B"),
        (80.0, "B"),
        (70.0, "C"),
        (60.0, "D"),
        (59.9, "F"),
        (0.0, "F"),
        (None, None),
    ],
)
def test_grades(value, letter):
    assert model.grade(value) == letter


def test_waivers_carry_their_state_and_the_findings_they_waive(governed_db):
    waivers = build(governed_db).waivers
    assert [(w["rule"], w["state"], w["approver"], w["findings"]) for w in waivers] == [
        ("R3", "expired", "cto", 0),
        ("R4*", "expiring", "head of api", 1),
        ("R9", "revoked", "ciso", 0),
        ("R2", "active", "ciso", 1),
    ]
    assert waivers[1]["expires_at"] == at(12, 15, 0)
    assert waivers[1]["reason"] == "docs sprint"


def test_a_team_report_holds_that_team_alone(governed_db):
    report = build(governed_db, team="shipping")
    assert {f["team"] for f in report.findings} == {"shipping"}
    assert report.counts["state"] == {"open": 2, "waived": 0}
    assert [c["name"] for c in report.scorecards["team"]] == ["shipping"]
    assert [w["rule"] for w in report.waivers] == ["R3"]  # the only one matching its findings
    assert [p["open"]["error"] for p in report.trend["series"]] == [1, 1, 0, 1]
    assert build(governed_db, system="billing").counts["state"] == {"open": 0, "waived": 1}


def test_the_empty_store_says_no_evaluation_has_run(engine):
    report = build(engine)
    assert not report.evaluated and report.message == model.NO_RUN
    data = report.as_dict()
    assert json.loads(json.dumps(data))["findings"] == []
    assert data["trend"]["series"] == [] and data["trend"]["current"]["run"] is None
    page = reports.render(report, "html").decode()
    assert model.NO_RUN.split(":")[0] in page
    for fmt in ("csv", "json", "sarif", "junit"):
        assert reports.render(report, fmt)
    assert list(csv.reader(io.StringIO(reports.render(report, "csv").decode("utf-8-sig")))) == [
        list(exports.CSV_COLUMNS)
    ]
    assert ET.fromstring(reports.render(report, "junit")).get("tests") == "0"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_escapes_what_it_shows(governed):
    page = reports.render(build(governed), "html").decode()
    parsed = _Tags()
    parsed.feed(page)
    names = [tag for tag, _ in parsed.tags]
    assert "img" not in names and "script" not in names and "link" not in names
    assert names.count("svg") == 4  # by severity, by team, by rule, the trend
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and HOSTILE not in page
    assert HOSTILE in "".join(parsed.text)
    for _, attrs in parsed.tags:
        for value in attrs.values():
            assert "//" not in (value or ""), value
    assert "http:" not in page and "https:" not in page and "url(" not in page
    assert "@import" not in page


def test_csv_and_json_round_trip_the_counts(governed):
    report = build(governed)
    rows = list(csv.DictReader(io.StringIO(reports.render(report, "csv").decode("utf-8-sig"))))
    assert len(rows) == 5 and list(rows[0]) == list(exports.CSV_COLUMNS)
    assert {s: sum(r["severity"] == s for r in rows) for s in report.counts["severity"]} == (
        report.counts["severity"]
    )
    hostile = next(r for r in rows if r["subject"] == HOSTILE)
    assert (hostile["source"], hostile["line"], hostile["path"]) == (
        "contracts/tracking.yaml",
        "12",
        "paths//parcels/get",
    )
    waived = next(r for r in rows if r["rule"] == "R2")
    assert (waived["state"], waived["waiver_reason"]) == ("waived", "legacy partner")
    data = json.loads(reports.render(report, "json"))
    assert data["counts"] == report.counts
    assert len(data["findings"]) == 5
    assert data["trend"]["change"] == {"open": -1, "waived": 2}
    assert data["scorecards"]["team"][0]["grade"] == "B"


def schema_validator():
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


def test_sarif_of_the_store_validates_and_suppresses_the_waived(governed):
    log = json.loads(reports.render(build(governed), "sarif"))
    schema_validator().validate(log)
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "Clew" and driver["version"] == sarif.tool_version()
    assert [r["id"] for r in driver["rules"]] == ["R1", "R2", "R3", "R4-docs"]
    assert driver["rules"][3]["defaultConfiguration"] == {"level": "note"}
    results = run["results"]
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in results] == [
        ("R1", 0, "error"),
        ("R1", 0, "error"),
        ("R2", 1, "warning"),
        ("R3", 2, "note"),
        ("R4-docs", 3, "note"),
    ]
    hostile = results[0]
    assert hostile["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "contracts/tracking.yaml"},
        "region": {"startLine": 12, "startColumn": 5},
    }
    assert hostile["partialFingerprints"] == {sarif.FINGERPRINT_KEY: F["fingerprint"]}
    # No file: GitHub code scanning needs a physical location all the same.
    assert results[1]["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "landscape/operation/GET%20%2Fpayments"},
                "region": {"startLine": 1},
            },
            "logicalLocations": [
                {
                    "name": "GET /payments",
                    "fullyQualifiedName": "GET /payments",
                    "kind": "operation",
                }
            ],
        }
    ]
    assert all("physicalLocation" in r["locations"][0] for r in results)
    assert results[2]["suppressions"][0]["kind"] == "external"
    assert results[2]["suppressions"][0]["justification"] == "legacy partner"
    assert "suppressions" not in results[0] and "suppressions" not in results[3]


def test_sarif_and_junit_take_plain_findings_without_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = finding(
        "oas-operation-description",
        "warning",
        "GET /x",
        "t",
        "s",
        source=str(tmp_path / "api" / "open api.yaml"),
        line=3,
        column=1,
    )
    outside = finding(
        "no-http",
        "error",
        "payments",
        "t",
        "s",
        subject_kind="contract",
        source="/elsewhere/payments.yaml",
        line=1,
    )
    waived = {
        **finding("oas-tags", "hint", "GET /y", "t", "s"),
        "state": "waived",
        "waiver": {"reason": "generated", "approver": "me", "expires_at": "2027-01-01"},
    }
    rules = {
        "oas-operation-description": {
            "description": "Operations have a description.",
            "severity": "warning",
            "pack": "oas",
        },
        "no-http": {
            "description": "No plain-HTTP servers.",
            "severity": "error",
            "pack": "security",
        },
        "oas-tags": {"description": "Operations have tags.", "severity": "hint", "pack": "oas"},
        "unused-rule": {"description": "Found nothing.", "severity": "info", "pack": "oas"},
    }
    log = sarif.sarif([inside, outside, waived], rules)
    schema_validator().validate(log)
    results = log["runs"][0]["results"]
    uris = [
        r["locations"][0].get("physicalLocation", {}).get("artifactLocation", {}).get("uri")
        for r in results
    ]
    assert uris == [
        "api/open%20api.yaml",
        "file:///elsewhere/payments.yaml",
        "landscape/operation/GET%20%2Fy",
    ]
    assert results[1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert results[2]["suppressions"][0]["justification"] == "generated"
    ids = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert ids == ["no-http", "oas-operation-description", "oas-tags", "unused-rule"]
    assert [r["ruleIndex"] for r in results] == [1, 0, 2]

    document = ET.fromstring(junit.junit([inside, outside, waived], rules, group_by="pack"))
    suites = {s.get("name"): s for s in document.iter("testsuite")}
    assert sorted(suites) == ["oas", "security"]
    assert (suites["oas"].get("tests"), suites["oas"].get("failures")) == ("2", "1")
    assert suites["oas"].get("skipped") == "1"
    assert (document.get("tests"), document.get("failures")) == ("3", "2")
    failure = suites["security"].find("testcase/failure")
    assert failure.get("message") == "no-http on payments"
    assert "/elsewhere/payments.yaml:1" in failure.text


def test_junit_of_the_store_has_a_suite_per_rule(governed):
    document = ET.fromstring(reports.render(build(governed), "junit"))
    suites = {s.get("name"): s for s in document.iter("testsuite")}
    assert {
        n: (s.get("tests"), s.get("failures"), s.get("skipped")) for n, s in suites.items()
    } == {
        "R1": ("2", "2", "0"),
        "R2": ("1", "0", "1"),
        "R3": ("1", "1", "0"),
        "R4-docs": ("1", "0", "1"),
    }
    assert (document.get("tests"), document.get("failures"), document.get("skipped")) == (
        "5",
        "3",
        "2",
    )
    cases = [c.get("name") for c in suites["R1"].iter("testcase")]
    assert cases == [HOSTILE, "GET /payments"]  # sorted: "<" before "G"
    assert suites["R1"].find("testcase").get("classname") == "governance.R1"
    assert suites["R2"].find("testcase/skipped").get("message") == "waived: legacy partner"


def test_junit_keeps_to_what_xml_can_hold():
    odd = finding("R1", "error", "bad\x00name", "t", "s", message="bell\x07 and \ud800")
    document = ET.fromstring(junit.junit([odd], {}))
    case = document.find("testsuite/testcase")
    assert case.get("name") == "bad\ufffdname"
    assert case.find("failure").get("message") == "bell\ufffd and \ufffd"


def pages(pdf: bytes) -> list[np.ndarray]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [document[i].render(scale=0.5).to_numpy() for i in range(len(document))]
    finally:
        document.close()


def ink(image: np.ndarray) -> int:
    """The pixels that are not white."""
    return int((image[..., :3] < 240).any(axis=-1).sum())


def test_pdf_pages_are_drawn(governed):
    pdf = reports.render(build(governed), "pdf")
    assert pdf.startswith(b"%PDF-")
    drawn = pages(pdf)
    assert drawn and all(ink(page) > 2_000 for page in drawn)


def test_pdf_of_many_findings_runs_over_several_pages(engine):
    many = [
        finding(
            f"R{i % 7}",
            ("error", "warning", "info", "hint")[i % 4],
            f"GET /things/{i}",
            f"team-{i % 5}",
            f"system-{i % 3}",
        )
        for i in range(160)
    ]
    with engine.begin() as conn:
        store.record_run(conn, many, now=at(12, 1), rules=7, coverage={("team-0", "s"): [50, 9]})
    drawn = pages(reports.render(build(engine), "pdf"))
    assert len(drawn) > 2
    assert all(ink(page) > 2_000 for page in drawn)


def test_clew_report_writes_the_file_and_summarises_it(governed, tmp_path):
    url = governed.url.render_as_string(hide_password=False)
    out = tmp_path / "report.sarif"
    result = CliRunner().invoke(
        main, ["report", "--format", "sarif", "-o", str(out), "--db", url, "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {
        "format": "sarif",
        "output": str(out),
        "findings": 5,
        "bytes": out.stat().st_size,
    }
    assert len(json.loads(out.read_bytes())["runs"][0]["results"]) == 5
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--format",
            "csv",
            "-o",
            str(tmp_path / "r.csv"),
            "--db",
            url,
            "--team",
            "payments",
            "--since",
            "nonsense",
        ],
    )
    assert result.exit_code == 2 and "--since" in result.output
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--format",
            "csv",
            "-o",
            str(tmp_path / "r.csv"),
            "--db",
            url,
            "--team",
            "payments",
            "--since",
            "2d",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 findings" in result.output
