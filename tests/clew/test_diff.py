"""Changes between two versions of a contract: exactly the planted ones, each classified, and the
consumers seen calling what a breaking change affects."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
from click.testing import CliRunner

from clew import diff
from clew.cli import main
from clew.pipeline import ingest
from clew.store import queries
from collectors import Registry, load_registry
from tests import otlp
from tests.clew.test_gateway_ingest import LinesOfRequests, request
from tests.clew.test_rollups import CLIENT, SERVER

PET = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "tag": {"type": "string"},
        "status": {"type": "string", "enum": ["available", "sold"]},
    },
}

OLD = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1.0.0"},
    "servers": [{"url": "https://pets.example.com/v1"}],
    "paths": {
        "/pets": {
            "get": {
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "sort", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["cat", "dog", "bird"]},
                    },
                ],
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Pet"},
                                }
                            },
                            "application/xml": {"schema": {"type": "array"}},
                        }
                    },
                    "404": {"description": "none"},
                },
            },
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}
                    }
                },
                "responses": {"201": {"description": "made"}},
            },
        },
        "/pets/{id}": {
            "get": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                        }
                    }
                },
            },
            "delete": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {"204": {"description": "gone"}},
            },
        },
    },
    "components": {
        "schemas": {
            "Pet": PET,
            "NewPet": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            },
        }
    },
}


def new_version() -> dict:
    """The planted changes, one of each kind the test names."""
    new = copy.deepcopy(OLD)
    new["info"]["version"] = "2.0.0"
    pets = new["paths"]["/pets"]
    listing = pets["get"]
    listing["parameters"][0]["required"] = True  # limit became required
    listing["parameters"][2]["schema"]["enum"] = ["cat", "dog"]  # bird refused
    del listing["parameters"][1]  # sort removed (not breaking)
    listing["parameters"].append(
        {"name": "X-Tenant", "in": "header", "required": True, "schema": {"type": "string"}}
    )
    del listing["responses"]["200"]["content"]["application/xml"]
    del listing["responses"]["404"]
    listing["security"] = [{"apiKey": []}]
    pets["post"]["requestBody"]["required"] = True
    new_pet = new["components"]["schemas"]["NewPet"]
    new_pet["required"] = ["name", "age"]  # age became required
    new_pet["properties"]["owner"] = {"type": "string"}  # optional: fine
    pet = new["components"]["schemas"]["Pet"]
    del pet["properties"]["tag"]  # read by clients
    pet["required"] = ["id"]  # name may be missing now
    pet["properties"]["status"]["enum"] = ["available", "sold", "pending"]  # noted
    pet["properties"]["id"] = {"type": "string"}  # type changed
    item = new["paths"]["/pets/{id}"]
    del item["delete"]
    item["get"]["deprecated"] = True
    item["get"]["parameters"][0]["name"] = "petId"  # renaming a path parameter: nothing
    new["paths"]["/pets/{petId}"] = new["paths"].pop("/pets/{id}")
    new["paths"]["/pets/{petId}/photos"] = {"get": {"responses": {"200": {"description": "ok"}}}}
    return new


PLANTED = {
    ("operation-removed", True, "DELETE /pets/{id}", ""),
    ("operation-added", False, "GET /pets/{petId}/photos", ""),
    ("operation-deprecated", False, "GET /pets/{id}", ""),
    ("request-parameter-became-required", True, "GET /pets", "parameter limit (query)"),
    ("request-parameter-enum-value-removed", True, "GET /pets", "parameter kind (query)"),
    ("request-parameter-removed", False, "GET /pets", "parameter sort (query)"),
    ("request-parameter-added-required", True, "GET /pets", "parameter X-Tenant (header)"),
    ("response-media-type-removed", True, "GET /pets", "response 200 application/xml"),
    ("response-status-removed", True, "GET /pets", "response 404"),
    ("security-requirement-added", True, "GET /pets", "security"),
    ("request-body-became-required", True, "POST /pets", "request body"),
    (
        "request-property-became-required",
        True,
        "POST /pets",
        "request body application/json: property age",
    ),
    (
        "response-property-removed",
        True,
        "GET /pets",
        "response 200 application/json[]: property tag",
    ),
    (
        "response-property-removed",
        True,
        "GET /pets/{id}",
        "response 200 application/json: property tag",
    ),
    (
        "response-property-became-optional",
        True,
        "GET /pets",
        "response 200 application/json[]: property name",
    ),
    (
        "response-property-became-optional",
        True,
        "GET /pets/{id}",
        "response 200 application/json: property name",
    ),
    (
        "response-property-type-changed",
        True,
        "GET /pets",
        "response 200 application/json[]: property id",
    ),
    (
        "response-property-type-changed",
        True,
        "GET /pets/{id}",
        "response 200 application/json: property id",
    ),
    (
        "response-property-enum-value-added",
        False,
        "GET /pets",
        "response 200 application/json[]: property status",
    ),
    (
        "response-property-enum-value-added",
        False,
        "GET /pets/{id}",
        "response 200 application/json: property status",
    ),
}


def test_exactly_the_planted_changes_each_classified():
    found = diff.changes(OLD, new_version())
    assert {(c.id, c.breaking, c.operation, c.where) for c in found} == PLANTED
    assert len(found) == len(PLANTED)
    assert diff.changes(OLD, copy.deepcopy(OLD)) == []


def test_widening_what_is_sent_and_narrowing_what_is_read_break_nothing():
    old = copy.deepcopy(OLD)
    new = copy.deepcopy(OLD)
    new["paths"]["/pets"]["get"]["parameters"][0]["schema"]["type"] = "number"  # was integer
    old["components"]["schemas"]["Pet"]["properties"]["id"] = {"type": "number"}  # now integer
    found = {(c.id, c.breaking) for c in diff.changes(old, new)}
    assert found == {
        ("request-parameter-type-changed", False),
        ("response-property-type-changed", False),
    }


def test_swagger_2_documents_compare_too():
    old = {
        "swagger": "2.0",
        "info": {"title": "Two", "version": "1"},
        "produces": ["application/json"],
        "paths": {
            "/items": {
                "post": {
                    "parameters": [
                        {"name": "body", "in": "body", "schema": {"$ref": "#/definitions/Item"}}
                    ],
                    "responses": {
                        "200": {"description": "ok", "schema": {"$ref": "#/definitions/Item"}}
                    },
                }
            }
        },
        "definitions": {"Item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
    }
    new = copy.deepcopy(old)
    new["definitions"]["Item"]["required"] = ["sku"]
    new["paths"]["/items"]["post"]["parameters"][0]["required"] = True
    found = {(c.id, c.breaking) for c in diff.changes(old, new)}
    assert found == {
        ("request-body-became-required", True),
        ("request-property-became-required", True),
    }


def traffic(engine, tmp_path: Path) -> None:
    """Partners call pets-api through the gateway edge; the shop service calls it directly."""
    made = {
        n: request(
            n,
            consumer="partner-a" if n % 3 else "partner-b",
            gateway="edge",
            upstream="pets-api",
            method="DELETE" if n % 2 else "GET",
            path=f"/v1/pets/{100 + n}",
            trace_id=None,
        )
        for n in range(1, 13)
    }
    log = tmp_path / "access.log"
    log.write_text("".join(f"{n}\n" for n in made))
    spans = [
        otlp.request(
            {
                "shop": [
                    otlp.span(t, 1, kind=SERVER, name="GET /"),
                    otlp.span(t, 2, 1, kind=CLIENT, name="GET"),
                ],
                "pets-api": [
                    otlp.span(
                        t,
                        3,
                        2,
                        kind=SERVER,
                        name="GET /v1/pets",
                        **{"http.route": "/v1/pets", "http.request.method": "GET"},
                    )
                ],
            }
        )
        for t in (1, 2, 3)
    ]
    path = otlp.write_lines(tmp_path / "traces.jsonl", spans)
    registry = Registry([load_registry()["otlp_json"], LinesOfRequests(made)])
    ingest(engine, [log], registry, format_name="test_gateway", worker=False)
    ingest(engine, [path], registry, format_name="otlp_json", worker=False)


def test_consumers_of_a_breaking_change_are_the_callers_seen(engine, tmp_path: Path):
    traffic(engine, tmp_path)
    old_path = tmp_path / "pets-1.json"
    new_path = tmp_path / "pets-2.json"
    old_path.write_bytes(orjson.dumps(OLD))
    new_path.write_bytes(orjson.dumps(new_version()))
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(
        main, ["diff", str(old_path), str(new_path), "--since", "3000d", "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert (report["service"], report["gateways"]) == ("pets-api", ["edge"])
    assert report["breaking"] == sum(1 for planted in PLANTED if planted[1])
    by_change = {(c["id"], c["where"]): c for c in report["changes"]}
    removed = by_change[("operation-removed", "")]
    assert removed["consumers"] == [
        {"name": "partner-a", "calls": 4},
        {"name": "partner-b", "calls": 2},
    ]
    required = by_change[("request-parameter-became-required", "parameter limit (query)")]
    # GET /pets: the shop's traced calls; the partners' GETs are all to /pets/{id}
    assert required["consumers"] == [{"name": "shop", "calls": 3}]
    fine = by_change[("request-parameter-removed", "parameter sort (query)")]
    assert fine["consumers"] == []  # not breaking: nobody to warn
    failing = CliRunner().invoke(
        main,
        [
            "diff",
            str(old_path),
            str(new_path),
            "--since",
            "3000d",
            "--db",
            db,
            "--fail-on-breaking",
        ],
    )
    assert failing.exit_code == 1 and "BREAKING  DELETE /pets/{id} was removed" in failing.output
    assert "breaks: partner-a (4 calls), partner-b (2 calls)" in failing.output


def test_stored_versions_are_named_by_hash_or_title_and_version(tmp_path: Path):
    db = str(tmp_path / "clew.db")
    runner = CliRunner()
    for version, document in (("1", OLD), ("2", new_version())):
        path = tmp_path / f"pets-{version}.json"
        path.write_bytes(orjson.dumps(document))
        assert runner.invoke(main, ["ingest", str(path), "--db", db]).exit_code == 0
    listed = orjson.loads(runner.invoke(main, ["contracts", "--db", db, "--json"]).stdout)
    old_hash = listed[0]["content_hash"][:12]
    result = runner.invoke(main, ["diff", old_hash, "Pets@2.0.0", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["old"].startswith("Pets@1.0.0") and report["new"].startswith("Pets@2.0.0")
    assert {(c["id"], c["operation"], c["where"]) for c in report["changes"]} == {
        planted[0:1] + planted[2:4] for planted in PLANTED
    }
    missing = runner.invoke(main, ["diff", "Pets@9", "Pets@2.0.0", "--db", db])
    assert missing.exit_code == 2 and "no stored version" in missing.output


def streetlights() -> dict:
    from collectors.openapi import parse
    from tests.conftest import corpus

    path = corpus("asyncapi") / "streetlights-kafka-asyncapi.yml"
    return parse(path.read_bytes(), str(path))


def test_asyncapi_versions_compare_by_operation_message_and_payload():
    old = streetlights()
    new = copy.deepcopy(old)
    schemas = new["components"]["schemas"]
    del schemas["dimLightPayload"]["properties"]["percentage"]  # consumers read it
    schemas["lightMeasuredPayload"]["required"] = ["lumens"]  # producers must now send it
    new["components"]["messages"]["lightMeasured"]["contentType"] = "application/avro"
    del new["operations"]["turnOff"]
    turn_on = "SEND smartylighting.streetlights.1.0.action.{streetlightId}.turn.on"
    new["channels"]["lightTurnOn"]["messages"]["turnOnAgain"] = {
        "$ref": "#/components/messages/turnOnOff"
    }
    new["operations"]["turnOn"]["messages"].append(
        {"$ref": "#/channels/lightTurnOn/messages/turnOnAgain"}
    )
    found = {(c.id, c.breaking, c.operation, c.where) for c in diff.changes(old, new)}
    measured = "RECEIVE smartylighting.streetlights.1.0.event.{streetlightId}.lighting.measured"
    dim = "SEND smartylighting.streetlights.1.0.action.{streetlightId}.dim"
    assert found == {
        (
            "operation-removed",
            True,
            "SEND smartylighting.streetlights.1.0.action.{streetlightId}.turn.off",
            "",
        ),
        ("message-content-type-changed", True, measured, "message lightMeasured"),
        (
            "message-property-became-required",
            True,
            measured,
            "message lightMeasured: property lumens",
        ),
        ("message-property-removed", True, dim, "message dimLight: property percentage"),
        ("message-added", False, turn_on, "message turnOnAgain"),
    }


def test_the_consumers_of_a_topic_are_the_ones_a_sent_message_s_change_breaks(
    engine, registry, tmp_path: Path
):
    """orders sends on the kafka topic "orders"; billing consumes it (tests.clew.test_rollups'
    landscape): removing what orders sends breaks billing, by its calls."""
    from tests.clew.test_rollups import landscape

    ingest(
        engine,
        [otlp.write_lines(tmp_path / "t.jsonl", landscape(range(1, 5)))],
        registry,
        worker=False,
    )
    old = {
        "asyncapi": "3.0.0",
        "info": {"title": "Orders events", "version": "1"},
        "channels": {
            "orders": {"address": "orders", "messages": {"placed": {"payload": {"type": "object"}}}}
        },
        "operations": {"publish": {"action": "send", "channel": {"$ref": "#/channels/orders"}}},
    }
    new = copy.deepcopy(old)
    del new["operations"]["publish"]
    from collectors.asyncapi import read

    operations = [op for op in read(old, "h") if type(op).__name__ == "Operation"]
    with engine.connect() as conn:
        served = diff.observed(conn, queries.Window(), operations)
    (removed,) = diff.with_consumers(diff.changes(old, new), served)
    assert (removed.id, removed.operation) == ("operation-removed", "SEND orders")
    assert removed.consumers == [{"name": "billing", "calls": 4}]


def test_clew_diff_reads_asyncapi_files(tmp_path: Path):
    old = streetlights()
    new = copy.deepcopy(old)
    new["components"]["messages"]["lightMeasured"]["contentType"] = "application/avro"
    paths = []
    for name, document in (("one.json", old), ("two.json", new)):
        path = tmp_path / name
        path.write_bytes(orjson.dumps(document))
        paths.append(str(path))
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(main, ["diff", *paths, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert [(c["id"], c["breaking"]) for c in report["changes"]] == [
        ("message-content-type-changed", True)
    ]
