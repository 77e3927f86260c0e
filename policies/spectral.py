"""A user's Spectral ruleset (``.spectral.yaml`` or ``.spectral.json``) as Clew rules.

Read: ``extends`` (``spectral:oas``, as a name or ``[spectral:oas, recommended|all|off]``: the
rules of Clew's contract-quality pack, and a warning naming the ones Clew does not implement),
``aliases`` (``#Name`` in a ``given``), ``formats`` and ``rules``. A rule is ``description``,
``message`` (``{{error}}``, ``{{property}}``, ``{{path}}``, ``{{value}}``, ``{{description}}``),
``given`` (JSONPath, one or a list), ``then`` (one or a list of ``field`` — a name, a dotted
path or ``@key`` — and ``function`` with ``functionOptions``), ``severity``, ``formats`` and
``resolved``; a rule given as a severity alone (or ``off``, ``false``, ``true``) adjusts an
extended one. Functions: truthy, falsy, defined, undefined, pattern, enumeration, length,
casing, schema (JSON Schema through ``jsonschema``), alphabetical.

JSONPath follows JSONPath-Plus, Spectral's: ``$``, ``.name``, ``['name']``, ``[n]``, ``*``,
``..``, unions ``[a,b]`` and filters ``[?(…)]`` over ``@``, ``@.a.b``, ``@['a']``,
``@property``, literals, ``==``/``===``, ``!=``/``!==``, ``<``, ``<=``, ``>``, ``>=``,
``&&``, ``||``, ``!`` and parentheses. A ruleset that cannot be used fails with a PolicyError
naming the file and the rule.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from policies.engine import (
    CHECKS,
    Check,
    CheckRegistry,
    Context,
    Hit,
    NoOptions,
    PolicyError,
    Rule,
    RuleSet,
    builtin_pack_files,
    load_rules,
    read_policy_file,
    severity_of,
)
from policies.subjects import ContractDoc

#: Spectral's oas rules Clew does not implement: named when a ruleset extends spectral:oas.
NOT_IMPLEMENTED = (
    "oas2-discriminator",
    "oas2-operation-formData-consume-check",
    "oas2-schema",
    "oas3-examples-value-or-externalValue",
    "oas3-links-parameters-expression",
    "oas3-schema",
    "oas3-server-variables",
)
_FORMATS = {"oas2", "oas3", "oas3_0", "oas3.0", "oas3_1", "oas3.1"}
_RULE_KEYS = {"description", "message", "given", "then", "severity", "formats", "resolved"}
_RULE_KEYS |= {"recommended", "documentationUrl", "type", "tags"}
_FUNCTIONS = {"truthy", "falsy", "defined", "undefined", "pattern", "enumeration", "length"}
_FUNCTIONS |= {"casing", "schema", "alphabetical"}
_MISSING = object()


@dataclass
class SpectralRuleset:
    """A Spectral ruleset read: its rules, and what Clew could not take from it."""

    rules: RuleSet
    warnings: list[str] = field(default_factory=list)


def load_ruleset(path: Path, registry: CheckRegistry = CHECKS) -> SpectralRuleset:
    """The rules of the Spectral ruleset at ``path``."""
    data = read_policy_file(path, "a ruleset")
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a Spectral ruleset is a mapping with 'rules' or 'extends'")
    result = SpectralRuleset(RuleSet())
    _extend(path, data.get("extends"), result, registry)
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise PolicyError(f"{path}: 'aliases' must be a mapping")
    formats = _formats(data.get("formats"), f"{path}: ")
    rules = data.get("rules") or {}
    if not isinstance(rules, dict):
        raise PolicyError(f"{path}: 'rules' must be a mapping of rule names to rules")
    for name, definition in rules.items():
        where = f"{path}: rule {name}: "
        if not isinstance(definition, dict):
            _adjust(result.rules, str(name), definition, where)
            continue
        result.rules.rules[str(name)] = _rule(str(name), definition, formats, aliases, path, where)
    result.rules.packs.append(str(path))
    return result


def _extend(path: Path, extends: Any, result: SpectralRuleset, registry: CheckRegistry) -> None:
    if extends is None:
        return
    items = extends if isinstance(extends, list) else [extends]
    if len(items) == 2 and isinstance(items[0], str) and items[1] in ("recommended", "all", "off"):
        items = [items]  # [spectral:oas, all], not a list of two rulesets
    for item in items:
        name, mode = (item, "recommended") if isinstance(item, str) else (None, None)
        if isinstance(item, list) and len(item) == 2:
            name, mode = item
        if name != "spectral:oas" or mode not in ("recommended", "all", "off"):
            raise PolicyError(
                f"{path}: extends {item!r}: only spectral:oas (recommended, all or off) is read"
            )
        import policies.checks  # noqa: F401  (registers the contract-quality checks)

        pack = next(p for p in builtin_pack_files() if p.stem == "contract-quality")
        for rule in load_rules([pack], registry).rules.values():
            enabled = {"recommended": rule.enabled, "all": True, "off": False}[mode]
            result.rules.rules[rule.id] = _replace(rule, enabled=enabled)
        result.rules.packs.append(str(pack))
        result.warnings.append(
            "spectral:oas rules Clew does not implement, not run: " + ", ".join(NOT_IMPLEMENTED)
        )


def _replace(rule: Rule, **changes: Any) -> Rule:
    values = {**rule.__dict__, **changes}
    return Rule(**values)


def _adjust(rules: RuleSet, name: str, value: Any, where: str) -> None:
    """A rule given as a severity (or on/off) alone: it adjusts an extended rule."""
    if name not in rules.rules:
        raise PolicyError(f"{where}adjusts no rule of the rulesets it extends")
    rule = rules.rules[name]
    if value is False or value == "off" or value == -1:
        rules.rules[name] = _replace(rule, enabled=False)
    elif value is True:
        rules.rules[name] = _replace(rule, enabled=True)
    else:
        rules.rules[name] = _replace(rule, severity=severity_of(value, where), enabled=True)


def _formats(value: Any, where: str) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}'formats' must be a list of names")
    unknown = set(value) - _FORMATS
    if unknown:
        raise PolicyError(f"{where}formats {sorted(unknown)} are not read ({sorted(_FORMATS)})")
    return {v.replace(".", "_") for v in value}


def _rule(
    name: str, definition: dict, formats: set[str] | None, aliases: dict, path: Path, where: str
) -> Rule:
    unknown = set(definition) - _RULE_KEYS
    if unknown:
        raise PolicyError(f"{where}unknown keys {sorted(map(str, unknown))}")
    severity_value = definition.get("severity", "warn")
    enabled = severity_value not in ("off", -1, False)
    severity = severity_of("warn" if not enabled else severity_value, where)
    given = definition.get("given")
    givens = given if isinstance(given, list) else [given]
    if not givens or not all(isinstance(g, str) and g for g in givens):
        raise PolicyError(f"{where}'given' must be a JSONPath or a list of them")
    paths = [p for g in givens for p in _expand(g, aliases, where)]
    compiled = [compile_path(p, where) for p in paths]
    then = definition.get("then")
    thens = then if isinstance(then, list) else [then]
    actions = [_action(t, where) for t in thens]
    rule_formats = (
        _formats(definition.get("formats"), where) if "formats" in definition else formats
    )
    resolved = definition.get("resolved", True)
    if not isinstance(resolved, bool):
        raise PolicyError(f"{where}'resolved' must be true or false")
    message = definition.get("message")
    description = definition.get("description", "")
    if not isinstance(description, str) or (message is not None and not isinstance(message, str)):
        raise PolicyError(f"{where}'description' and 'message' must be text")

    def run(contract: ContractDoc, options: Any, context: Context) -> Iterator[Hit]:
        if not _format_applies(contract, rule_formats):
            return
        document = resolved_document(contract.document) if resolved else contract.document
        for path_ in compiled:
            for location, value in path_(document):
                for action in actions:
                    for at, error in action(location, value):
                        text = _message(message or "{{error}}", error, at, _value_at(document, at))
                        yield Hit(text or description or name, at)

    check = Check(name, "contract", run, NoOptions, description)
    return Rule(name, check, severity, NoOptions(), path.stem, str(path), description, enabled)


def _expand(given: str, aliases: dict, where: str, depth: int = 0) -> list[str]:
    if not given.startswith("#"):
        return [given]
    match = re.match(r"#([A-Za-z0-9_-]+)(.*)$", given, re.S)
    if match is None or match.group(1) not in aliases or depth > 8:
        raise PolicyError(f"{where}alias in {given!r} is not defined")
    targets = aliases[match.group(1)]
    targets = targets if isinstance(targets, list) else [targets]
    return [
        e
        for t in targets
        if isinstance(t, str)
        for e in _expand(t + match.group(2), aliases, where, depth + 1)
    ]


def _format_applies(contract: ContractDoc, formats: set[str] | None) -> bool:
    version = contract.openapi
    if version is None:
        return False  # Spectral lints no other document with an oas ruleset
    if formats is None:
        return True
    names = {"2.0": {"oas2"}, "3.0": {"oas3", "oas3_0"}, "3.1": {"oas3", "oas3_1"}}
    return bool(names.get(version, {"oas3"}) & formats)


def _message(template: str, error: str, at: tuple, value: Any) -> str:
    prop = str(at[-1]) if at else ""
    replacements = {
        "error": error,
        "property": prop,
        "path": "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in at),
        "value": value if isinstance(value, str) else json.dumps(value, default=str),
    }
    return re.sub(
        r"\{\{\s*(\w+)\s*\}\}", lambda m: str(replacements.get(m.group(1), m.group(0))), template
    )


def _value_at(document: Any, at: tuple) -> Any:
    node = document
    for part in at:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return None
    return node


# Resolution --------------------------------------------------------------------------------

_RESOLVED: dict[int, tuple[Any, Any]] = {}


def resolved_document(document: Any) -> Any:
    """``document`` with every local ``$ref`` replaced by what it points at (a reference that
    leads back into itself, dangles or leaves the document stays as written). Kept for the
    last document asked about."""
    kept = _RESOLVED.get(id(document))
    if kept is not None and kept[0] is document:
        return kept[1]
    done: dict[str, Any] = {}

    def target(ref: str) -> Any:
        node: Any = document
        for token in ref[2:].split("/") if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return _MISSING
        return node

    def walk(node: Any, active: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#") and ref not in active:
                if ref in done:
                    return done[ref]
                found = target(ref)
                if found is not _MISSING:
                    result = walk(found, active | {ref})
                    done[ref] = result
                    return result
            return {k: walk(v, active) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, active) for v in node]
        return node

    result = walk(document, frozenset())
    _RESOLVED.clear()
    _RESOLVED[id(document)] = (document, result)
    return result


# JSONPath ----------------------------------------------------------------------------------

Located = tuple[tuple[str | int, ...], Any]
_SEGMENT = re.compile(
    r"""\.\.|\.(?P<name>[A-Za-z0-9_$@\-]+|\*)|\[(?P<bracket>\?\(.*?\)|[^\]]*)\]""", re.S
)


def compile_path(text: str, where: str = "") -> Callable[[Any], Iterator[Located]]:
    """A JSONPath as a function from a document to the (path, value) of each node it names."""
    if not text.startswith("$"):
        raise PolicyError(f"{where}JSONPath {text!r} must start with $")
    steps: list[tuple[str, Any]] = []
    position = 1
    descend = False
    while position < len(text):
        match = _filter_or_segment(text, position)
        if match is None:
            raise PolicyError(f"{where}JSONPath {text!r}: cannot read at {text[position:]!r}")
        segment, position = match
        if segment == "..":
            descend = True
            if position < len(text) and text[position] not in ".[":
                name_match = re.match(r"[A-Za-z0-9_$@\-]+|\*", text[position:])
                if name_match is None:
                    raise PolicyError(f"{where}JSONPath {text!r}: cannot read after '..'")
                steps.append(("descend", None))
                steps.append(_selector(name_match.group(), where))
                position += name_match.end()
                descend = False
            continue
        if descend:
            steps.append(("descend", None))
            descend = False
        steps.append(_selector(segment, where))
    if descend:
        raise PolicyError(f"{where}JSONPath {text!r} ends with '..'")

    def evaluate(document: Any) -> Iterator[Located]:
        current: list[tuple[tuple, Any, Any]] = [((), document, None)]
        for kind, argument in steps:
            following: list[tuple[tuple, Any, Any]] = []
            if kind == "descend":
                for path, value, key in current:
                    following.extend(_descendants(path, value, key))
            else:
                for path, value, _ in current:
                    following.extend(argument(path, value))
            current = following
        seen: set[tuple] = set()
        for path, value, _ in current:
            if path not in seen:
                seen.add(path)
                yield path, value

    return evaluate


def _filter_or_segment(text: str, position: int) -> tuple[str, int] | None:
    if text.startswith("..", position):
        return "..", position + 2
    if text.startswith("[?(", position):
        depth = 0
        quote = None
        for index in range(position + 2, len(text)):
            char = text[index]
            if quote:
                if char == quote and text[index - 1] != "\\":
                    quote = None
            elif char in "'\"":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0 and text.startswith(")]", index):
                    return text[position + 1 : index + 1], index + 2
        return None
    match = _SEGMENT.match(text, position)
    if match is None:
        return None
    return (match.group("name") if match.group("name") is not None else match.group(0)[1:-1]), (
        match.end()
    )


def _children(value: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(value, dict):
        yield from value.items()
    elif isinstance(value, list):
        yield from enumerate(value)


def _descendants(path: tuple, value: Any, key: Any) -> Iterator[tuple[tuple, Any, Any]]:
    """The node and every node under it (what the next step applies to after ``..``)."""
    stack = [(path, value, key)]
    while stack:
        item = stack.pop()
        yield item
        children = list(_children(item[1]))
        for child_key, child in reversed(children):
            if isinstance(child, dict | list):
                stack.append(((*item[0], child_key), child, child_key))
            else:
                stack.append(((*item[0], child_key), child, child_key))


def _selector(segment: str, where: str) -> tuple[str, Callable]:
    if segment.startswith("?("):
        predicate = compile_filter(segment[2:-1], where)

        def select_filter(path: tuple, value: Any) -> Iterator[tuple[tuple, Any, Any]]:
            for key, child in _children(value):
                if predicate(child, key):
                    yield (*path, key), child, key

        return "select", select_filter
    if segment == "*":
        return "select", lambda path, value: (((*path, k), v, k) for k, v in _children(value))
    names: list[str | int] = []
    for part in _split_union(segment):
        part = part.strip()
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            names.append(part[1:-1])
        elif re.fullmatch(r"-?\d+", part):
            names.append(int(part))
        elif part == "*":
            return _selector("*", where)
        elif part:
            names.append(part)
        else:
            raise PolicyError(f"{where}JSONPath segment [{segment}] is empty")

    def select_names(path: tuple, value: Any) -> Iterator[tuple[tuple, Any, Any]]:
        for name in names:
            if isinstance(value, dict) and str(name) in value:
                yield (*path, str(name)), value[str(name)], str(name)
            elif (
                isinstance(value, list)
                and isinstance(name, int)
                and -len(value) <= name < len(value)
            ):
                index = name % len(value)
                yield (*path, index), value[index], index

    return "select", select_names


def _split_union(segment: str) -> list[str]:
    parts, current, quote = [], "", None
    for char in segment:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<op>===|!==|==|!=|<=|>=|&&|\|\||[<>!()])|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<ref>@property|@path|@(?:(?:\.[A-Za-z_$][\w$-]*|\[(?:'[^']*'|\"[^\"]*\"|\d+)\]))*)"
    r"|(?P<word>true|false|null|undefined))"
)


def compile_filter(expression: str, where: str) -> Callable[[Any, Any], bool]:
    """A JSONPath-Plus filter expression as a predicate of (node, its key)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _FILTER_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise PolicyError(f"{where}filter {expression!r}: cannot read at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    parser = _FilterParser(tokens, expression, where)
    tree = parser.expression()
    if parser.index != len(tokens):
        raise PolicyError(f"{where}filter {expression!r}: unexpected {tokens[parser.index][1]!r}")
    return lambda node, key: _truth(_evaluate(tree, node, key))


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]], expression: str, where: str) -> None:
        self.tokens, self.index, self.expression_text, self.where = tokens, 0, expression, where

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise PolicyError(f"{self.where}filter {self.expression_text!r} ends too early")
        self.index += 1
        return self.tokens[self.index - 1]

    def expression(self) -> Any:
        left = self.conjunction()
        while self.peek() == "||":
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.comparison()
        while self.peek() == "&&":
            self.take()
            left = ("and", left, self.comparison())
        return left

    def comparison(self) -> Any:
        left = self.unary()
        if self.peek() in ("===", "==", "!==", "!=", "<", "<=", ">", ">="):
            operator = self.take()[1]
            return ("compare", operator, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        if self.peek() == "(":
            self.take()
            inner = self.expression()
            if self.take()[1] != ")":
                raise PolicyError(f"{self.where}filter {self.expression_text!r}: missing ')'")
            return inner
        kind, text = self.take()
        if kind == "str":
            return ("literal", json.loads('"' + text[1:-1].replace('\\"', '"') + '"'))
        if kind == "num":
            return ("literal", float(text) if "." in text else int(text))
        if kind == "word":
            return ("literal", {"true": True, "false": False, "null": None}.get(text, _MISSING))
        if kind == "ref":
            if text == "@property":
                return ("property",)
            parts = re.findall(
                r"\.([A-Za-z_$][\w$-]*)|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\d+)\]", text
            )
            keys = [a or b or c or int(d) for a, b, c, d in parts]
            return ("node", keys)
        raise PolicyError(f"{self.where}filter {self.expression_text!r}: unexpected {text!r}")


def _evaluate(tree: Any, node: Any, key: Any) -> Any:
    kind = tree[0]
    if kind == "literal":
        return tree[1]
    if kind == "property":
        return key
    if kind == "node":
        value = node
        for part in tree[1]:
            if (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and part < len(value)
            ):
                value = value[part]
            elif isinstance(value, list | str) and part == "length":
                value = len(value)
            else:
                return _MISSING
        return value
    if kind == "not":
        return not _truth(_evaluate(tree[1], node, key))
    if kind == "and":
        return _truth(_evaluate(tree[1], node, key)) and _truth(_evaluate(tree[2], node, key))
    if kind == "or":
        return _truth(_evaluate(tree[1], node, key)) or _truth(_evaluate(tree[2], node, key))
    _, operator, left, right = tree
    a, b = _evaluate(left, node, key), _evaluate(right, node, key)
    if operator in ("==", "==="):
        return _equal(a, b, strict=operator == "===")
    if operator in ("!=", "!=="):
        return not _equal(a, b, strict=operator == "!==")
    if not ((isinstance(a, int | float | str) and type(a) is type(b)) or _numbers(a, b)):
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator]


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))


def _equal(a: Any, b: Any, *, strict: bool) -> bool:
    if not strict and {a is None or a is _MISSING, b is None or b is _MISSING} == {True}:
        return True  # null == undefined
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if _numbers(a, b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        return a is b
    return a == b


def _truth(value: Any) -> bool:
    if value is _MISSING or value is None:
        return False
    if isinstance(value, dict | list):
        return True
    return bool(value)


# Then: fields and functions ----------------------------------------------------------------


def _action(then: Any, where: str) -> Callable[[tuple, Any], Iterator[tuple[tuple, str]]]:
    if not isinstance(then, dict):
        raise PolicyError(f"{where}'then' must be a mapping or a list of them")
    unknown = set(then) - {"field", "function", "functionOptions"}
    if unknown:
        raise PolicyError(f"{where}then: unknown keys {sorted(map(str, unknown))}")
    name = then.get("function")
    if name not in _FUNCTIONS:
        raise PolicyError(
            f"{where}function {name!r} is not one Clew runs ({', '.join(sorted(_FUNCTIONS))})"
        )
    function = _function(name, then.get("functionOptions") or {}, where)
    target = then.get("field")
    if target is not None and not isinstance(target, str):
        raise PolicyError(f"{where}'field' must be text")

    def act(path: tuple, value: Any) -> Iterator[tuple[tuple, str]]:
        if target is None:
            targets = [(path, value, path[-1] if path else None, True)]
        elif target == "@key":
            targets = [
                ((*path, k), k, k, True) for k, _ in _children(value) if isinstance(value, dict)
            ]
        else:
            node, at, present = value, path, True
            for part in _field_parts(target):
                if (isinstance(node, dict) and part in node) or (
                    isinstance(node, list) and isinstance(part, int) and part < len(node)
                ):
                    node, at = node[part], (*at, part)
                else:
                    node, present = _MISSING, False
                    break
            targets = [(at, node, at[-1] if at else None, present)]
        for at, item, _, _ in targets:
            for error in function(item):
                yield at, error

    return act


def _field_parts(text: str) -> list[str | int]:
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    parts: list[str | int] = []
    for match in re.finditer(r"\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]|([^.\[\]]+)", text):
        quoted, double, index, plain = match.groups()
        parts.append(int(index) if index is not None else quoted or double or plain)
    return parts


def _function(name: str, options: Any, where: str) -> Callable[[Any], Iterator[str]]:
    if not isinstance(options, dict):
        raise PolicyError(f"{where}'functionOptions' must be a mapping")
    shown = lambda value: "the value" if value is _MISSING else json.dumps(value, default=str)  # noqa: E731
    if name == "truthy":
        return lambda value: iter(() if _truth(value) else ("must be truthy",))
    if name == "falsy":
        return lambda value: iter(("must be falsy",) if _truth(value) else ())
    if name == "defined":
        return lambda value: iter(("must be defined",) if value is _MISSING else ())
    if name == "undefined":
        return lambda value: iter(() if value is _MISSING else ("must be undefined",))
    if name == "pattern":
        return _pattern(options, where)
    if name == "enumeration":
        values = options.get("values")
        if not isinstance(values, list):
            raise PolicyError(f"{where}enumeration needs functionOptions.values, a list")

        def enumeration(value: Any) -> Iterator[str]:
            if value is not _MISSING and not isinstance(value, dict | list) and value not in values:
                yield f"{shown(value)} must be equal to one of the allowed values: " + ", ".join(
                    json.dumps(v) for v in values
                )

        return enumeration
    if name == "length":
        low, high = options.get("min"), options.get("max")
        if low is None and high is None:
            raise PolicyError(f"{where}length needs functionOptions.min or max")

        def length(value: Any) -> Iterator[str]:
            if isinstance(value, str | list | dict):
                size = len(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                size = value
            else:
                return
            if low is not None and size < low:
                yield f"must be longer than {low}"
            if high is not None and size > high:
                yield f"must be shorter than {high}"

        return length
    if name == "casing":
        return _casing(options, where)
    if name == "alphabetical":
        keyed_by = options.get("keyedBy")

        def alphabetical(value: Any) -> Iterator[str]:
            items = list(value) if isinstance(value, dict | list) else None
            if items is None or len(items) < 2:
                return
            if keyed_by is not None:
                items = [i.get(keyed_by) if isinstance(i, dict) else None for i in items]
            if not all(isinstance(i, str | int | float) for i in items):
                return
            for a, b in itertools.pairwise(items):
                if type(a) is type(b) and a > b:
                    yield "must be sorted alphabetically"
                    return

        return alphabetical
    schema = options.get("schema")
    if not isinstance(schema, dict | bool):
        raise PolicyError(f"{where}schema needs functionOptions.schema, a JSON Schema")
    try:
        validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft7Validator)
        validator_class.check_schema(schema)
        validator = validator_class(schema)
    except jsonschema.SchemaError as error:
        raise PolicyError(f"{where}functionOptions.schema: {error.message}") from error

    def validate(value: Any) -> Iterator[str]:
        if value is _MISSING:
            if options.get("allowUndefined"):
                return
            yield "must be defined"
            return
        for error in validator.iter_errors(value):
            yield error.message

    return validate


def _pattern(options: dict, where: str) -> Callable[[Any], Iterator[str]]:
    def compiled(key: str) -> re.Pattern | None:
        text = options.get(key)
        if text is None:
            return None
        if not isinstance(text, str):
            raise PolicyError(f"{where}pattern's {key} must be text")
        flags = 0
        slashed = re.fullmatch(r"/(.*)/([a-z]*)", text, re.S)
        if slashed:
            text = slashed.group(1)
            flags = re.I if "i" in slashed.group(2) else 0
            flags |= re.M if "m" in slashed.group(2) else 0
        try:
            return re.compile(text, flags)
        except re.error as error:
            raise PolicyError(f"{where}pattern's {key} {text!r}: {error}") from error

    match, not_match = compiled("match"), compiled("notMatch")
    if match is None and not_match is None:
        raise PolicyError(f"{where}pattern needs functionOptions.match or notMatch")

    def pattern(value: Any) -> Iterator[str]:
        if not isinstance(value, str):
            return
        if match is not None and not match.search(value):
            yield f'"{value}" must match the pattern "{match.pattern}"'
        if not_match is not None and not_match.search(value):
            yield f'"{value}" must not match the pattern "{not_match.pattern}"'

    return pattern


_CASES = {
    "flat": r"[a-z][a-z{d}]*",
    "camel": r"[a-z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "pascal": r"[A-Z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "kebab": r"[a-z][a-z{d}]*(?:-[a-z{d}]+)*",
    "cobol": r"[A-Z][A-Z{d}]*(?:-[A-Z{d}]+)*",
    "snake": r"[a-z][a-z{d}]*(?:_[a-z{d}]+)*",
    "macro": r"[A-Z][A-Z{d}]*(?:_[A-Z{d}]+)*",
}


def _casing(options: dict, where: str) -> Callable[[Any], Iterator[str]]:
    kind = options.get("type")
    if kind not in _CASES:
        raise PolicyError(f"{where}casing's type must be one of {', '.join(_CASES)}")
    digits = "" if options.get("disallowDigits") else "0-9"
    word = _CASES[kind].replace("{d}", digits)
    separator = options.get("separator") or {}
    if not isinstance(separator, dict):
        raise PolicyError(f"{where}casing's separator must be a mapping")
    char = separator.get("char")
    if char is not None:
        if not isinstance(char, str) or len(char) != 1:
            raise PolicyError(f"{where}casing's separator.char must be one character")
        lead = re.escape(char) + "?" if separator.get("allowLeading") else ""
        expression = rf"^{lead}{word}(?:{re.escape(char)}{word})*$"
    else:
        expression = rf"^{word}$"
    matcher = re.compile(expression)

    def casing(value: Any) -> Iterator[str]:
        if isinstance(value, str) and value and not matcher.match(value):
            yield f'"{value}" must be {kind} case'

    return casing
