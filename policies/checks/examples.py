"""Examples against their schemas: Spectral's ``oas2-valid-schema-example``,
``oas2-valid-media-example``, ``oas3-valid-schema-example`` and ``oas3-valid-media-example``.

Spectral reads the document with its references resolved (a circular one left as written) and
asks, of every object below a ``content``, ``headers`` or ``parameters`` key (OpenAPI 3; for a
schema also below ``components.schemas``) or below ``definitions``, ``parameters`` or
``responses`` (2.0): a schema with an ``example``, ``default`` (or 2.0's ``x-example``) must
accept them; a media type, parameter or header with a ``schema`` must accept its ``example`` or
each of its ``examples``. The schema is validated as Spectral's AJV does: its meta-schema first
(JSON Schema draft 4, or 2020-12 for OpenAPI 3.1), ``nullable`` (and 2.0's ``x-nullable``)
admitting null, ajv-formats' formats, the first error only (a failed ``anyOf`` or ``oneOf`` adds
each branch's), and no finding at all when a reference cannot be resolved (a cycle, a dangling
or external pointer). In a request, ``readOnly`` properties are not required; in a response,
``writeOnly`` ones. Each finding is reported once, where the example is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from policies.checks.oas import Path, View, is_oas2, is_oas3, register, truthy, view
from policies.engine import Context, Hit
from policies.subjects import ContractDoc

#: The keys whose values' descendants each rule looks at, by OpenAPI major version.
_SCHEMA_GIVEN = {
    2: ("definitions", "parameters", "responses"),
    3: ("content", "headers", "parameters"),
}
_MEDIA_GIVEN = {2: ("responses",), 3: ("content", "headers", "parameters")}
_SCHEMA_FIELDS = {2: ("example", "x-example", "default"), 3: ("example", "default")}
#: What makes an object with an example a schema, for the schema rules.
_SCHEMA_KEYS = ("enum", "type", "format", "$ref", "properties", "items")
#: Where a media type's schema relaxes ``required``: (request paths, response paths).
_REQUEST = {2: (), 3: (("components", "requestBodies"), ("paths", "*", "*", "requestBody"))}
_RESPONSE = {
    2: (("responses",), ("paths", "*", "*", "responses")),
    3: (("components", "responses"), ("paths", "*", "*", "responses")),
}
#: AJV's order of keywords: the first that fails is the one reported.
_ORDER = {
    name: rank
    for rank, names in enumerate(
        (
            ("type",),
            ("$ref", "const", "enum", "not", "anyOf", "oneOf", "allOf", "if", "then", "else"),
            ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf"),
            ("maxLength", "minLength", "pattern", "format"),
            ("maxItems", "minItems", "uniqueItems", "additionalItems", "items", "prefixItems"),
            ("contains", "maxProperties", "minProperties", "required", "dependencies"),
            ("dependentRequired", "propertyNames", "additionalProperties", "properties"),
            ("patternProperties", "dependentSchemas", "unevaluatedItems", "unevaluatedProperties"),
        )
    )
    for name in names
}
#: Keywords whose value is a schema, a list of schemas, or a mapping of names to schemas.
_ONE_SCHEMA = ("items", "additionalItems", "additionalProperties", "not", "contains")
_ONE_SCHEMA += ("propertyNames", "if", "then", "else", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")


class _Unresolved:
    """A schema with a reference that cannot be resolved: validated, it finds nothing."""


UNRESOLVED = _Unresolved()


def _pointer(document: Any, ref: str) -> tuple[Path, Any] | None:
    """The path and node a local reference names; None for another document's or nothing."""
    if not ref.startswith("#"):
        return None
    fragment = unquote(ref[1:])
    if not fragment:
        return (), document
    if not fragment.startswith("/"):
        return None
    node, path = document, []
    for raw in fragment[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            path.append(int(part))
        else:
            return None
    return tuple(path), node


def _level(level: int, key: Any, keys: tuple[str, ...]) -> int:
    """Below a ``key`` of ``keys``: 0 not, 1 its value, 2 its value's descendants."""
    if level:
        return 2
    return 1 if key in keys else 0


def _fold(level: int, path: Path, keys: tuple[str, ...]) -> int:
    for key in path:
        level = _level(level, key, keys)
        if level == 2:
            return 2
    return level


class Reach:
    """Which objects a ``$..key..[?()]`` path reaches in the resolved document: those written
    below one of ``keys``, or inside a reference's target that such a place refers to, however
    many references away."""

    def __init__(self, document: dict, refs: list[tuple[Path, dict]], keys, anchor) -> None:
        self.keys = keys
        self.anchor = anchor  # a path from the root whose descendants are all reached
        self.targets: dict[Path, int] = {}
        written: list[tuple[Path, Path]] = []  # (where a $ref is, what it points at)
        for path, node in refs:
            found = _pointer(document, node["$ref"]) if isinstance(node["$ref"], str) else None
            if found is not None:
                written.append((path, found[0]))
        inside: dict[Path, list[tuple[Path, Path]]] = {}
        pointed = {target for _, target in written}
        for path, target in written:
            for length in range(len(path)):
                if path[:length] in pointed:
                    inside.setdefault(path[:length], []).append((path, target))
        work = []
        for path, target in written:
            if self._raise(target, self.level(path)):
                work.append(target)
        while work:
            base = work.pop()
            for path, target in inside.get(base, ()):
                if self._raise(target, _fold(self.targets[base], path[len(base) :], keys)):
                    work.append(target)

    def _raise(self, target: Path, level: int) -> bool:
        if level > self.targets.get(target, -1):
            self.targets[target] = level
            return True
        return False

    def level(self, path: Path) -> int:
        """The level of the object written at ``path``, by its written path alone."""
        if self.anchor and path[: len(self.anchor)] == self.anchor and len(path) > 2:
            return 2
        return _fold(0, path, self.keys)

    def reached(self, path: Path) -> bool:
        if self.level(path) == 2:
            return True
        for length in range(len(path)):
            level = self.targets.get(path[:length])
            if level is not None and _fold(level, path[length:], self.keys) == 2:
                return True
        return False


class Examples:
    """One document's example validation: its schemas resolved and prepared once each."""

    def __init__(self, current: View, version: int, dialect: str) -> None:
        self.document = current.document
        self.walk = current.walk()
        self.version = version
        self.dialect = dialect
        self._reach: dict[str, Reach] = {}
        self._expanded: dict[str, Any] = {}
        self._prepared: dict[tuple[int, bool, bool], Any] = {}

    def reach(self, rule: str) -> Reach:
        if rule not in self._reach:
            given = _SCHEMA_GIVEN if rule == "schema" else _MEDIA_GIVEN
            anchor = ("components", "schemas") if rule == "schema" and self.version == 3 else ()
            refs = self.walk.ref_parents
            self._reach[rule] = Reach(self.document, refs, given[self.version], anchor)
        return self._reach[rule]

    # Finding the examples --------------------------------------------------------------

    def schema_examples(self) -> Iterator[Hit]:
        fields = _SCHEMA_FIELDS[self.version]
        reach = None
        hits: dict[tuple[str, Path], None] = {}
        for path, node, key in self.walk.examples:
            if "$ref" in node or key == "properties":
                continue
            if not any(f in node for f in fields):
                continue
            if not any(truthy(node.get(k)) for k in _SCHEMA_KEYS):
                continue
            reach = reach or self.reach("schema")
            if not reach.reached(path):
                continue
            schema = node
            if self.version == 2 and isinstance(node.get("required"), bool):
                schema = {k: v for k, v in node.items() if k != "required"}
            items = [(node[f], (*path, f)) for f in fields if f in node]
            for message, at in self.validate(schema, items, False, False):
                hits[(message, at)] = None
        for message, at in hits:
            yield Hit(message, at)

    def media_examples(self) -> Iterator[Hit]:
        reach = None
        hits: dict[tuple[str, Path], None] = {}
        for path, node, _ in self.walk.examples:
            if "$ref" in node or not truthy(node.get("schema")):
                continue
            if self.version == 3 and "example" not in node and not truthy(node.get("examples")):
                continue
            if self.version == 2 and not truthy(node.get("examples")):
                continue
            reach = reach or self.reach("media")
            if not reach.reached(path):
                continue
            schema = self.resolve(node["schema"])
            if not isinstance(schema, dict):
                continue
            if self.version == 2 and isinstance(schema.get("required"), bool):
                schema = {k: v for k, v in schema.items() if k != "required"}
            request = _under(path, _REQUEST[self.version])
            response = _under(path, _RESPONSE[self.version])
            items = list(self._media_items(node, path))
            for message, at in self.validate(schema, items, request, response):
                hits[(message, at)] = None
        for message, at in hits:
            yield Hit(message, at)

    def _media_items(self, node: dict, path: Path) -> Iterator[tuple[Any, Path]]:
        if self.version == 3 and "example" in node:
            yield node["example"], (*path, "example")
            return
        examples = node.get("examples")
        if not isinstance(examples, dict):
            return
        for name, example in examples.items():
            if self.version == 2:
                yield example, (*path, "examples", name)
                continue
            written = (*path, "examples", name)
            if isinstance(example, dict) and isinstance(example.get("$ref"), str):
                found = _pointer(self.document, example["$ref"])
                if found is not None:
                    written, example = found
            if not isinstance(example, dict) or "externalValue" in example:
                continue
            yield example.get("value", _MISSING), (*written, "value")

    def resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 64:
            found = _pointer(self.document, node["$ref"])
            if found is None:
                return node
            node, seen = found[1], seen + 1
        return node

    # Validating them -------------------------------------------------------------------

    def validate(
        self, schema: dict, items: list[tuple[Any, Path]], request: bool, response: bool
    ) -> Iterator[tuple[str, Path]]:
        """(message, path) of each problem of the ``items`` (value, where it is written)."""
        key = (id(schema), request, response)
        if key not in self._prepared:
            self._prepared[key] = self._prepare(schema, request, response)
        invalid, prepared = self._prepared[key]
        for index, (value, at) in enumerate(items):
            if value is _MISSING:
                yield f'"{at[-1]}" property must exist', at[:-1]
            elif invalid is not None and (index == 0 or self.version == 2):
                # AJV checks a schema object against its meta-schema when it first meets it;
                # Spectral hands it a fresh copy per OpenAPI 3 node, and per 2.0 example
                yield invalid, at
            elif isinstance(prepared, str):
                yield prepared, at
            elif prepared is not UNRESOLVED:
                yield from _problems(prepared, value, at)

    def _prepare(self, schema: dict, request: bool, response: bool) -> tuple[str | None, Any]:
        """What breaks ``schema``'s meta-schema (None when nothing), and a validator for it
        resolved: AJV's message when it refuses the schema, UNRESOLVED when a reference in it
        cannot be resolved."""
        from policies.checks import example_validation

        unresolved: list[str] = []
        expanded = self._expand(schema, [], unresolved)
        if request or response:
            expanded = _relaxed(expanded, request, response)
        validator_class = example_validation.validator_class(self.dialect)
        invalid = example_validation.meta_problem(validator_class, expanded)
        if unresolved:
            return invalid, UNRESOLVED
        try:
            typed = _nullable(expanded)
        except ValueError as error:
            return invalid, str(error)
        return invalid, example_validation.validator(validator_class, typed)

    def _expand(self, node: Any, stack: list[str], unresolved: list[str]) -> Any:
        """``node`` with each reference replaced by what it names; a reference in a cycle, or
        to nothing, or to another document, stays as written (and is noted in
        ``unresolved``). A reference's expansion is made once and shared."""
        if isinstance(node, list):
            return [self._expand(v, stack, unresolved) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in self._expanded:
                done = self._expanded[ref]
                if done is UNRESOLVED:
                    unresolved.append(ref)
                    return node
                return done
            found = _pointer(self.document, ref)
            if found is None or ref in stack:
                unresolved.append(ref)
                return node
            before = len(unresolved)
            made = self._expand(found[1], [*stack, ref], unresolved)
            # a reference that reaches a cycle or a dangling one is never resolvable
            self._expanded[ref] = UNRESOLVED if len(unresolved) > before else made
            return made
        made = {k: self._expand(v, stack, unresolved) for k, v in node.items()}
        if self.version == 2 and made.get("x-nullable") is True:
            del made["x-nullable"]
            made["nullable"] = True
        return made


_MISSING = object()


def _under(path: Path, prefixes: tuple[tuple[str, ...], ...]) -> bool:
    return any(
        len(path) >= len(prefix) and all(p in ("*", q) for p, q in zip(prefix, path, strict=False))
        for prefix in prefixes
    )


def _relaxed(schema: Any, request: bool, response: bool) -> Any:
    """``schema`` with its ``readOnly`` properties not required in a request, nor its
    ``writeOnly`` ones in a response (nothing under a ``not`` changes)."""
    if not isinstance(schema, dict):
        return schema
    made = dict(schema)
    for keyword in (*_ONE_SCHEMA, *_SCHEMA_LISTS, *_SCHEMA_MAPS):
        value = made.get(keyword)
        if keyword == "not":
            continue
        if isinstance(value, dict) and keyword in _SCHEMA_MAPS:
            made[keyword] = {n: _relaxed(v, request, response) for n, v in value.items()}
        elif isinstance(value, dict):
            made[keyword] = _relaxed(value, request, response)
        elif isinstance(value, list) and keyword in _SCHEMA_LISTS:
            made[keyword] = [_relaxed(v, request, response) for v in value]
    properties = made.get("properties")
    required = made.get("required")
    if isinstance(properties, dict) and (required is None or isinstance(required, list)):
        for name, prop in properties.items():
            if not isinstance(prop, dict):
                continue
            hidden = (prop.get("readOnly") is True and request) or (
                prop.get("writeOnly") is True and response
            )
            if hidden and isinstance(made.get("required"), list):
                made["required"] = [r for r in made["required"] if r != name]
                if not made["required"]:
                    del made["required"]
    return made


def _nullable(schema: Any) -> Any:
    """``schema`` with ``nullable: true`` as a type that admits null (AJV's reading, for every
    dialect); a ValueError with AJV's words for a ``nullable`` with no ``type``."""
    if not isinstance(schema, dict):
        return schema
    made = dict(schema)
    for keyword in _ONE_SCHEMA:
        if isinstance(made.get(keyword), dict):
            made[keyword] = _nullable(made[keyword])
    for keyword in _SCHEMA_LISTS:
        if isinstance(made.get(keyword), list):
            made[keyword] = [_nullable(v) for v in made[keyword]]
    for keyword in _SCHEMA_MAPS:
        if isinstance(made.get(keyword), dict):
            made[keyword] = {n: _nullable(v) for n, v in made[keyword].items()}
    kind = made.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    if "nullable" in made and "null" not in kinds:
        if not kinds:
            raise ValueError('"nullable" cannot be used without "type"')
        if made["nullable"] is True:
            made["type"] = [*kinds, "null"]
    return made


def _problems(validator: Any, value: Any, at: Path) -> Iterator[tuple[str, Path]]:
    from policies.checks import example_validation

    try:
        errors = list(validator.iter_errors(value))
    except re.error:  # a pattern Python cannot compile: AJV would have refused the schema
        return
    for error in example_validation.first_errors(errors, _ORDER):
        where = (*at, *error.absolute_path)
        yield example_validation.message(error, where), where


def _dialect(contract: ContractDoc) -> str:
    if contract.openapi == "3.1":
        dialect = contract.document.get("jsonSchemaDialect")
        if isinstance(dialect, str):
            for name in ("draft-04", "draft-06", "draft-07", "2019-09"):
                if name in dialect:
                    return name
        return "2020-12"
    return "draft-04"


def examples(contract: ContractDoc) -> Examples:
    """The shared example validation of ``contract``'s document."""
    current = view(contract)
    made = current.derived.get("examples")
    if made is None:
        version = 2 if is_oas2(contract) else 3
        made = current.derived["examples"] = Examples(current, version, _dialect(contract))
    return made


@register("oas3-valid-schema-example")
def oas3_valid_schema_example(contract: ContractDoc, options: Any, context: Context):
    """A schema's ``example`` or ``default`` that the schema does not accept."""
    if is_oas3(contract):
        yield from examples(contract).schema_examples()


@register("oas3-valid-media-example")
def oas3_valid_media_example(contract: ContractDoc, options: Any, context: Context):
    """A media type's, parameter's or header's ``example`` (or one of its ``examples``) that
    its schema does not accept."""
    if is_oas3(contract):
        yield from examples(contract).media_examples()


@register("oas2-valid-schema-example")
def oas2_valid_schema_example(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 schema's or parameter's ``example``, ``x-example`` or ``default`` that
    it does not accept."""
    if is_oas2(contract):
        yield from examples(contract).schema_examples()


@register("oas2-valid-media-example")
def oas2_valid_media_example(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 response's ``examples`` (by media type) that its schema does not
    accept."""
    if is_oas2(contract):
        yield from examples(contract).media_examples()
