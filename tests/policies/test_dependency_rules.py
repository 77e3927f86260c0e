"""Forbidden dependencies: a pack of one's own with selectors by name, node kind and what the
catalog says (type, tag, system, lifecycle), on the sample; each rule's findings are compared
with the edges computed from the catalog and the rollups directly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clew import store
from clew.store import catalog, queries
from policies import run
from tests.conftest import SAMPLE_END_NS

PACK = """\
pack: platform
rules:
  - id: retail-does-not-call-payments
    check: forbidden-dependency
    severity: error
    options:
      caller: {system: [retail]}
      callee: {system: [payments]}
      because: retail pays through the hub's payment adapter only
  - id: website-calls-only-the-hub
    check: forbidden-dependency
    severity: warning
    options:
      caller: {type: [website]}
      callee: {kind: [service], name: "*-service"}
  - id: flask-calls-no-cache
    check: forbidden-dependency
    severity: info
    options:
      caller: {tag: [flask]}
      callee: {kind: [database], name: "session-*"}
  - id: nothing-depends-on-experimental
    check: forbidden-dependency
    severity: warning
    options:
      caller: {}
      callee: {lifecycle: [experimental]}
"""


@pytest.fixture(scope="module")
def landscape(full_sample_db):
    engine = store.open_engine(full_sample_db)
    with engine.connect() as conn:
        window = queries.window_between("24h", None, SAMPLE_END_NS)
        edges = queries.edge_totals(conn, window)
        kinds = {name: node.kind for name, node in queries.nodes(conn).items()}
        entities = {e["name"]: e for e in catalog.entities(conn)}
    engine.dispose()
    return edges, kinds, entities


@pytest.fixture(scope="module")
def found(full_sample_db, tmp_path_factory) -> dict[str, set[str]]:
    folder = tmp_path_factory.mktemp("packs")
    (folder / "platform.yaml").write_text(PACK)
    engine = store.open_engine(full_sample_db)
    window = queries.window_between("24h", None, SAMPLE_END_NS)
    now = datetime.fromtimestamp(SAMPLE_END_NS / 1e9, UTC)
    ruleset = run.rules(Path(folder))
    ruleset.rules = {k: r for k, r in ruleset.rules.items() if r.pack == "platform"}
    result = run.check_store(engine, ruleset, window, now, record=False)
    engine.dispose()
    by_rule: dict[str, set[str]] = {}
    for f in result.evaluation.findings:
        by_rule.setdefault(f.rule, set()).add(f.subject)
    return by_rule


def _edges(landscape, caller, callee) -> set[str]:
    edges, kinds, entities = landscape
    return {
        f"{e.client} → {e.server}"
        + (" (messaging)" if e.connection_type == "messaging_system" else "")
        for e in edges
        if caller(e.client, entities.get(e.client), kinds.get(e.client))
        and callee(e.server, entities.get(e.server), kinds.get(e.server))
    }


def _spec(entity, key):
    return entity.get(key) if entity else None


def test_by_system(found, landscape):
    expected = _edges(
        landscape,
        lambda n, e, k: e is not None and (e["system"] or "").endswith("retail"),
        lambda n, e, k: e is not None and (e["system"] or "").endswith("payments"),
    )
    assert expected  # the hub and the web shop pay through payments-api
    assert found["retail-does-not-call-payments"] == expected


def test_by_catalog_type_kind_and_name(found, landscape):
    expected = _edges(
        landscape,
        lambda n, e, k: _spec(e, "type") == "website",
        lambda n, e, k: k == "service" and n.endswith("-service"),
    )
    assert expected and found["website-calls-only-the-hub"] == expected


def test_by_tag(found, landscape):
    expected = _edges(
        landscape,
        lambda n, e, k: e is not None and "flask" in e["tags"],
        lambda n, e, k: k == "database" and n.startswith("session-"),
    )
    assert expected and found["flask-calls-no-cache"] == expected


def test_by_lifecycle(found, landscape):
    expected = _edges(
        landscape, lambda n, e, k: True, lambda n, e, k: _spec(e, "lifecycle") == "experimental"
    )
    assert expected == {"kafka/shipment-events → notification-service (messaging)"}
    assert found["nothing-depends-on-experimental"] == expected


def test_a_versioning_rule_counting_the_path_alone_finds_the_header_pinned_api(
    full_sample_db, tmp_path
):
    """The Orders API is pinned by an ``Api-Version`` header; an organisation that pins by the
    path alone finds its endpoints unversioned too, and the Payments API's (``/v2/``) still not."""
    folder = tmp_path / "packs"
    folder.mkdir()
    (folder / "paths-only.yaml").write_text(
        "pack: paths-only\nrules:\n"
        "  - {id: version-in-path, check: endpoint-versioned, severity: error,"
        " options: {schemes: [path]}}\n"
    )
    engine = store.open_engine(full_sample_db)
    ruleset = run.rules(folder)
    ruleset.rules = {k: r for k, r in ruleset.rules.items() if k == "version-in-path"}
    window = queries.window_between("24h", None, SAMPLE_END_NS)
    now = datetime.fromtimestamp(SAMPLE_END_NS / 1e9, UTC)
    result = run.check_store(engine, ruleset, window, now, record=False)
    engine.dispose()
    found = {f.subject: f.message for f in result.evaluation.findings}
    services = {subject.split(" ")[0] for subject in found}
    assert services == {"catalog-service", "order-service"}
    assert found["order-service POST /orders"].endswith("none in the path")
    (folder / "paths-only.yaml").write_text(
        "pack: paths-only\nrules:\n"
        "  - {id: version-in-path, check: endpoint-versioned, severity: error,"
        " options: {schemes: [paths]}}\n"
    )
    with pytest.raises(run.PolicyError, match="rule version-in-path: schemes must be some of"):
        run.rules(folder)
