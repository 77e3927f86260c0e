"""``clew check`` on contract files (as ``spectral lint`` gates a contract in CI) and on the
store (recording runs), its formats and exit codes, and ``clew waivers``."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clew import store
from clew.cli import main
from clew.store import findings as stored

PETSTORE = """\
openapi: 3.0.3
info:
  title: Pets
  version: 1.0.0
  description: Pets for sale.
  contact: {name: Pet team, url: https://pets.example, email: pets@pets.example}
servers:
  - url: http://pets.example/v1
tags:
  - name: pets
    description: The pets.
paths:
  /pets:
    get:
      operationId: listPets
      summary: List the pets
      description: Every pet for sale.
      tags: [pets]
      security: [{key: []}]
      responses:
        '200': {description: The pets.}
        '429': {description: Too many requests.}
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Key}
"""


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def petstore(tmp_path) -> Path:
    path = tmp_path / "pets.yaml"
    path.write_text(PETSTORE)
    return path


def test_a_contract_file_is_checked_with_line_and_column_and_fails_at_the_severity(petstore):
    result = _invoke("check", str(petstore), "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    http = [f for f in data["findings"] if f["rule"] == "owasp-no-http-servers"]
    assert len(http) == 1
    (finding,) = http
    assert finding["source"] == str(petstore) and finding["subject"] == "Pets@1.0.0"
    assert (finding["line"], finding["severity"], finding["state"]) == (8, "error", "open")
    assert data["counts"]["error"] >= 1 and "run" not in data
    # The severity gate: an error fails at the default (error), and so at warning.
    assert _invoke("check", str(petstore)).exit_code == 1
    assert _invoke("check", str(petstore), "--fail-on", "warning").exit_code == 1


def test_a_clean_contract_passes(petstore):
    petstore.write_text(PETSTORE.replace("http://pets.example", "https://pets.example"))
    result = _invoke("check", str(petstore), "--pack", "security", "--pack", "versioning")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("0 open findings")


def test_a_waivers_file_waives_what_it_covers_in_file_mode(petstore, tmp_path):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - rule: owasp-no-http-*\n"
        "    subject: Pets@*\n"
        "    reason: TLS ends at the load balancer\n"
        "    approver: board@pets.example\n"
        "    expires: 2999-01-01\n"
    )
    result = _invoke(
        "check", str(petstore), "--waivers", str(waivers), "--format", "json", "--pack", "security"
    )
    data = orjson.loads(result.stdout)
    (finding,) = [f for f in data["findings"] if f["rule"] == "owasp-no-http-servers"]
    assert finding["state"] == "waived"
    assert finding["waiver"]["approver"] == "board@pets.example"
    assert data["counts"]["waived"] == 1
    assert result.exit_code == 0, result.output  # nothing open at error or above


def test_sarif_and_junit_outputs(petstore, tmp_path):
    out = tmp_path / "out.sarif"
    result = _invoke(
        "check", str(petstore), "--format", "sarif", "-o", str(out), "--fail-on", "never"
    )
    assert result.exit_code == 0, result.output
    log = orjson.loads(out.read_bytes())
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    rules = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rules
    assert any(
        r["ruleId"] == "owasp-no-http-servers"
        and r["locations"][0]["physicalLocation"]["region"]["startLine"] == 8
        for r in results
    )
    junit = _invoke("check", str(petstore), "--format", "junit", "--fail-on", "never")
    root = ET.fromstring(junit.stdout)
    failures = sum(int(s.get("failures")) for s in root.iter("testsuite"))
    assert failures == len(results)


def test_unusable_input_exits_2_naming_the_file_position_and_reason(tmp_path, petstore):
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.0.3\ninfo: {title: x\npaths: {}\n")
    result = _invoke("check", str(broken))
    assert result.exit_code == 2
    assert str(broken) in result.output and "line" in result.output
    missing = _invoke("check", str(tmp_path / "nowhere.yaml"))
    assert missing.exit_code == 2 and "no such file" in missing.output
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "mine.yaml").write_text(
        "pack: mine\nrules:\n  - {id: x, check: nope, severity: error}\n"
    )
    bad = _invoke("check", str(petstore), "--packs", str(packs))
    assert bad.exit_code == 2
    assert f"{packs / 'mine.yaml'}: rule x: no check named 'nope'" in bad.output


def test_a_users_pack_replaces_a_builtin_rule(tmp_path, petstore):
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "ours.yaml").write_text(
        "pack: ours\nrules:\n"
        "  - {id: owasp-no-http-servers, check: owasp-no-http-servers, severity: hint}\n"
    )
    result = _invoke(
        "check", str(petstore), "--packs", str(packs), "--format", "json", "--fail-on", "never"
    )
    (finding,) = [
        f for f in orjson.loads(result.stdout)["findings"] if f["rule"] == "owasp-no-http-servers"
    ]
    assert finding["severity"] == "hint"


def test_checking_the_store_records_runs_and_waivers_apply(sample_db, tmp_path):
    db = tmp_path / "clew.db"
    shutil.copy(sample_db, db)
    with store.open_engine(str(db)).connect() as conn:
        recorded = stored.findings(conn)
    first = _invoke("check", "--db", str(db), "--since", "30d", "--json", "--fail-on", "never")
    assert first.exit_code == 0, first.output
    data = orjson.loads(first.stdout)
    zombie = next(f for f in data["findings"] if f["rule"] == "zombie-endpoint")
    assert zombie["subject"] == "payments-api POST /v2/refunds"
    # The demo recorded a run at the sample's end. Now, long after it, the last hour holds no
    # traffic: the service-level findings are resolved, and nothing else changes.
    service_levels = [f for f in recorded if f["pack"] == "service-levels"]
    assert data["run"]["resolved"] == len(service_levels)
    assert data["run"]["opened"] == 0
    assert data["run"]["findings"] == len(data["findings"]) == len(recorded) - len(service_levels)
    added = _invoke(
        "waivers",
        "add",
        "--db",
        str(db),
        "--rule",
        "zombie-endpoint",
        "--subject",
        "payments-api POST /v2/refunds",
        "--reason",
        "partners move in January",
        "--approver",
        "board",
        "--expires",
        "2999-12-31",
        "--json",
    )
    assert added.exit_code == 0, added.output
    assert orjson.loads(added.stdout)["findings"] == 1
    second = orjson.loads(
        _invoke("check", "--db", str(db), "--since", "30d", "--json", "--fail-on", "never").stdout
    )
    zombie = next(f for f in second["findings"] if f["rule"] == "zombie-endpoint")
    assert zombie["state"] == "waived" and zombie["waiver"]["reason"].startswith("partners")
    listed = orjson.loads(_invoke("waivers", "list", "--db", str(db), "--json").stdout)
    assert {(w["rule"], w["state"], w["findings"]) for w in listed} >= {
        ("zombie-endpoint", "active", 1)
    }
    revoked = _invoke("waivers", "revoke", str(orjson.loads(added.stdout)["id"]), "--db", str(db))
    assert revoked.exit_code == 0
    third = orjson.loads(
        _invoke("check", "--db", str(db), "--since", "30d", "--json", "--fail-on", "never").stdout
    )
    zombie = next(f for f in third["findings"] if f["rule"] == "zombie-endpoint")
    assert zombie["state"] == "open"


def test_a_spectral_ruleset_is_applied_with_its_own_rules_and_severities(petstore):
    ruleset = Path(__file__).parent / "data" / "team.spectral.yaml"
    petstore.write_text(PETSTORE.replace("operationId: listPets", "operationId: list_pets"))
    result = _invoke(
        "check", str(petstore), "--ruleset", str(ruleset), "--format", "json", "--fail-on", "never"
    )
    assert result.exit_code == 0, result.output
    found = {f["rule"]: f for f in orjson.loads(result.stdout)["findings"]}
    camel = found["operation-id-camel"]
    assert (camel["severity"], camel["pack"], camel["line"]) == ("error", "team.spectral", 15)
    assert "operation-tags" not in found  # turned off by the ruleset
    # Its rules gate like any other: operation-id-camel is an error.
    assert _invoke("check", str(petstore), "--ruleset", str(ruleset)).exit_code == 1


def test_the_worker_runs_a_check_job_and_records_its_run(sample_db, tmp_path):
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy import text

    from clew import pull_cli

    db = tmp_path / "clew.db"
    shutil.copy(sample_db, db)
    config = tmp_path / "worker.toml"
    config.write_text('[[check]]\nevery = "1h"\nsince = "30d"\n')
    (job,) = pull_cli.load_config(config)
    assert (job.kind, job.every_s, job.since, job.packs) == ("check", 3600.0, "30d", None)
    engine = store.open_engine(str(db))
    reports, done = [], threading.Event()

    def emit(job, report):
        reports.append(report)
        done.set()

    scheduler = pull_cli.build_scheduler(engine, [job], BackgroundScheduler, emit)
    scheduler.start()
    try:
        assert done.wait(30)
    finally:
        scheduler.shutdown()
    (report,) = reports
    assert report.problems == [] and report.rules > 40 and report.findings > 10
    assert report.findings == report.open + report.waived
    assert pull_cli.summary(report).startswith(f"check policies: {report.rules} rules,")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM policy_runs")).scalar_one() == 2
    engine.dispose()


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        (
            "waivers:\n  - {rule: r, subject: s, reason: x, approver: a}\n",
            "waivers[0]: expires required",
        ),
        (
            "waivers:\n  - {rule: r, subject: s, reason: x, approver: a, expires: soon}\n",
            "waivers[0]: expiry 'soon' is not a date",
        ),
        (
            "waivers:\n  - {rule: r, subject: s, reason: ' ', approver: a, expires: 2030-01-01}\n",
            "waivers[0]: reason must be non-empty text",
        ),
        (
            "waivers:\n  - {rule: r, subject: s, reason: x, approver: a, expires: 2030-01-01,"
            " ticket: 7}\n",
            "waivers[0]: unknown keys ['ticket']",
        ),
        ("- rule: r\n", "a mapping with one key, 'waivers'"),
        ("waivers: [\n", "line"),
    ],
)
def test_a_waivers_file_that_cannot_be_used_names_the_file_and_waiver(
    tmp_path, petstore, text, fault
):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(text)
    result = _invoke("check", str(petstore), "--waivers", str(waivers))
    assert result.exit_code == 2
    assert f"{waivers}: " in result.output and fault in result.output
    loaded = _invoke("waivers", "load", str(waivers), "--db", str(tmp_path / "clew.db"))
    assert loaded.exit_code == 2 and fault in loaded.output


def test_a_waiver_for_a_rule_that_does_not_exist_is_refused(tmp_path):
    result = _invoke(
        "waivers",
        "add",
        "--db",
        str(tmp_path / "clew.db"),
        "--rule",
        "zombie-endpoints",
        "--subject",
        "*",
        "--reason",
        "r",
        "--approver",
        "a",
        "--expires",
        "2999-01-01",
    )
    assert result.exit_code == 2
    assert "the rule 'zombie-endpoints' names no known rule" in result.output
