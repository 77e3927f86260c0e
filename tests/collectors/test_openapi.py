"""OpenAPI 2.0, 3.0 and 3.1 contracts: every corpus file read, its operations counted by an
independent walk of the raw document; references followed, or noted when they cannot be."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from ruamel.yaml import YAML

from clew.records import Contract, Operation, Quarantined
from collectors import Registry, Source
from collectors.openapi import OpenApiCollector
from tests.conftest import corpus

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def openapi_files() -> list[Path]:
    return sorted(p for p in (corpus() / "openapi").iterdir() if p.is_file())


def raw_document(path: Path) -> dict:
    """The document as plain JSON or YAML reads it, with nothing of the collector's."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    return YAML(typ="safe", pure=True).load(text)


def walk_count(document: dict) -> Counter:
    """Operations per role, by walking the raw document: path items (followed when they are a
    local $ref), their HTTP methods, the callbacks of each operation, and 3.1's webhooks."""

    def deref(node):
        while isinstance(node, dict) and "$ref" in node:
            target = document
            for token in node["$ref"].lstrip("#/").split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    counted: Counter = Counter()

    def count(items: dict, role: str) -> None:
        for item in items.values():
            item = deref(item)
            for method, operation in item.items():
                if method not in METHODS:
                    continue
                counted[role] += 1
                for callback in (operation.get("callbacks") or {}).values():
                    count(deref(callback), "callback")

    count(document.get("paths") or {}, "server")
    count(document.get("webhooks") or {}, "webhook")
    return counted


def read(path: Path) -> tuple[list[Contract], list[Operation], list[Quarantined]]:
    records = list(OpenApiCollector().collect(Source(path)))
    return (
        [r for r in records if type(r) is Contract],
        [r for r in records if type(r) is Operation],
        [r for r in records if type(r) is Quarantined],
    )


@pytest.mark.parametrize("path", openapi_files(), ids=lambda p: p.name)
def test_every_corpus_contract_is_read_with_the_operations_a_raw_walk_counts(path: Path):
    (contract,), operations, quarantined = read(path)
    assert quarantined == []
    assert Counter(op.role for op in operations) == walk_count(raw_document(path))
    assert all(op.content_hash == contract.content_hash for op in operations)
    assert contract.problems == ()  # every reference in the corpus is local and resolves
    assert Registry([OpenApiCollector()]).detect(path) is not None


def test_specific_values_per_file():
    by_name = {p.name: read(p) for p in openapi_files()}
    (stripe,), stripe_ops, _ = by_name["stripe_spec3.json"]
    assert (stripe.spec_version, stripe.servers) == ("3.0.0", ("https://api.stripe.com/",))
    customers = {op.method for op in stripe_ops if op.path == "/v1/customers/{customer}"}
    assert customers == {"GET", "POST", "DELETE"}

    (netlify,), _, _ = by_name["netlify_swagger.yml"]
    assert (netlify.spec_version, netlify.servers) == ("2.0", ("https://api.netlify.com/api/v1",))
    assert netlify.title == "Netlify's API documentation"

    _, pets, _ = by_name["v2.0_petstore-expanded.json"]
    assert sorted((op.method, op.path, op.operation_id) for op in pets) == [
        ("DELETE", "/pets/{id}", "deletePet"),
        ("GET", "/pets", "findPets"),
        ("GET", "/pets/{id}", "find pet by id"),
        ("POST", "/pets", "addPet"),
    ]
    add = next(op for op in pets if op.operation_id == "addPet")
    details = orjson.loads(add.details)
    assert details["body"] == {"required": True, "media": ["application/json"]}
    assert details["responses"] == {"200": ["application/json"], "default": ["application/json"]}
    find = next(op for op in pets if op.operation_id == "findPets")
    assert [p["name"] for p in orjson.loads(find.details)["parameters"]] == ["limit", "tags"]

    _, callbacks, _ = by_name["v3.0_callback-example.json"]
    assert [(op.role, op.method, op.path) for op in callbacks] == [
        ("server", "POST", "/streams"),
        ("callback", "POST", "{$request.query.callbackUrl}/data"),
    ]
    (webhook,), hooks, _ = by_name["v3.1_webhook-example.json"]
    assert webhook.spec_version == "3.1.0"
    assert [(op.role, op.method, op.path) for op in hooks] == [("webhook", "POST", "newPet")]
    details = orjson.loads(hooks[0].details)
    assert details["body"] == {"required": False, "media": ["application/json"]}


def write(tmp_path: Path, document: dict | str, name: str = "api.yaml") -> Path:
    path = tmp_path / name
    if isinstance(document, str):
        path.write_text(document)
    else:
        path.write_bytes(orjson.dumps(document))
    return path


def test_references_are_followed_and_what_cannot_be_is_noted(tmp_path: Path):
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Refs", "version": "2"},
        "paths": {
            "/a/{id}": {"$ref": "#/components/pathItems/a"},
            "/loop": {"$ref": "#/components/pathItems/loop1"},
            "/remote": {"$ref": "https://example.com/item.yaml"},
            "/dangling": {"$ref": "#/components/pathItems/nothing"},
        },
        "components": {
            "pathItems": {
                "a": {
                    "parameters": [{"$ref": "#/components/parameters/id"}],
                    "get": {
                        "operationId": "getA",
                        "deprecated": True,
                        "x-sunset": "2026-01-01",
                        "parameters": [{"$ref": "#/components/parameters/a~1b"}],
                        "responses": {"200": {"$ref": "#/components/responses/ok"}},
                    },
                },
                "loop1": {"$ref": "#/components/pathItems/loop2"},
                "loop2": {"$ref": "#/components/pathItems/loop1"},
            },
            "parameters": {
                "id": {"name": "id", "in": "path", "schema": {"type": "string"}},
                "a/b": {"name": "fields", "in": "query", "required": True},
            },
            "responses": {"ok": {"content": {"application/json": {}}}},
        },
    }
    (contract,), operations, quarantined = read(write(tmp_path, document, "refs.json"))
    assert quarantined == []
    (get,) = operations
    assert (get.operation_id, get.deprecated, get.sunset) == ("getA", True, "2026-01-01")
    details = orjson.loads(get.details)
    assert [(p["name"], p["in"], p["required"]) for p in details["parameters"]] == [
        ("fields", "query", True),
        ("id", "path", True),
    ]
    assert details["responses"] == {"200": ["application/json"]}
    problems = "\n".join(contract.problems)
    assert "refers to itself" in problems
    assert "'https://example.com/item.yaml' is in another document (not fetched)" in problems
    assert "'#/components/pathItems/nothing' points at nothing" in problems


def test_yaml_contracts_use_yaml_1_2_and_bad_files_are_quarantined_whole(tmp_path: Path):
    text = (
        "openapi: 3.1.0\ninfo: {title: Y, version: 1.0}\npaths:\n"
        "  /switch:\n    post:\n      responses:\n        200: {description: on}\n"
    )
    (contract,), (op,), _ = read(write(tmp_path, text))
    assert contract.version == "1.0" and orjson.loads(op.details)["responses"] == {"200": []}
    _, _, (bad,) = read(write(tmp_path, "openapi: 3.0.0\npaths: {a: 1\n", "bad.yaml"))
    assert bad.position == "line 3 column 1" and bad.reason.startswith(
        "invalid YAML: while parsing"
    )
    _, _, (other,) = read(write(tmp_path, {"asyncapi": "2.6.0"}, "async.json"))
    assert other.reason == "not an OpenAPI document: no openapi or swagger version at its top"
    _, _, (old,) = read(write(tmp_path, {"swagger": "1.2"}, "old.json"))
    assert "1.2 is not read" in old.reason
    _, _, (broken,) = read(write(tmp_path, '{"openapi": "3.0.0", ', "broken.json"))
    assert broken.position == "line 1 column 22" and broken.reason.startswith("invalid JSON")


def test_servers_of_each_version(tmp_path: Path):
    two = {
        "swagger": "2.0",
        "info": {},
        "host": "api.example.com",
        "basePath": "/v2",
        "schemes": ["http", "https"],
        "paths": {},
    }
    (contract,), _, _ = read(write(tmp_path, two, "two.json"))
    assert contract.servers == ("http://api.example.com/v2", "https://api.example.com/v2")
    three = {
        "openapi": "3.0.0",
        "info": {},
        "servers": [
            {
                "url": "https://{region}.example.com/{base}",
                "variables": {"region": {"default": "eu"}, "base": {"default": "v3"}},
            }
        ],
        "paths": {},
    }
    (contract,), _, _ = read(write(tmp_path, three, "three.json"))
    assert contract.servers == ("https://eu.example.com/v3",)
