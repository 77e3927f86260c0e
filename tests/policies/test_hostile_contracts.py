"""Contracts built to hurt: $ref chains past the limit, schemas that refer to themselves, and
documents nested past any sensible depth. Each is read, checked by every built-in rule and
compared across versions without a crash, or refused naming the file, the place and the reason.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from clew.cli import main
from clew.records import Contract
from collectors import Source
from collectors.openapi import MAX_REF_DEPTH, OpenApiCollector


def _contract(version: str, *, required: list[str] | None = None) -> dict:
    """A contract whose path item sits at the end of a $ref chain longer than the limit, and
    whose schemas refer to themselves (directly, and through allOf/oneOf)."""
    chain = {f"p{i}": {"$ref": f"#/components/pathItems/p{i + 1}"} for i in range(100)}
    chain["p100"] = {"get": {"operationId": "far", "responses": {"200": {"description": "ok"}}}}
    node = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            "parent": {"$ref": "#/components/schemas/Node"},
        },
    }
    if required:
        node["required"] = required
    json_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}
    either = {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hostile", "version": version},
        "paths": {
            "/far": {"$ref": "#/components/pathItems/p0"},
            "/tree": {
                "post": {
                    "operationId": "tree",
                    "requestBody": {"content": json_body},
                    "responses": {"200": {"description": "ok", "content": either}},
                }
            },
        },
        "components": {
            "pathItems": chain,
            "schemas": {
                "Node": node,
                "A": {"allOf": [{"$ref": "#/components/schemas/B"}]},
                "B": {"oneOf": [{"$ref": "#/components/schemas/A"}, {"type": "string"}]},
            },
        },
    }


def test_a_ref_chain_past_the_limit_is_a_noted_problem_not_a_crash(tmp_path: Path):
    path = tmp_path / "hostile.json"
    path.write_bytes(orjson.dumps(_contract("1.0.0")))
    records = list(OpenApiCollector().collect(Source(path)))
    (contract,) = [r for r in records if type(r) is Contract]
    assert f"more than {MAX_REF_DEPTH} $refs in a chain" in "\n".join(contract.problems)
    # The path item at the far end is not read; the other operation is.
    assert {r.operation_id for r in records if hasattr(r, "operation_id")} == {"tree"}


def test_self_referring_schemas_pass_every_rule_and_the_breaking_change_check(tmp_path: Path):
    one, two = tmp_path / "v1", tmp_path / "v2"
    one.mkdir(), two.mkdir()
    (one / "api.json").write_bytes(orjson.dumps(_contract("1.0.0")))
    (two / "api.json").write_bytes(orjson.dumps(_contract("2.0.0", required=["name", "parent"])))
    runner = CliRunner()
    checked = runner.invoke(main, ["check", str(one / "api.json"), "--format", "json",
                                   "--fail-on", "never"])  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert orjson.loads(checked.output)["findings"]  # the rules ran (and found what they found)
    db = str(tmp_path / "clew.db")
    for folder in (one, two):
        assert runner.invoke(main, ["ingest", str(folder), "--db", db]).exit_code == 0
    stored = runner.invoke(main, ["check", "--db", db, "--format", "json", "--fail-on", "never",
                                  "--pack", "breaking"])  # fmt: skip
    assert stored.exit_code == 0, stored.output
    messages = [f["message"] for f in orjson.loads(stored.output)["findings"]]
    for name in ("name", "parent"):
        assert any(f"property {name} became required" in m for m in messages), messages


def test_documents_nested_too_deep_are_refused_with_the_place(tmp_path: Path):
    deep = 200_000
    as_json = tmp_path / "deep.json"
    as_json.write_text('{"openapi": "3.0.3", "x": ' + "[" * deep + "]" * deep + "}")
    flow = tmp_path / "flow.yaml"
    flow.write_text("openapi: 3.0.3\nx: " + "[" * deep + "]" * deep + "\n")
    block = tmp_path / "block.yaml"  # "- - - x": a sequence in a sequence, two bytes a level
    block.write_text("openapi: 3.0.3\nx:\n" + "- " * deep + "x\n")
    indented = tmp_path / "indented.yaml"
    indented.write_text("x:\n" + "".join(" " * i + "k:\n" for i in range(1, 3000)))
    runner = CliRunner()
    for path, reason in (
        (as_json, "line 1 column 1051: invalid JSON: depth limit exceeded"),
        (flow, "line 2 column 260: invalid YAML: nested more than 256 levels deep"),
        (block, "line 3 column 513: invalid YAML: nested more than 256 levels deep"),
        (indented, "line 257 column 258: invalid YAML: nested more than 256 levels deep"),
    ):
        refused = runner.invoke(main, ["check", str(path)])
        assert refused.exit_code == 2, refused.output
        assert f"{path}: {reason}" in refused.output
