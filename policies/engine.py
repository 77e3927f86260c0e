"""The policy engine: checks registered by name, rules that configure them read from YAML packs,
and the evaluation that turns rules and subjects into findings.

A **check** is a Python function registered under a name (``@CHECKS.register``): it is given one
subject of the kind it applies to (a contract, an operation, an endpoint, an edge, a service or
the whole graph), its options and the evaluation's context, and yields ``Hit``s. A **rule**
(in a pack) names a check, a severity and the options it runs with; the engine turns each hit
into a ``Finding`` that carries the rule, its severity and the subject's name, team and system.

Loading is strict: an unknown check, a severity that is not one of ``SEVERITIES``, a subject
kind the check does not take, or options that do not fit the check's ``Options`` all fail with
the file and the rule's id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from collectors import safe_yaml

#: From most to least severe; SARIF's levels are error, warning, note and none.
SEVERITIES = ("error", "warning", "info", "hint")
#: Other names for them: Spectral's ``warn``, and its numbers (0 is error).
_SEVERITY_ALIASES = {"warn": "warning", "information": "info", 0: "error", 1: "warning"}
_SEVERITY_ALIASES |= {2: "info", 3: "hint"}
SUBJECTS = ("contract", "operation", "endpoint", "edge", "service", "graph")
#: The largest pack, waivers file or Spectral ruleset read, in bytes.
MAX_POLICY_FILE_BYTES = 1 << 20


class PolicyError(ValueError):
    """A pack, a rule or a waiver that cannot be used; the message names the file and the rule."""


def severity_of(value: object, where: str = "") -> str:
    """``value`` as one of ``SEVERITIES``; a PolicyError naming ``where`` when it is none."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in SEVERITIES:
            return lowered
        found = _SEVERITY_ALIASES.get(lowered)
    elif isinstance(value, int) and not isinstance(value, bool):
        found = _SEVERITY_ALIASES.get(value)
    else:
        found = None
    if found is None:
        raise PolicyError(f"{where}severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return found


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as severe as ``threshold`` or more."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


@dataclass(frozen=True)
class Hit:
    """What a check found on its subject: a message, and where in the subject's document it is
    (a JSON path: keys and indexes from the document's root) when the subject has one."""

    message: str
    path: tuple[str | int, ...] = ()
    #: A more precise subject than the one the check was given (an operation of a contract,
    #: an edge of the graph), with its kind and owners when they differ from the subject's.
    subject: str | None = None
    kind: str | None = None
    team: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class Finding:
    """One rule's finding on one subject."""

    rule: str
    severity: str
    subject_kind: str
    subject: str
    message: str
    path: tuple[str | int, ...] = ()
    source: str | None = None  # the file or URI of the subject's document
    line: int | None = None  # 1-based, in ``source``
    column: int | None = None
    team: str | None = None
    system: str | None = None
    pack: str | None = None

    @property
    def fingerprint(self) -> str:
        """The finding's identity across runs: its rule, subject and place, not its message
        (which carries counts that change) nor its severity (which a pack may change)."""
        parts = [self.rule, self.subject_kind, self.subject, *map(str, self.path)]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["path"] = list(self.path)
        row["fingerprint"] = self.fingerprint
        return row


class NoOptions:
    """The options of a check that takes none."""


CheckFunction = Callable[[Any, Any, "Context"], Iterable[Hit]]


@dataclass(frozen=True)
class Check:
    name: str
    applies_to: str
    function: CheckFunction
    options: type = NoOptions
    description: str = ""


class CheckRegistry:
    """Checks by name. A name is registered once: a second registration is refused."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(
        self, name: str, applies_to: str, options: type = NoOptions
    ) -> Callable[[CheckFunction], CheckFunction]:
        if applies_to not in SUBJECTS:
            raise ValueError(f"check {name!r}: applies_to must be one of {SUBJECTS}")
        if options is not NoOptions and not dataclasses.is_dataclass(options):
            raise TypeError(f"check {name!r}: options must be a dataclass")

        def decorate(function: CheckFunction) -> CheckFunction:
            self.add(Check(name, applies_to, function, options, (function.__doc__ or "").strip()))
            return function

        return decorate

    def add(self, check: Check) -> None:
        if check.name in self._checks:
            raise ValueError(f"a check named {check.name!r} is registered already")
        self._checks[check.name] = check

    def get(self, name: str) -> Check | None:
        return self._checks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(sorted(self._checks.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._checks)


#: The checks the built-in packs use, and any a user's code registers.
CHECKS = CheckRegistry()


@dataclass(frozen=True)
class Rule:
    id: str
    check: Check
    severity: str
    options: Any
    pack: str
    source: str  # the pack file
    description: str = ""
    #: Given: JSONPath the rule applies to (Spectral rulesets) - the check interprets it.
    enabled: bool = True


@dataclass
class RuleSet:
    """The rules to evaluate, by id; a later pack's rule of the same id replaces an earlier's."""

    rules: dict[str, Rule] = field(default_factory=dict)
    packs: list[str] = field(default_factory=list)
    #: What could not be taken over (a Spectral ruleset's rules Clew does not implement).
    warnings: list[str] = field(default_factory=list)

    def active(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.enabled]

    def table(self) -> dict[str, dict[str, Any]]:
        """Each rule's description, severity and pack, by id: what reports and the SARIF and
        JUnit renderers describe rules with."""
        return {
            rule.id: {"description": rule.description, "severity": rule.severity, "pack": rule.pack}
            for rule in self.rules.values()
        }

    def __len__(self) -> int:
        return len(self.active())


_RULE_KEYS = {"id", "check", "severity", "applies_to", "options", "description", "enabled"}
_PACK_KEYS = {"pack", "description", "rules"}


def builtin_pack_files() -> list[Path]:
    """The packs shipped with Clew (``policies/packs/*.yaml``), by name."""
    folder = resources.files("policies") / "packs"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")))


def pack_files(folder: Path) -> list[Path]:
    """A user's folder of packs: its ``*.yaml`` and ``*.yml`` files, by name."""
    if not folder.is_dir():
        raise PolicyError(f"{folder}: not a folder of rule packs")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rules(
    files: Sequence[Path],
    registry: CheckRegistry = CHECKS,
    *,
    into: RuleSet | None = None,
    replace: bool = False,
) -> RuleSet:
    """The rules of the packs in ``files``, added to ``into``. Two rules of one id in these
    files are refused; with ``replace``, a rule may replace one of ``into`` (a user's pack
    tightening a built-in rule), else that is refused too."""
    ruleset = into if into is not None else RuleSet()
    earlier = dict(ruleset.rules)
    seen: dict[str, str] = {}
    for path in files:
        for rule in _read_pack(path, registry):
            if rule.id in seen:
                raise PolicyError(
                    f"{path}: rule {rule.id}: defined twice (also in {seen[rule.id]})"
                )
            if rule.id in earlier and not replace:
                raise PolicyError(
                    f"{path}: rule {rule.id}: defined twice (also in {earlier[rule.id].source})"
                )
            seen[rule.id] = str(path)
            ruleset.rules[rule.id] = rule
        ruleset.packs.append(str(path))
    return ruleset


def default_rules(user_folder: Path | None = None, registry: CheckRegistry = CHECKS) -> RuleSet:
    """The built-in packs, then the packs in ``user_folder`` (which may replace built-in rules
    by id: another severity, other options, or ``enabled: false``)."""
    import policies.checks  # noqa: F401  (registers the built-in checks)

    ruleset = load_rules(builtin_pack_files(), registry)
    if user_folder is not None:
        load_rules(pack_files(user_folder), registry, into=ruleset, replace=True)
    return ruleset


def read_policy_file(path: Path, what: str) -> Any:
    """The data of a policy file (a pack, a waivers file, a Spectral ruleset): YAML through the
    safe reader, or JSON for a ``.json`` file, at most ``MAX_POLICY_FILE_BYTES``; a PolicyError
    naming the file, the position where there is one, and the reason."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot be read: {error.strerror or error}") from error
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise PolicyError(
            f"{path}: {len(raw):,} bytes; {what} is at most {MAX_POLICY_FILE_BYTES:,}"
        )
    if path.suffix == ".json":
        try:
            return json.loads(raw)
        except ValueError as error:
            raise PolicyError(f"{path}: invalid JSON: {error}") from error
    try:
        return safe_yaml.load(raw, str(path))
    except safe_yaml.YamlError as error:
        raise PolicyError(str(error)) from error


def _read_pack(path: Path, registry: CheckRegistry) -> list[Rule]:
    data = read_policy_file(path, "a pack")
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path}: a rule pack is a mapping with 'pack' and 'rules'")
    unknown = set(data) - _PACK_KEYS
    if unknown:
        raise PolicyError(f"{path}: unknown keys {sorted(map(str, unknown))}")
    name = data.get("pack")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{path}: 'pack' must name the pack")
    rules = data.get("rules")
    if not isinstance(rules, list):
        raise PolicyError(f"{path}: 'rules' must be a list")
    return [_rule(item, index, name, path, registry) for index, item in enumerate(rules)]


def _rule(item: object, index: int, pack: str, path: Path, registry: CheckRegistry) -> Rule:
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
        raise PolicyError(f"{path}: rules[{index}]: a rule is a mapping with an 'id'")
    rule_id = item["id"]
    where = f"{path}: rule {rule_id}: "
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise PolicyError(f"{where}unknown keys {sorted(map(str, unknown))}")
    check_name = item.get("check", rule_id)
    check = registry.get(check_name) if isinstance(check_name, str) else None
    if check is None:
        raise PolicyError(f"{where}no check named {check_name!r}")
    if "severity" not in item:
        raise PolicyError(f"{where}a severity is required")
    severity = severity_of(item["severity"], where)
    applies_to = item.get("applies_to", check.applies_to)
    if applies_to != check.applies_to:
        raise PolicyError(
            f"{where}check {check.name} applies to {check.applies_to}, not {applies_to!r}"
        )
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError(f"{where}'enabled' must be true or false")
    description = item.get("description", check.description)
    if not isinstance(description, str):
        raise PolicyError(f"{where}'description' must be text")
    options = build_options(check.options, item.get("options") or {}, where)
    return Rule(rule_id, check, severity, options, pack, str(path), description, enabled)


def build_options(kind: type, given: object, where: str = "") -> Any:
    """An instance of the options dataclass ``kind`` from the mapping ``given``: every key
    known, every value of its field's type, every field without a default given."""
    if kind is NoOptions:
        if given:
            raise PolicyError(f"{where}the check takes no options")
        return NoOptions()
    if not isinstance(given, Mapping):
        raise PolicyError(f"{where}'options' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(given) - set(fields)
    if unknown:
        raise PolicyError(
            f"{where}unknown options {sorted(map(str, unknown))}; known: {sorted(fields)}"
        )
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for name, value in given.items():
        values[name] = _typed(value, hints[name], f"{where}option {name}: ")
    missing = [
        n
        for n, f in fields.items()
        if n not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise PolicyError(f"{where}options {missing} are required")
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise PolicyError(f"{where}{error}") from error


def _typed(value: object, hint: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` (int, float, str, bool, their lists and
    tuples, mappings of them, unions and None), converted where YAML's reading differs from
    Python's (an int where a float is wanted, a list where a tuple is)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            try:
                return _typed(value, member, where)
            except PolicyError:
                continue
        raise PolicyError(f"{where}{value!r} is not {_type_text(hint)}")
    if hint is type(None):
        if value is None:
            return None
        raise PolicyError(f"{where}{value!r} is not null")
    if origin in (list, tuple, Sequence):
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise PolicyError(f"{where}{value!r} is not a list")
        member = args[0] if args else Any
        items = [_typed(v, member, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        if not isinstance(value, Mapping):
            raise PolicyError(f"{where}{value!r} is not a mapping")
        return {_typed(k, key_hint, where): _typed(v, value_hint, where) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(hint):
        return build_options(hint, value, where)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise PolicyError(f"{where}{value!r} is not {_type_text(hint)}")


def _type_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


@dataclass
class Subject:
    """Something rules apply to: its kind, its name (stable across runs: findings are known
    by it), the object the check reads, and who owns it."""

    kind: str
    name: str
    value: Any
    team: str | None = None
    system: str | None = None
    source: str | None = None  # the file its document came from
    locate: Callable[[tuple[str | int, ...]], tuple[int, int] | None] | None = None


class Context:
    """What checks may consult beyond their subject: the time of the evaluation, the window
    and, when evaluating the store, a connection and what is derived from it (computed once
    and kept: the inventory, the graph, the catalog)."""

    def __init__(self, *, now: Any, window: Any = None, conn: Any = None) -> None:
        self.now = now
        self.window = window
        self.conn = conn
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


class CheckFailed(RuntimeError):
    """A check raised: a defect in the check, named with its rule and subject."""


@dataclass
class Evaluation:
    """Findings, and for scorecards how many (rule, subject) pairs were evaluated and failed
    per (team, system)."""

    findings: list[Finding] = field(default_factory=list)
    evaluated: dict[tuple[str | None, str | None], list[int]] = field(default_factory=dict)
    rules: int = 0


def evaluate(
    rules: Iterable[Rule], subjects: Mapping[str, Sequence[Subject]], context: Context
) -> Evaluation:
    """Every active rule on every subject of the kind its check applies to."""
    result = Evaluation()
    for rule in rules:
        if not rule.enabled:
            continue
        result.rules += 1
        for subject in subjects.get(rule.check.applies_to, ()):
            try:
                hits = list(rule.check.function(subject.value, rule.options, context))
            except Exception as error:  # a defect: say which rule on which subject
                raise CheckFailed(
                    f"rule {rule.id} (check {rule.check.name}) failed on {subject.kind}"
                    f" {subject.name}: {type(error).__name__}: {error}"
                ) from error
            tally = result.evaluated.setdefault((subject.team, subject.system), [0, 0])
            tally[0] += 1
            tally[1] += bool(hits)
            for hit in hits:
                place = subject.locate(hit.path) if subject.locate and hit.path else None
                result.findings.append(
                    Finding(
                        rule=rule.id,
                        severity=rule.severity,
                        subject_kind=hit.kind or subject.kind,
                        subject=hit.subject or subject.name,
                        message=hit.message,
                        path=tuple(hit.path),
                        source=subject.source,
                        line=place[0] if place else None,
                        column=place[1] if place else None,
                        team=hit.team or subject.team,
                        system=hit.system or subject.system,
                        pack=rule.pack,
                    )
                )
    result.findings.sort(
        key=lambda f: (SEVERITIES.index(f.severity), f.rule, f.subject, tuple(map(str, f.path)))
    )
    return result
