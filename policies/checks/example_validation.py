"""JSON Schema validation for the example rules (``policies.checks.examples``), with the
``jsonschema`` library read the way Spectral's AJV reads a schema: ajv-formats' formats, a whole
float taken for an integer, the meta-schema checked first, the first error reported (a failed
``anyOf``/``oneOf`` with its branches' first errors) and AJV's words for it.

Imported only when a document has an example to validate: ``jsonschema`` takes a while to load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import jsonschema
from jsonschema import FormatChecker, ValidationError, validators
from jsonschema.exceptions import FormatError

from policies.checks import formats

_DIALECTS = {
    "draft-04": jsonschema.Draft4Validator,
    "draft-06": jsonschema.Draft6Validator,
    "draft-07": jsonschema.Draft7Validator,
    "2019-09": jsonschema.Draft201909Validator,
    "2020-12": jsonschema.Draft202012Validator,
}


class AjvFormats(FormatChecker):
    """The formats of ajv-formats (full), each applying to values of its own type only."""

    def check(self, instance: object, format: str) -> None:
        if not formats.conforms(instance, format):
            raise FormatError(f"{instance!r} is not a {format!r}")


_FORMATS = AjvFormats(formats=())


def _integer(checker: Any, instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


@cache
def validator_class(dialect: str) -> Any:
    """The jsonschema validator of ``dialect`` ("draft-04" ... "2020-12") with JavaScript's
    integers."""
    base = _DIALECTS.get(dialect, jsonschema.Draft202012Validator)
    types = base.TYPE_CHECKER.redefine("integer", _integer)
    return validators.extend(base, type_checker=types)


def meta_problem(validator_class: Any, schema: Any) -> str | None:
    """AJV's words when ``schema`` breaks its dialect's meta-schema; None when it does not."""
    meta = validator_class(validator_class.META_SCHEMA)
    error = next(iter(meta.iter_errors(schema)), None)
    if error is None:
        return None
    where = "".join(f"/{part}" for part in error.absolute_path)
    return f"schema is invalid: data{where} {_words(error)}"


def validator(validator_class: Any, schema: Any) -> Any:
    return validator_class(schema, format_checker=_FORMATS)


def first_errors(errors: list[ValidationError], order: Mapping[str, int]) -> Iterable[Any]:
    """The errors AJV reports when it stops at the first: the first keyword in its order that
    fails; for an ``anyOf`` or ``oneOf`` no branch matched, each branch's first, then its own."""
    if not errors:
        return []
    first = min(errors, key=lambda e: order.get(str(e.relative_schema_path[0]), 99))
    found: list[ValidationError] = []
    if first.validator in ("anyOf", "oneOf") and first.context:
        branches = sorted({e.relative_schema_path[0] for e in first.context})
        for branch in branches:
            inner = [e for e in first.context if e.relative_schema_path[0] == branch]
            shifted = min(
                inner,
                key=lambda e: order.get(str(list(e.relative_schema_path)[1:2] or [""])[0], 99),
            )
            found.extend(first_errors([shifted], {}))
    found.append(first)
    return found


def message(error: ValidationError, where: tuple) -> str:
    """The error in AJV's words, as Spectral writes them: ``"example" property must be <= 10``,
    ``Item at index 0 must be string``."""
    last = where[-1] if where else ""
    if isinstance(last, int):
        label = f"Item at index {last}"
        if error.validator == "type":
            return f"{label} must be {_types(error.validator_value)}"
    else:
        label = f'"{last}" property'
    if error.validator == "type":
        return f"{label} type must be {_types(error.validator_value)}"
    if error.validator == "additionalProperties":
        return f'Property "{_extra(error)}" is not expected to be here'
    text = _words(error)
    if error.validator in ("anyOf", "oneOf") and error.context:
        text += ". None of the schemas matched, see the other errors reported for this value"
    return f"{label} {text}"


def _types(kind: Any) -> str:
    return ",".join(map(str, kind)) if isinstance(kind, list) else str(kind)


def _extra(error: ValidationError) -> str:
    schema, instance = error.schema, error.instance
    known = schema.get("properties") or {} if isinstance(schema, dict) else {}
    patterns = schema.get("patternProperties") or {} if isinstance(schema, dict) else {}
    import re

    for name in instance if isinstance(instance, dict) else ():
        if name not in known and not any(re.search(p, name) for p in patterns):
            return str(name)
    return ""


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, default=str).decode()


def _words(error: ValidationError) -> str:
    """AJV's message for one failed keyword."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "required":
        missing = next((n for n in value if n not in instance), "")
        return f'must have required property "{missing}"'
    if keyword == "enum":
        return "must be equal to one of the allowed values: " + ", ".join(map(_json, value))
    if keyword == "const":
        return "must be equal to constant"
    if keyword == "format":
        return f'must match format "{value}"'
    if keyword == "pattern":
        return f'must match pattern "{value}"'
    if keyword in ("maximum", "minimum"):
        exclusive = schema.get("exclusiveMaximum" if keyword == "maximum" else "exclusiveMinimum")
        sign = "<" if keyword == "maximum" else ">"
        return f"must be {sign}{'' if exclusive is True else '='} {_number(value)}"
    if keyword in ("exclusiveMaximum", "exclusiveMinimum"):
        return f"must be {'<' if keyword == 'exclusiveMaximum' else '>'} {_number(value)}"
    if keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        what = "characters" if keyword.endswith("Length") else "items"
        return f"must not have {'fewer' if keyword[1] == 'i' else 'more'} than {value} {what}"
    if keyword in ("minProperties", "maxProperties"):
        return f"must NOT have {'fewer' if keyword[1] == 'i' else 'more'} than {value} properties"
    if keyword == "uniqueItems":
        pair = _duplicate(instance)
        return "must NOT have duplicate items" + (
            f" (items ## {pair[0]} and {pair[1]} are identical)" if pair else ""
        )
    if keyword == "multipleOf":
        return f"must be multiple of {_number(value)}"
    if keyword == "anyOf":
        return "must match a schema in anyOf"
    if keyword == "oneOf":
        return "must match exactly one schema in oneOf"
    if keyword == "not":
        return "must NOT be valid"
    return error.message


def _duplicate(items: Any) -> tuple[int, int] | None:
    """The pair AJV names: from the end, the first item equal to an earlier one."""
    if not isinstance(items, list):
        return None
    keys = [_json(_plain(item)) for item in items]
    for i in range(len(keys) - 1, 0, -1):
        for j in range(i - 1, -1, -1):
            if keys[i] == keys[j]:
                return j, i
    return None


def _plain(item: Any) -> Any:
    if isinstance(item, float) and item.is_integer():
        return int(item)
    if isinstance(item, dict):
        return {str(k): _plain(v) for k, v in sorted(item.items(), key=lambda kv: str(kv[0]))}
    if isinstance(item, list):
        return [_plain(v) for v in item]
    return item


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
