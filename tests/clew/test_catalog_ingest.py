"""A Backstage catalog through ``clew ingest``: entities, declared relations and API definitions
stored, an API's OpenAPI definition read as a contract version, and a changed file's records
replacing what it declared before."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import text

from clew.pipeline import ingest
from clew.store import catalog, contracts
from tests.conftest import corpus

COMPONENT = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: service
  lifecycle: {lifecycle}
  owner: {owner}
  providesApis: [orders-api]
  dependsOn: ['resource:orders-db']
"""
API = """\
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: orders-api
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  definition:
    $text: ./orders.yaml
"""
SPEC = """\
openapi: 3.0.3
info: {title: Orders, version: '1'}
paths:
  /orders/{id}:
    get: {responses: {'200': {description: ok}}}
"""


def test_the_corpus_catalog_is_stored_with_its_inline_contract(engine, registry):
    result = ingest(engine, [corpus() / "backstage"], registry, worker=False)
    assert (result.files, result.quarantined, result.problems) == (5, 0, [])
    with engine.connect() as conn:
        refs = {e["ref"]: e for e in catalog.entities(conn)}
        relations = catalog.dependencies(conn)
        streetlights, petstore = contracts.versions(conn)
        definitions = dict(
            conn.execute(text("SELECT api_ref, content_hash FROM api_definitions")).all()
        )
    assert refs["component:default/petstore"]["owner"] == "group:default/sre"
    assert refs["system:default/podcast"]["owner"] == "user:default/team-b"
    assert ("component:default/petstore", "api:default/petstore", "providesApi") in relations
    assert ("system:default/podcast", "domain:default/playback", "partOf") in relations
    assert (petstore.kind, petstore.title, petstore.operations) == (
        "openapi",
        "Swagger Petstore",
        3,
    )
    assert (streetlights.kind, streetlights.title, streetlights.operations) == (
        "asyncapi",
        "Streetlights API",
        4,
    )
    assert definitions["api:default/petstore"] == petstore.content_hash  # the same text


def test_a_changed_catalog_file_replaces_what_it_declared(engine, registry, tmp_path: Path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "orders.yaml").write_text(SPEC)
    info = folder / "catalog-info.yaml"
    info.write_text(COMPONENT.format(lifecycle="on", owner="team-a") + API)
    ingest(engine, [info], registry, worker=False)
    with engine.connect() as conn:
        refs = {e["ref"]: e for e in catalog.entities(conn)}
        assert refs["component:default/orders"]["lifecycle"] == "on"  # YAML 1.2: a word
        assert ("component:default/orders", "resource:default/orders-db", "dependsOn") in (
            catalog.dependencies(conn)
        )
        assert [v.title for v in contracts.versions(conn)] == ["Orders"]
    # The API moves to a file of its own; the component changes owner.
    info.write_text(COMPONENT.format(lifecycle="production", owner="team-b"))
    (folder / "api.yaml").write_text(API.lstrip("-\n"))
    ingest(engine, [info, folder / "api.yaml"], registry, worker=False)
    with engine.connect() as conn:
        entities = catalog.entities(conn)
        by_ref = {e["ref"]: e for e in entities}
        sources = {e["ref"]: Path(e["source"]).name for e in entities}
        assert len(entities) == 2
        assert by_ref["component:default/orders"]["owner"] == "group:default/team-b"
        assert sources == {
            "component:default/orders": "catalog-info.yaml",
            "api:default/orders-api": "api.yaml",
        }
        assert len(contracts.versions(conn)) == 1  # the same definition: the same version
    # The component moves to a file of its own: what it declared moves with it.
    info.write_text("")
    moved = folder / "orders-component.yaml"
    moved.write_text(COMPONENT.format(lifecycle="production", owner="team-b"))
    ingest(engine, [moved], registry, worker=False)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source FROM declared_dependencies WHERE declared_by = :ref"),
            {"ref": "component:default/orders"},
        ).all()
    assert {Path(source).name for (source,) in rows} == {"orders-component.yaml"}


def test_the_catalog_on_postgresql(pg_engine, registry, tmp_path: Path):
    copied = shutil.copytree(corpus() / "backstage", tmp_path / "backstage")
    result = ingest(pg_engine, [copied], registry, worker=False)
    assert (result.quarantined, result.problems) == (0, [])
    with pg_engine.connect() as conn:
        assert len(catalog.entities(conn)) == 6 and len(catalog.dependencies(conn)) == 6
