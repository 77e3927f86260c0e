"""The endpoint inventory: endpoints from traffic and contracts with their statuses (documented,
shadow, zombie, orphan) and the unversioned flag, by every versioning scheme."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clew import inventory
from clew.cli import main
from clew.pipeline import ingest
from clew.store import queries
from collectors import Registry, load_registry
from tests.clew.test_gateway_ingest import LinesOfRequests, request
from tests.conftest import BACKENDS, engine_of


@pytest.fixture(params=BACKENDS)
def engine(request, engine):
    """Every test here runs on SQLite and on PostgreSQL."""
    return engine_of(request, engine)


NOW = datetime(2026, 12, 6, tzinfo=UTC)

PETS_1 = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1.0.0"},
    "servers": [{"url": "https://pets.example.com/v1"}],
    "paths": {
        "/pets": {
            "get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}},
            "post": {"operationId": "addPet", "responses": {"201": {"description": "made"}}},
        },
        "/pets/{id}": {
            "get": {"operationId": "getPet", "responses": {"200": {"description": "ok"}}},
            "delete": {"operationId": "deletePet", "responses": {"204": {"description": "gone"}}},
        },
    },
}


def pets_2() -> dict:
    document = copy.deepcopy(PETS_1)
    document["info"]["version"] = "2.0.0"
    listing = document["paths"]["/pets"]["get"]
    listing["deprecated"] = True
    listing["x-sunset"] = "2026-06-30"
    del document["paths"]["/pets/{id}"]["delete"]
    return document


STOCK = {
    "openapi": "3.1.0",
    "info": {"title": "Stock", "version": "3"},
    "servers": [{"url": "http://stock-service"}],
    "paths": {
        "/stock/{sku}": {
            "get": {
                "parameters": [
                    {"name": "sku", "in": "path", "required": True},
                    {"name": "Api-Version", "in": "header"},
                ],
                "responses": {"200": {"description": "ok"}},
            },
            "put": {
                "requestBody": {"content": {"application/vnd.acme.stock.v2+json": {}}},
                "responses": {"200": {"description": "ok"}},
            },
        },
        "/reservations": {
            "post": {
                "parameters": [{"name": "api-version", "in": "query"}],
                "responses": {"201": {"description": "ok"}},
            },
            "get": {"responses": {"200": {"description": "ok"}}},
        },
    },
}


def landscape(engine, tmp_path: Path) -> None:
    """Partners call pets-api through the gateway; the shop calls stock-service."""
    calls = [
        ("pets-api", "GET", "/v1/pets/101"),
        ("pets-api", "GET", "/v1/pets/102"),
        ("pets-api", "DELETE", "/v1/pets/103"),
        ("pets-api", "GET", "/v1/pets"),
        ("pets-api", "GET", "/v1/internal/stats"),
        ("stock-service", "GET", "/stock/9001"),
        ("stock-service", "PUT", "/stock/9002"),
        ("stock-service", "POST", "/reservations"),
        ("stock-service", "GET", "/reservations"),
        ("stock-service", "GET", "/debug/vars"),
    ]
    made = {
        n: request(n, upstream=upstream, method=method, path=path, trace_id=None)
        for n, (upstream, method, path) in enumerate(calls, 1)
    }
    log = tmp_path / "access.log"
    log.write_text("".join(f"{n}\n" for n in made))
    contracts = []
    for name, document in (("pets-1", PETS_1), ("pets-2", pets_2()), ("stock", STOCK)):
        path = tmp_path / f"{name}.json"
        path.write_bytes(orjson.dumps(document))
        contracts.append(path)
    registry = Registry([*load_registry().values(), LinesOfRequests(made)])
    ingest(engine, [log], registry, format_name="test_gateway", worker=False)
    ingest(engine, contracts, registry, worker=False)


def statuses(engine, **options) -> dict[tuple[str, str, str], tuple[str, bool]]:
    with engine.connect() as conn:
        found = inventory.inventory(conn, queries.Window(), now=NOW, **options)
    return {(e.service, e.method, e.route): (e.status, e.unversioned) for e in found}


def test_every_endpoint_gets_its_status(engine, tmp_path: Path):
    landscape(engine, tmp_path)
    assert statuses(engine) == {
        # documented in Pets 2.0.0 (the server's /v1 prefix taken off the route)
        ("pets-api", "GET", "/v1/pets/{id}"): ("documented", False),
        # deprecated with its sunset passed, still called
        ("pets-api", "GET", "/v1/pets"): ("zombie", False),
        # removed after 1.0.0, still called
        ("pets-api", "DELETE", "/v1/pets/{id}"): ("zombie", False),
        # called, in no contract
        ("pets-api", "GET", "/v1/internal/stats"): ("shadow", False),
        # documented, never called (versioned by its server URL's path)
        ("pets-api", "POST", "/pets"): ("orphan", False),
        # pinned by a header, a media type, a query parameter; one not at all
        ("stock-service", "GET", "/stock/{id}"): ("documented", False),
        ("stock-service", "PUT", "/stock/{id}"): ("documented", False),
        ("stock-service", "POST", "/reservations"): ("documented", False),
        ("stock-service", "GET", "/reservations"): ("documented", True),
        ("stock-service", "GET", "/debug/vars"): ("shadow", True),
    }


def test_versioning_schemes_are_configurable(engine, tmp_path: Path):
    landscape(engine, tmp_path)
    by_path_only = statuses(engine, schemes=["path"])
    unversioned = sorted(key for key, (_, flag) in by_path_only.items() if flag)
    assert unversioned == [
        ("pets-api", "POST", "/pets"),  # its /v1 is only in the server URL
        ("stock-service", "GET", "/debug/vars"),
        ("stock-service", "GET", "/reservations"),
        ("stock-service", "GET", "/stock/{id}"),
        ("stock-service", "POST", "/reservations"),
        ("stock-service", "PUT", "/stock/{id}"),
    ]
    with pytest.raises(ValueError, match="unknown versioning schemes"):
        statuses(engine, schemes=["path", "cookie"])


def test_an_unserved_contract_is_all_orphans(engine, tmp_path: Path):
    path = tmp_path / "pets.json"
    path.write_bytes(orjson.dumps(PETS_1))
    ingest(engine, [path], load_registry(), worker=False)
    found = statuses(engine)
    assert set(found.values()) == {("orphan", False)} and len(found) == 4
    assert {service for service, _, _ in found} == {"[Pets]"}


def test_clew_endpoints_filters_and_prints(tmp_path: Path):
    db = str(tmp_path / "clew.db")
    from clew import store

    engine = store.open_engine(db)
    store.upgrade(engine)
    landscape(engine, tmp_path)
    engine.dispose()
    runner = CliRunner()
    result = runner.invoke(
        main, ["endpoints", "--since", "3000d", "--status", "zombie", "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert [(r["method"], r["route"], r["why"]) for r in rows] == [
        ("GET", "/v1/pets", "deprecated, sunset 2026-06-30 (passed) in Pets@2.0.0, still called"),
        ("DELETE", "/v1/pets/{id}", "removed after Pets@1.0.0, still called"),
    ]
    assert rows[0]["callers"] == ["edge"] and rows[0]["calls"] == 1
    text = runner.invoke(main, ["endpoints", "--since", "3000d", "--db", db]).output
    assert text.startswith(
        "10 endpoints: 5 documented, 2 shadow, 2 zombie, 1 orphan; 2 unversioned"
    )
    bad = runner.invoke(main, ["endpoints", "--schemes", "path,cookie", "--db", db])
    assert bad.exit_code == 2 and "unknown versioning schemes" in bad.output


CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: shop}
spec:
  type: service
  owner: team-a
  lifecycle: production
  consumesApis: [stock-api]
  dependsOn: ['resource:orders-db', 'component:mailer']
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: stock-service}
spec: {type: service, owner: team-b, lifecycle: production, providesApis: [stock-api]}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: stock-api}
spec: {type: openapi, owner: team-b, lifecycle: production, definition: 'openapi: 3.0.0'}
"""


def declared_landscape(engine, registry, tmp_path: Path) -> None:
    """shop declares stock (through its API), orders-db and mailer; traffic shows shop calling
    stock and orders-db, and pricing, which it does not declare; mailer is never called."""
    from tests import otlp
    from tests.clew.test_rollups import CLIENT, SERVER

    spans = []
    database = {"db.system": "postgresql", "server.address": "orders-db"}
    for t in (1, 2):
        shop = [otlp.span(t, 1, kind=SERVER, name="GET /")]
        stock, pricing = [], []
        for n, called in enumerate((stock, pricing), 2):
            shop.append(otlp.span(t, n, 1, kind=CLIENT, name="GET"))
            called.append(otlp.span(t, 10 + n, n, kind=SERVER, name="GET /x", http__route="/x"))
        shop.append(otlp.span(t, 9, 1, kind=CLIENT, name="SELECT", **database))
        spans.append(otlp.request({"shop": shop, "stock-service": stock, "pricing": pricing}))
    traces = otlp.write_lines(tmp_path / "t.jsonl", spans)
    catalog_file = tmp_path / "catalog-info.yaml"
    catalog_file.write_text(CATALOG)
    ingest(engine, [traces, catalog_file], registry, worker=False)


def test_declared_dependencies_against_observed_edges(engine, registry, tmp_path: Path):
    declared_landscape(engine, registry, tmp_path)
    with engine.connect() as conn:
        found = inventory.dependencies(conn, queries.Window())
    assert [(d.status, d.client, d.server, d.calls) for d in found] == [
        ("undeclared", "shop", "pricing", 2),
        ("declared", "shop", "orders-db", 2),
        ("declared", "shop", "stock-service", 2),
        ("unused", "shop", "mailer", 0),
    ]
    assert found[2].declared_by == ["consumesApi api:default/stock-api"]


def test_a_version_deprecated_in_its_registry_makes_its_called_operations_zombies(
    engine, tmp_path: Path
):
    landscape(engine, tmp_path)
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE contract_versions SET registry_state = 'DEPRECATED' WHERE version = '3'")
        )
    with engine.connect() as conn:
        found = inventory.inventory(conn, queries.Window(), now=NOW)
    stock = {(e.method, e.route): e for e in found if e.service == "stock-service"}
    assert stock[("GET", "/stock/{id}")].status == "zombie"
    assert stock[("GET", "/stock/{id}")].why == (
        "the version deprecated in its registry in Stock@3, still called"
    )
    assert stock[("GET", "/debug/vars")].status == "shadow"  # in no contract: as before


def test_each_endpoint_says_how_a_client_pins_its_version(engine, tmp_path: Path):
    landscape(engine, tmp_path)
    with engine.connect() as conn:
        found = inventory.inventory(conn, queries.Window(), now=NOW)
    pins = {(e.service, e.method, e.route): e.version_pin for e in found}
    assert pins[("pets-api", "GET", "/v1/pets/{id}")] == "path"
    assert pins[("pets-api", "POST", "/pets")] == "server /v1"
    assert pins[("stock-service", "GET", "/stock/{id}")] == "header Api-Version"
    assert (
        pins[("stock-service", "PUT", "/stock/{id}")] == "media application/vnd.acme.stock.v2+json"
    )
    assert pins[("stock-service", "POST", "/reservations")] == "query api-version"
    assert pins[("stock-service", "GET", "/reservations")] is None


def test_gateway_endpoints_take_the_names_of_the_contract_their_service_provides(
    engine, tmp_path: Path
):
    """The gateway templates /v1/pets/103 as /v1/pets/{id}; the contract the catalog says
    pets-api provides names it /pets/{petId} under its /v1 server: the endpoint is read so."""
    document = pets_2()
    document["paths"]["/pets/{petId}"] = document["paths"].pop("/pets/{id}")
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "pets.json").write_bytes(orjson.dumps(document))
    (folder / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: pets-api}\n"
        "spec: {type: service, owner: team-a, lifecycle: production, providesApis: [pets]}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: pets}\n"
        "spec: {type: openapi, owner: team-a, lifecycle: production,"
        " definition: {$text: ./pets.json}}\n"
    )
    landscape(engine, tmp_path)
    ingest(engine, [folder], load_registry(), worker=False)
    with engine.connect() as conn:
        names = {
            endpoint
            for endpoint, _ in queries.endpoint_totals(conn, queries.Window(), server="pets-api")
        }
        found = inventory.inventory(conn, queries.Window(), now=NOW)
    assert "GET /v1/pets/{petId}" in names and "GET /v1/pets/{id}" not in names
    pets = {(e.method, e.route): e.status for e in found if e.service == "pets-api"}
    assert pets[("GET", "/v1/pets/{petId}")] == "documented"
    assert pets[("GET", "/v1/internal/stats")] == "shadow"  # no template matches: as it was


def test_a_version_header_seen_in_traffic_pins_the_route(engine, tmp_path: Path):
    """GET /reservations declares no version in its contract; clients were seen sending an
    Api-Version header to it through the gateway, so it is versioned after all."""
    from clew.pipeline import version_headers

    landscape(engine, tmp_path)
    seen = {
        100: request(
            100,
            upstream="stock-service",
            method="GET",
            path="/reservations",
            trace_id=None,
            attributes='{"version_header":"Api-Version"}',
        )
    }
    log = tmp_path / "more.log"
    log.write_text("100\n")
    ingest(engine, [log], Registry([LinesOfRequests(seen)]), worker=False)
    with engine.connect() as conn:
        found = inventory.inventory(conn, queries.Window(), now=NOW)
    pins = {(e.service, e.method, e.route): e.version_pin for e in found}
    assert pins[("stock-service", "GET", "/reservations")] == "header Api-Version (seen)"
    with engine.connect() as conn:
        path_only = inventory.inventory(conn, queries.Window(), now=NOW, schemes=["path"])
    pins = {(e.service, e.method, e.route): e.version_pin for e in path_only}
    # A header seen in traffic counts only when the header scheme is allowed.
    assert pins[("stock-service", "GET", "/reservations")] is None
    # NGINX keeps $http_* variables by name; a line that names no version header adds nothing.
    nginx = request(1, path="/a/1", attributes='{"http_accept_version":"2","other":"x"}')
    plain = request(2, path="/a/2", attributes='{"user_agent":"curl"}')
    haproxy = request(3, path="/b/3", attributes='{"request_headers":{"x-api-version":"2"}}')
    assert version_headers([nginx, plain, haproxy]) == [
        ("edge", "payments-api", "GET", "/a/{id}", "accept-version"),
        ("edge", "payments-api", "GET", "/b/{id}", "x-api-version"),
    ]
