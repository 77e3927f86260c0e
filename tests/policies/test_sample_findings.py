"""Every built-in pack over the sample landscape (at the demo's size) finds exactly what the
sample plants: the golden file holds each finding (regenerated only with ``--regen-golden``),
and each rule's findings are checked against the manifest's planted problems and their
consequences, so that a finding the sample does not explain fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import orjson
import pytest
from sqlalchemy import text

from clew import store
from clew.store import findings as stored
from clew.store import queries
from policies import run
from tests.conftest import SAMPLE_END_NS

GOLDEN = Path(__file__).parent / "data" / "sample_findings.golden.json"
NOW = datetime.fromtimestamp(SAMPLE_END_NS / 1e9, UTC)


@pytest.fixture(scope="module")
def found(full_sample_db) -> list[dict]:
    engine = store.open_engine(full_sample_db)
    window = queries.window_between("24h", None, SAMPLE_END_NS)
    result = run.check_store(engine, run.rules(), window, NOW, record=False)
    engine.dispose()
    keys = (
        "rule",
        "severity",
        "subject_kind",
        "subject",
        "message",
        "path",
        "line",
        "team",
        "system",
    )
    return [{k: f.as_dict()[k] for k in keys} for f in result.evaluation.findings]


@pytest.fixture(scope="module")
def full_manifest(full_sample_db) -> dict:
    from clew import demo

    engine = store.open_engine(full_sample_db)
    (folder,) = demo.sample_dir(engine).glob("sample-*")
    engine.dispose()
    return orjson.loads((folder / "manifest.json").read_bytes())


@pytest.fixture(scope="module")
def graph(full_sample_db) -> nx.DiGraph:
    engine = store.open_engine(full_sample_db)
    with engine.connect() as conn:
        edges = queries.edge_totals(conn, queries.Window())
    engine.dispose()
    return nx.DiGraph([(e.client, e.server) for e in edges])


def _by_rule(found: list[dict], rule: str) -> set[str]:
    return {f["subject"] for f in found if f["rule"] == rule}


def test_the_findings_are_the_golden_ones(found, request):
    if request.config.getoption("--regen-golden"):
        GOLDEN.write_bytes(orjson.dumps(found, option=orjson.OPT_INDENT_2) + b"\n")
        pytest.fail(f"{GOLDEN} written: review its diff, then run again without --regen-golden")
    assert found == orjson.loads(GOLDEN.read_bytes())


def test_drift_and_versioning_find_the_planted_endpoints(found, full_manifest):
    endpoints = full_manifest["endpoint_statuses"]["endpoints"]

    def planted(status: str) -> set[str]:
        return {
            f"{e['service']} {e['method']} {e['route']}" for e in endpoints if e["status"] == status
        }

    assert (
        _by_rule(found, "zombie-endpoint") == planted("zombie") == {"payments-api POST /v2/refunds"}
    )
    assert _by_rule(found, "orphan-endpoint") == planted("orphan")
    assert _by_rule(found, "shadow-endpoint") == planted("shadow")
    assert _by_rule(found, "endpoint-versioned") == planted("unversioned")
    (zombie,) = [e for e in endpoints if e["status"] == "zombie"]
    (message,) = [f["message"] for f in found if f["rule"] == "zombie-endpoint"]
    assert f"{zombie['calls']:,} calls" in message and "sunset 2026-06-30 (passed)" in message
    # Services with no contract at all, each once.
    documented = {
        f["service"] for f in full_manifest["contracts"]["files"] if f["kind"] == "openapi"
    }
    services = set(full_manifest["services"]) - documented
    assert _by_rule(found, "undocumented-service") == {
        s
        for s in services
        if s not in ("notification-service",)  # consumes only: no HTTP
    }


def test_contract_quality_and_security_find_the_planted_contract_problems(found, full_manifest):
    """The Catalog API is open (no security, plain HTTP, no rate limit); every other contract is
    clean under the 70-odd contract rules."""
    packs = {"contract-quality", "security", "versioning"}
    rules = {r.id for r in run.rules().rules.values() if r.pack in packs}
    contract_findings = sorted(
        (f["rule"], f["subject"], f["message"])
        for f in found
        if f["rule"] in rules and f["subject_kind"] in ("contract", "operation")
    )
    planted = full_manifest["contract_findings"]
    assert [(r, s) for r, s, _ in contract_findings] == sorted(
        (p["rule"], p["contract"]) for p in planted
    )
    for p in planted:
        assert any(
            r == p["rule"] and s == p["contract"] and (p["operation"] or "") in message
            for r, s, message in contract_findings
        ), p


def test_the_breaking_change_names_the_consumers_it_breaks(found, full_manifest):
    diff = full_manifest["contracts"]["diff"]
    (finding,) = [f for f in found if f["rule"] == "breaking-change"]
    assert finding["subject"] == diff["new_ref"]
    (change,) = [c for c in diff["changes"] if c["breaking"]]
    assert change["id"] in finding["message"]
    for consumer in change["consumers"]:
        assert f"{consumer['name']} ({consumer['calls']:,} calls)" in finding["message"]


def test_dependency_rules_find_the_planted_undeclared_unused_and_cycle(found, full_manifest):
    catalog = full_manifest["catalog"]
    undeclared = catalog["undeclared_dependency"]
    assert _by_rule(found, "undeclared-dependency") == {
        f"{undeclared['client']} → {undeclared['server']}"
    }
    assert _by_rule(found, "unused-dependency") == {
        f"{d['client']} → {d['server']}" for d in catalog["declared_unobserved"]
    }
    (cycle,) = _by_rule(found, "dependency-cycle")
    members = cycle.split(" → ")
    assert members[0] == members[-1] and set(members) == set(full_manifest["cycle"])
    assert not _by_rule(found, "frontend-calls-no-database")
    assert not _by_rule(found, "no-calls-into-experimental")


def test_service_levels_find_the_failing_and_slow_edges_and_only_what_leads_to_them(
    found, full_manifest, graph
):
    failing, slow = full_manifest["failing_edge"], full_manifest["slow_edge"]
    failing_edge = f"{failing['client']} → {failing['server']}"
    slow_edge = f"{slow['client']} → {slow['server']}"
    assert failing_edge in _by_rule(found, "edge-error-ratio")
    assert slow_edge in _by_rule(found, "edge-latency-p99")

    def leads_to(node: str, edge: dict) -> bool:
        """``node`` is the edge's caller or callee, or calls its caller through others: its
        errors or its slowness are the planted edge's, passed up the chain."""
        return node in (edge["client"], edge["server"]) or nx.has_path(graph, node, edge["client"])

    for rule, planted in (("edge-error-ratio", failing), ("edge-latency-p99", slow)):
        for subject in _by_rule(found, rule):
            _, server = subject.split(" → ")
            assert leads_to(server, planted), (rule, subject)
    for rule, planted in (("endpoint-error-ratio", failing), ("endpoint-latency-p99", slow)):
        for subject in _by_rule(found, rule):
            assert leads_to(subject.split(" ")[0], planted), (rule, subject)


def test_the_sample_waivers_waive_until_they_expire(full_sample_db, full_manifest):
    """The demo's recorded run: the active and the expiring waiver waive their findings, the
    expired one's finding is open."""
    waivers = {w["rule"]: w for w in full_manifest["waivers"]["waivers"]}
    engine = store.open_engine(full_sample_db)
    with engine.connect() as conn:
        rows = {(f["rule"], f["subject"]): f for f in stored.findings(conn)}
        in_force = stored.list_waivers(conn)
        runs = conn.execute(text("SELECT count(*) FROM policy_runs")).scalar_one()
    engine.dispose()
    assert runs == 1
    assert rows[("undocumented-service", "pos-api")]["state"] == "waived"
    assert rows[("edge-latency-p99", waivers["edge-latency-p99"]["subject"])]["state"] == ("waived")
    assert rows[("shadow-endpoint", "order-service GET /orders/backorders/{sku}")]["state"] == (
        "open"
    )
    states = {w["rule"]: stored.waiver_state(w, NOW, timedelta(days=14)) for w in in_force}
    assert states == {
        "undocumented-service": "active",
        "edge-latency-p99": "expiring",
        "shadow-endpoint": "expired",
    }
