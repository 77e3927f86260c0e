"""The policy engine: checks registered once, packs loaded strictly, rules evaluated into findings
that carry their rule, severity, subject, place and owners."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies.engine import (
    CheckFailed,
    CheckRegistry,
    Context,
    Hit,
    PolicyError,
    Subject,
    at_or_above,
    build_options,
    builtin_pack_files,
    evaluate,
    load_rules,
    severity_of,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    max_calls: int
    names: list[str] = field(default_factory=list)
    ratio: float = 0.5


def _registry() -> CheckRegistry:
    registry = CheckRegistry()

    @registry.register("too-busy", "service", Limits)
    def too_busy(service, options, context):
        """A service called more than allowed."""
        if service["calls"] > options.max_calls:
            yield Hit(f"{service['name']} took {service['calls']} calls", ("calls",))

    @registry.register("named", "service")
    def named(service, options, context):
        if service["name"].startswith("legacy-"):
            yield Hit("legacy name")

    return registry


def _pack(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_check_name_is_registered_once():
    registry = _registry()
    with pytest.raises(ValueError, match="registered already"):
        registry.register("named", "service")(lambda s, o, c: ())
    with pytest.raises(ValueError, match="applies_to"):
        registry.register("other", "planet")


def test_rules_become_findings_with_subject_place_owner_and_pack(tmp_path):
    pack = _pack(
        tmp_path,
        "pack: load\nrules:\n"
        "  - {id: busy, check: too-busy, severity: warn, options: {max_calls: 10}}\n"
        "  - {id: named, severity: info}\n",
    )
    rules = load_rules([pack], _registry())
    subjects = {
        "service": [
            Subject(
                "service",
                "orders",
                {"name": "orders", "calls": 11},
                "team-a",
                "retail",
                "cat.yaml",
                lambda path: (7, 3),
            ),
            Subject("service", "legacy-tills", {"name": "legacy-tills", "calls": 2}),
        ]
    }
    result = evaluate(rules.active(), subjects, Context(now=NOW))
    assert [(f.rule, f.severity, f.subject) for f in result.findings] == [
        ("busy", "warning", "orders"),
        ("named", "info", "legacy-tills"),
    ]
    busy = result.findings[0]
    assert (busy.message, busy.path, busy.line, busy.column) == (
        "orders took 11 calls",
        ("calls",),
        7,
        3,
    )
    assert (busy.team, busy.system, busy.source, busy.pack) == (
        "team-a",
        "retail",
        "cat.yaml",
        "load",
    )
    assert result.evaluated == {("team-a", "retail"): [2, 1], (None, None): [2, 1]}
    # The fingerprint is the rule, subject and place: a new message keeps it.
    assert busy.fingerprint != result.findings[1].fingerprint
    assert busy.fingerprint == type(busy)(**{**busy.__dict__, "message": "x"}).fingerprint


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("{id: a, check: nowhere, severity: error}", "rule a: no check named 'nowhere'"),
        ("{id: a, check: named, severity: fatal}", "rule a: severity 'fatal' is not one of"),
        ("{id: a, check: named}", "rule a: a severity is required"),
        (
            "{id: a, check: named, severity: error, applies_to: edge}",
            "rule a: check named applies to service, not 'edge'",
        ),
        (
            "{id: a, check: named, severity: error, options: {x: 1}}",
            "rule a: the check takes no options",
        ),
        ("{id: a, check: too-busy, severity: error}", r"rule a: options \['max_calls'\] are"),
        (
            "{id: a, check: too-busy, severity: error, options: {max_calls: many}}",
            "rule a: option max_calls: 'many' is not int",
        ),
        (
            "{id: a, check: too-busy, severity: error, options: {max_calls: 1, nmes: [x]}}",
            r"rule a: unknown options \['nmes'\]",
        ),
        (
            "{id: a, check: too-busy, severity: error, options: {max_calls: 1, names: [1]}}",
            "rule a: option names: 1 is not str",
        ),
        (
            "{id: a, check: too-busy, severity: error, options: {max_calls: true}}",
            "option max_calls: True is not int",
        ),
        (
            "{id: a, check: named, severity: error, when: always}",
            r"rule a: unknown keys \['when'\]",
        ),
    ],
)
def test_a_rule_that_does_not_fit_fails_with_the_file_and_rule(tmp_path, rule, error):
    pack = _pack(tmp_path, f"pack: p\nrules:\n  - {rule}\n")
    with pytest.raises(PolicyError, match=error) as raised:
        load_rules([pack], _registry())
    assert str(raised.value).startswith(str(pack))


def test_pack_shape_errors_name_the_file(tmp_path):
    cases = {
        "a.yaml": ("rules: []\n", "'pack' must name the pack"),
        "b.yaml": ("pack: b\nrules: {a: 1}\n", "'rules' must be a list"),
        "c.yaml": ("pack: c\nrules:\n  - just text\n", r"rules\[0\]: a rule is a mapping"),
        "d.yaml": ("pack: d\nrules: [\n", "line"),
        "e.yaml": ("pack: e\nextra: 1\nrules: []\n", r"unknown keys \['extra'\]"),
    }
    for name, (text, error) in cases.items():
        with pytest.raises(PolicyError, match=error) as raised:
            load_rules([_pack(tmp_path, text, name)], _registry())
        assert name in str(raised.value)


def test_a_rule_id_twice_is_refused_unless_a_users_pack_replaces_a_builtin(tmp_path):
    registry = _registry()
    first = _pack(
        tmp_path, "pack: one\nrules:\n  - {id: n, check: named, severity: info}\n", "one.yaml"
    )
    second = _pack(
        tmp_path, "pack: two\nrules:\n  - {id: n, check: named, severity: error}\n", "two.yaml"
    )
    with pytest.raises(PolicyError, match="defined twice"):
        load_rules([first, second], registry)
    rules = load_rules([first], registry)
    load_rules([second], registry, into=rules, replace=True)
    assert rules.rules["n"].severity == "error"
    assert rules.rules["n"].pack == "two"


def test_a_disabled_rule_is_not_evaluated(tmp_path):
    pack = _pack(
        tmp_path, "pack: p\nrules:\n  - {id: n, check: named, severity: info, enabled: false}\n"
    )
    rules = load_rules([pack], _registry())
    subjects = {"service": [Subject("service", "legacy-x", {"name": "legacy-x"})]}
    assert evaluate(rules.active(), subjects, Context(now=NOW)).findings == []


def test_a_failing_check_is_named_with_its_rule_and_subject(tmp_path):
    registry = CheckRegistry()

    @registry.register("broken", "service")
    def broken(service, options, context):
        raise KeyError("calls")

    pack = _pack(tmp_path, "pack: p\nrules:\n  - {id: b, check: broken, severity: info}\n")
    rules = load_rules([pack], registry)
    with pytest.raises(CheckFailed, match=r"rule b .* on service orders: KeyError"):
        evaluate(rules.active(), {"service": [Subject("service", "orders", {})]}, Context(now=NOW))


def test_severities_and_their_order():
    assert [severity_of(v) for v in ("ERROR", "warn", 1, "information", 3)] == [
        "error",
        "warning",
        "warning",
        "info",
        "hint",
    ]
    with pytest.raises(PolicyError):
        severity_of(True)
    assert at_or_above("error", "warning") and not at_or_above("info", "warning")


def test_options_convert_what_yaml_reads_differently():
    built = build_options(Limits, {"max_calls": 3, "ratio": 1})
    assert built == Limits(3, [], 1.0) and isinstance(built.ratio, float)


def test_every_builtin_pack_loads_and_every_builtin_check_is_used_and_documented():
    from policies.engine import CHECKS, default_rules

    rules = default_rules()
    packs = {Path(p).stem for p in rules.packs}
    assert {
        "versioning",
        "drift",
        "contract-quality",
        "security",
        "breaking",
        "dependencies",
        "service-levels",
    } <= packs
    assert len(builtin_pack_files()) == len(packs)
    used = {rule.check.name for rule in rules.rules.values()}
    assert {check.name for check in CHECKS} == used
    docs = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text()
    undocumented = [c.name for c in CHECKS if f"`{c.name}`" not in docs]
    undocumented += [r for r in rules.rules if f"`{r}`" not in docs]
    assert not undocumented, f"not in docs/policies.md: {undocumented}"


def test_a_contract_files_operations_are_read_when_asked_as_the_collector_reads_them(tmp_path):
    from collectors import openapi
    from policies.subjects import read_contract_file
    from tests.conftest import corpus

    path = corpus("openapi", "v3.0_petstore-expanded.json")
    doc, _ = read_contract_file(path)
    assert doc.given_operations is None
    records = list(openapi.read(openapi.parse(path.read_bytes(), str(path)), doc.content_hash))
    (contract,) = [r for r in records if not isinstance(r, openapi.Operation)]
    assert doc.operations == [r for r in records if isinstance(r, openapi.Operation)]
    assert (doc.spec_version, doc.title, doc.version, doc.servers) == (
        contract.spec_version,
        contract.title,
        contract.version,
        contract.servers,
    )
