"""Spectral rulesets read as Clew rules: extends, adjustments, aliases, JSONPath, functions,
resolution and the errors a bad ruleset gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.engine import Context, PolicyError, evaluate
from policies.spectral import compile_path, load_ruleset, resolved_document
from policies.subjects import from_files

DATA = Path(__file__).parent / "data"


def _findings(ruleset: Path, contract: Path) -> list[tuple[str, str, str, tuple]]:
    rules = load_ruleset(ruleset).rules
    result = evaluate(rules.active(), from_files([contract]), Context(now=None))
    return [(f.rule, f.severity, f.message, f.path) for f in result.findings]


def test_a_team_ruleset_extends_spectral_oas_and_adds_its_own_rules():
    loaded = load_ruleset(DATA / "team.spectral.yaml")
    assert "oas3-schema" in loaded.warnings[0]
    assert "oas3-valid-schema-example" not in loaded.warnings[0]
    assert not loaded.rules.rules["operation-tags"].enabled
    assert loaded.rules.rules["info-contact"].severity == "error"
    assert not loaded.rules.rules["info-license"].enabled  # not recommended
    found = _findings(DATA / "team.spectral.yaml", DATA / "spectral-pets.yaml")
    own = [
        f
        for f in found
        if f[0] in loaded.rules.rules and "spectral" in str(loaded.rules.rules[f[0]].source)
    ]
    assert sorted(own) == [
        (
            "no-query-api-keys",
            "warning",
            "must be falsy at #/paths/~1pets~1{petId}/get/parameters/1",
            ("paths", "/pets/{petId}", "get", "parameters", 1),
        ),
        (
            "operation-id-camel",
            "error",
            '"get_pet" must be camel case',
            ("paths", "/pets/{petId}", "get", "operationId"),
        ),
        ("paths-kebab-case", "warning", "/Stores is not kebab-case", ("paths", "/Stores")),
        (
            "pet-status",
            "warning",
            '"integer" must be equal to one of the allowed values: "string"',
            ("components", "schemas", "Pet", "properties", "status", "type"),
        ),
        (
            "pet-status",
            "warning",
            "['available', 'sold'] is too short",
            ("components", "schemas", "Pet", "properties", "status", "enum"),
        ),
        (
            "summary-length",
            "hint",
            "must be shorter than 20",
            ("paths", "/pets/{petId}", "get", "summary"),
        ),
    ]
    assert ("info-contact", "error", 'Info object must have "contact" object.', ("info",)) in found
    assert (
        "typed-enum",
        "warning",
        "Enum value `available` does not respect the specified type `integer`.",
        ("components", "schemas", "Status", "enum", 0),
    ) in found


DOCUMENT = {
    "paths": {
        "/a": {
            "get": {"parameters": [{"in": "query", "name": "x"}, {"in": "path", "name": "y"}]},
            "parameters": [{"$ref": "#/p"}],
        },
    },
    "p": {"in": "header", "name": "h", "description": "eval(x)"},
    "t": [{"enum": [1]}, {"type": "array"}],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "$.paths[*].get.parameters[?(@.in == 'query')].name",
            [("paths", "/a", "get", "parameters", 0, "name")],
        ),
        ("$..[?(@property === '$ref')]", [("paths", "/a", "parameters", 0, "$ref")]),
        ("$.paths['/a'][get,put]", [("paths", "/a", "get")]),
        ("$.t[1]", [("t", 1)]),
        ("$..[description,title]", [("p", "description")]),
        ("$.t[?(@.enum && !@.type)]", [("t", 0)]),
        (
            "$..parameters[?(@.in != 'query' && @.name)].name",
            [
                ("paths", "/a", "get", "parameters", 1, "name"),
            ],
        ),
    ],
)
def test_jsonpath_finds_what_jsonpath_plus_finds(path, expected):
    assert [p for p, _ in compile_path(path)(DOCUMENT)] == expected


def test_resolution_replaces_local_references_and_keeps_cycles():
    document = {"a": {"$ref": "#/b"}, "b": {"c": {"$ref": "#/b"}, "d": 1}}
    resolved = resolved_document(document)
    assert resolved["a"]["d"] == 1
    assert resolved["a"]["c"] == {"$ref": "#/b"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("rules: [1]\n", "'rules' must be a mapping"),
        ("rules:\n  r: {given: '$.a', then: {function: nope}}\n", "rule r: function 'nope'"),
        ("rules:\n  r: {given: 'a.b', then: {function: truthy}}\n", "rule r: JSONPath 'a.b'"),
        (
            "rules:\n  r: {given: '$.a', severity: loud, then: {function: truthy}}\n",
            "rule r: severity",
        ),
        ("rules:\n  r: error\n", "rule r: adjusts no rule"),
        ("extends: spectral:asyncapi\n", "only spectral:oas"),
        ("rules:\n  r: {given: '$[?(@.a ==)]', then: {function: truthy}}\n", "rule r: filter"),
        ("rules:\n  r: {given: '$', then: {function: pattern}}\n", "rule r: pattern needs"),
        (
            "rules:\n  r: {given: '$', then: {function: schema,"
            " functionOptions: {schema: {type: 3}}}}\n",
            "rule r: functionOptions.schema",
        ),
    ],
)
def test_bad_rulesets_name_the_file_and_the_rule(tmp_path, text, error):
    path = tmp_path / ".spectral.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=str(path).replace(".", r"\.")) as raised:
        load_ruleset(path)
    assert error in str(raised.value)


def test_json_rulesets_are_read_and_off_disables(tmp_path):
    path = tmp_path / ".spectral.json"
    path.write_text('{"extends": [["spectral:oas", "off"]], "rules": {"info-contact": "warn"}}')
    rules = load_ruleset(path).rules
    assert [r.id for r in rules.active()] == ["info-contact"]
