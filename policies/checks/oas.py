"""Contract quality: the rules of Spectral's ``oas`` ruleset, as Clew checks of the same names.

Each check follows its Spectral rule: the documents it applies to (OpenAPI 2.0, 3.x, or both;
never AsyncAPI), what it looks at and what counts, and the JSON path Spectral reports (for a
field that is missing, the closest path that exists, as Spectral does). Spectral reads most rules
on the document with its ``$ref``s resolved and reports each finding once, where the node is
written; so a check that looks everywhere (``$..``) walks the document as written, each node
once, and one that looks at operations follows their parameters' references.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import orjson

from collectors.openapi import Refs
from policies.engine import CHECKS, Context, Hit, NoOptions
from policies.subjects import ContractDoc

Path = tuple[str | int, ...]

#: Spectral's operation keys of a path item.
OPERATION_KEYS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
#: A path template's parameter, as Spectral's ``oasPathParam`` reads one.
_PATH_PARAMETER = re.compile(r"\{;?\??[a-zA-Z0-9_-]+\*?\}")
_VALID_IN_URL = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]*$")
_COMPONENT_TYPES = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "links",
    "callbacks",
)


def truthy(value: Any) -> bool:
    """JavaScript's truthiness: every object and array is true, even an empty one."""
    if isinstance(value, dict | list):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def js_number(text: str) -> float:
    """JavaScript's ``Number(text)`` for the texts a response code may be; NaN when it is none."""
    stripped = text.strip()
    if not stripped:
        return 0.0
    try:
        if stripped[:2].lower() in ("0x", "0o", "0b"):
            return float(int(stripped, 0))
        if stripped.lstrip("+-").lower() in ("inf", "infinity", "nan"):
            return math.nan if "infinity" not in stripped.lower() else float(stripped)
        return float(stripped)
    except ValueError:
        return math.nan


class View:
    """What the checks of one document share, each part computed on first use: its
    references, its operations, and one walk of every node as written."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.refs = Refs(document)
        self._operations: list[tuple[str, str, dict, dict]] | None = None
        self._walk: Walk | None = None
        #: what other modules' checks derive from the document once (``policies.checks.examples``)
        self.derived: dict[str, Any] = {}

    def operations(self) -> list[tuple[str, str, dict, dict]]:
        """(path, method, operation, path item) of each operation under ``paths``, path items
        followed through their references."""
        if self._operations is None:
            found = []
            paths = self.document.get("paths")
            if isinstance(paths, dict):
                for path, item in paths.items():
                    item = self.refs.follow(item, f"paths {path}")
                    if not isinstance(item, dict):
                        continue
                    for method, operation in item.items():
                        if method in OPERATION_KEYS and isinstance(operation, dict):
                            found.append((path, method, operation, item))
            self._operations = found
        return self._operations

    def walk(self) -> Walk:
        if self._walk is None:
            self._walk = Walk(self.document)
        return self._walk

    def resolved(self, node: Any) -> Any:
        """``node``, or what its local reference chain leads to (itself when it dangles)."""
        if isinstance(node, dict) and "$ref" in node:
            found = self.refs.follow(node, "check")
            return node if found is None else found
        return node


class Walk:
    """One pass over every node of a document as written, keeping what the ``$..`` rules ask
    about: each kind of node with its path."""

    def __init__(self, document: Any) -> None:
        self.refs: set[str] = set()  # every $ref's value
        self.ref_parents: list[tuple[Path, dict]] = []  # objects with a $ref key
        self.enums: list[tuple[Path, dict, Any]] = []  # objects with a truthy enum, their key
        self.arrays: list[tuple[Path, dict]] = []  # objects with an array type
        self.texts: list[tuple[Path, str]] = []  # description and title strings
        self.parameters: list[tuple[Path, dict]] = []  # items of any "parameters" with `in`
        self.keywords: dict[str, list[Path]] = {"anyOf": [], "oneOf": []}
        #: objects with an example, examples, a default or an x-example: what the example
        #: rules validate (their schemas' and media types')
        self.examples: list[tuple[Path, dict, Any]] = []
        self._visit(document, [], None)

    def _visit(self, node: Any, path: list, key: Any) -> None:
        if type(node) is dict:
            if "$ref" in node:
                ref = node["$ref"]
                if isinstance(ref, str):
                    self.refs.add(ref)
                self.ref_parents.append((tuple(path), node))
            if "enum" in node and truthy(node["enum"]):
                self.enums.append((tuple(path), node, key))
            if "example" in node or "default" in node or "examples" in node or "x-example" in node:
                self.examples.append((tuple(path), node, key))
            if "anyOf" in node:
                self.keywords["anyOf"].append((*path, "anyOf"))
            if "oneOf" in node:
                self.keywords["oneOf"].append((*path, "oneOf"))
            kind = node.get("type")
            if kind is not None and (kind == "array" or (type(kind) is list and "array" in kind)):
                self.arrays.append((tuple(path), node))
            for name, value in node.items():
                kind = type(value)
                if kind is str:
                    if name == "description" or name == "title":
                        self.texts.append(((*path, name), value))
                    continue
                if kind is dict or kind is list:
                    path.append(name)
                    if name == "parameters":
                        self._parameters(value, path)
                    self._visit(value, path, name)
                    path.pop()
        elif type(node) is list:
            for index, value in enumerate(node):
                if type(value) is dict or type(value) is list:
                    path.append(index)
                    self._visit(value, path, index)
                    path.pop()

    def _parameters(self, value: Any, path: list) -> None:
        items = value.items() if type(value) is dict else enumerate(value)
        for key, item in items:
            if type(item) is dict and truthy(item.get("in")):
                self.parameters.append(((*path, key), item))


_VIEWS: OrderedDict[int, tuple[dict, View]] = OrderedDict()


def view(contract: ContractDoc) -> View:
    """The shared view of ``contract``'s document, kept for the last few documents checked
    (every check of an evaluation reads the same one)."""
    document = contract.document
    kept = _VIEWS.get(id(document))
    if kept is not None and kept[0] is document:
        _VIEWS.move_to_end(id(document))
        return kept[1]
    made = View(document)
    _VIEWS[id(document)] = (document, made)
    while len(_VIEWS) > 4:
        _VIEWS.popitem(last=False)
    return made


def is_oas2(contract: ContractDoc) -> bool:
    return contract.openapi == "2.0"


def is_oas3(contract: ContractDoc) -> bool:
    return (contract.openapi or "").startswith("3.")


def is_oas(contract: ContractDoc) -> bool:
    return contract.openapi is not None and isinstance(contract.document, dict)


def closest(node: Any, base: Path, field: Path) -> Path:
    """``base`` + as much of ``field`` as exists under ``node``: where Spectral reports a field
    (the field itself when it is there, else its closest existing parent)."""
    path = base
    for part in field:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path = (*path, part)
        else:
            break
    return path


def _field(node: Any, field: Path) -> Any:
    for part in field:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _truthy_field(node: Any, base: Path, field: Path, message: str) -> Iterator[Hit]:
    if not truthy(_field(node, field)):
        yield Hit(message, closest(node, base, field))


def _nonempty_array(node: Any, base: Path, name: str, message: str, items: type | None = None):
    """Spectral's ``schema`` of ``{type: array, minItems: 1}`` (and ``items``' type) on a field."""
    value = node.get(name) if isinstance(node, dict) else None
    where = closest(node, base, (name,))
    if not isinstance(value, list) or not value:
        yield Hit(message, where)
        return
    if items is not None:
        for index, item in enumerate(value):
            if not isinstance(item, items) or isinstance(item, bool):
                yield Hit(message, (*where, index))


def register(name: str):
    return CHECKS.register(name, "contract", NoOptions)


# Info, contact, license ---------------------------------------------------------------------


@register("info-contact")
def info_contact(contract: ContractDoc, options: Any, context: Context):
    """The info object has no ``contact``."""
    if is_oas(contract):
        yield from _truthy_field(
            contract.document, (), ("info", "contact"), 'Info object must have "contact" object.'
        )


@register("info-description")
def info_description(contract: ContractDoc, options: Any, context: Context):
    """The info object has no non-empty ``description``."""
    if is_oas(contract):
        yield from _truthy_field(
            contract.document,
            (),
            ("info", "description"),
            'Info "description" must be present and non-empty string.',
        )


@register("info-license")
def info_license(contract: ContractDoc, options: Any, context: Context):
    """The info object has no ``license``."""
    if is_oas(contract):
        yield from _truthy_field(
            contract.document, (), ("info", "license"), 'Info object must have "license" object.'
        )


@register("license-url")
def license_url(contract: ContractDoc, options: Any, context: Context):
    """The license object has no ``url`` (or there is no license)."""
    if is_oas(contract):
        yield from _truthy_field(
            contract.document, (), ("info", "license", "url"), 'License object must include "url".'
        )


@register("contact-properties")
def contact_properties(contract: ContractDoc, options: Any, context: Context):
    """The contact object lacks a ``name``, a ``url`` or an ``email`` (one finding each; two
    missing at one place, the contact object, are one finding, as Spectral reports them)."""
    if not is_oas(contract):
        return
    info = contract.document.get("info")
    if not isinstance(info, dict) or "contact" not in info:
        return
    contact = info["contact"]
    seen: set[Path] = set()
    for name in ("name", "url", "email"):
        for hit in _truthy_field(
            contact,
            ("info", "contact"),
            (name,),
            'Contact object must have "name", "url" and "email".',
        ):
            if hit.path not in seen:
                seen.add(hit.path)
                yield hit


# Servers and hosts ---------------------------------------------------------------------------


@register("oas3-api-servers")
def oas3_api_servers(contract: ContractDoc, options: Any, context: Context):
    """An OpenAPI 3 document with no ``servers``, an empty list, or a server that is no object."""
    if is_oas3(contract):
        yield from _nonempty_array(
            contract.document,
            (),
            "servers",
            'OpenAPI "servers" must be present and non-empty array.',
            dict,
        )


def _server_urls(contract: ContractDoc) -> Iterator[tuple[Path, str]]:
    servers = contract.document.get("servers")
    if isinstance(servers, list):
        for index, server in enumerate(servers):
            url = server.get("url") if isinstance(server, dict) else None
            if isinstance(url, str):
                yield ("servers", index, "url"), url


@register("oas3-server-trailing-slash")
def oas3_server_trailing_slash(contract: ContractDoc, options: Any, context: Context):
    """A server URL (other than ``/``) that ends with a slash."""
    if is_oas3(contract):
        for path, url in _server_urls(contract):
            if len(url) > 1 and url.endswith("/"):
                yield Hit("Server URL must not have trailing slash.", path)


@register("oas3-server-not-example.com")
def oas3_server_not_example(contract: ContractDoc, options: Any, context: Context):
    """A server URL pointing at example.com."""
    if is_oas3(contract):
        for path, url in _server_urls(contract):
            if "example.com" in url:
                yield Hit("Server URL must not point at example.com.", path)


@register("oas2-api-host")
def oas2_api_host(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 document with no non-empty ``host``."""
    if is_oas2(contract):
        yield from _truthy_field(
            contract.document, (), ("host",), 'OpenAPI "host" must be present and non-empty string.'
        )


@register("oas2-api-schemes")
def oas2_api_schemes(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 document with no ``schemes``, an empty list, or a scheme that is no text."""
    if is_oas2(contract):
        yield from _nonempty_array(
            contract.document,
            (),
            "schemes",
            'OpenAPI host "schemes" must be present and non-empty array.',
            str,
        )


def _host_matches(contract: ContractDoc, pattern: str) -> bool:
    host = contract.document.get("host")
    return isinstance(host, str) and re.search(pattern, host) is not None


@register("oas2-host-trailing-slash")
def oas2_host_trailing_slash(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 ``host`` that ends with a slash."""
    if is_oas2(contract) and _host_matches(contract, "/$"):
        yield Hit("Server URL must not have trailing slash.", ("host",))


@register("oas2-host-not-example")
def oas2_host_not_example(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 ``host`` pointing at example.com."""
    if is_oas2(contract) and _host_matches(contract, r"example\.com"):
        yield Hit("Host URL must not point at example.com.", ("host",))


# Tags --------------------------------------------------------------------------------------


@register("openapi-tags")
def openapi_tags(contract: ContractDoc, options: Any, context: Context):
    """The document has no ``tags``, or an empty list of them."""
    if is_oas(contract):
        yield from _nonempty_array(
            contract.document, (), "tags", 'OpenAPI object must have non-empty "tags" array.'
        )


def _locale_key(text: str) -> tuple:
    """An approximation of JavaScript's ``localeCompare`` (ICU's root collation): letters
    compared without case first, punctuation before digits before letters, then case (lower
    before upper)."""
    primary = []
    for char in text:
        if char.isalpha():
            primary.append((2, char.casefold()))
        elif char.isdigit():
            primary.append((1, char))
        else:
            primary.append((0, char))
    return (primary, [c.isupper() for c in text])


def _compare(a: Any, b: Any) -> int:
    """Spectral's ``alphabetical`` comparison of two neighbours: >= 1 means out of order."""
    number_a = a if isinstance(a, int | float) else js_number(a) if isinstance(a, str) else None
    number_b = b if isinstance(b, int | float) else js_number(b) if isinstance(b, str) else None
    a_is_nan = number_a is None or math.isnan(number_a)
    b_not_nan = number_b is not None and not math.isnan(number_b)
    if (isinstance(a, int | float) or a_is_nan) and (isinstance(b, int | float) or b_not_nan):
        if number_a is None or number_b is None:
            return 0
        difference = number_a - number_b
        return 0 if math.isnan(difference) else max(-1, min(1, math.ceil(difference)))
    if not isinstance(a, str) or not isinstance(b, str):
        return 0
    key_a, key_b = _locale_key(a), _locale_key(b)
    return (key_a > key_b) - (key_a < key_b)


@register("openapi-tags-alphabetical")
def openapi_tags_alphabetical(contract: ContractDoc, options: Any, context: Context):
    """The document's tags are not in alphabetical order of their names."""
    if not is_oas(contract):
        return
    tags = contract.document.get("tags")
    if not isinstance(tags, list | dict) or len(tags) < 2:
        return
    items = tags if isinstance(tags, list) else list(tags)
    names = []
    for tag in items:
        if not isinstance(tag, dict):
            yield Hit("tags must be objects", ("tags",))
            return
        names.append(tag.get("name"))
    if not all(isinstance(n, str | int | float) and not isinstance(n, bool) for n in names):
        yield Hit("tag names must be numbers or text", ("tags",))
        return
    for a, b in itertools.pairwise(names):
        if _compare(a, b) >= 1:
            yield Hit('OpenAPI object must have alphabetical "tags".', ("tags",))
            return


@register("openapi-tags-uniqueness")
def openapi_tags_uniqueness(contract: ContractDoc, options: Any, context: Context):
    """A tag name defined twice in the document's tags (each repeat is a finding)."""
    if not is_oas(contract):
        return
    tags = contract.document.get("tags")
    if not isinstance(tags, list):
        return
    if not all(
        isinstance(t, dict) and isinstance(t.get("name", ""), str) for t in tags
    ):  # Spectral skips tags it cannot read
        return
    first: dict[Any, int] = {}
    for index, tag in enumerate(tags):
        name = tag.get("name")
        if name in first:
            yield Hit(
                f'"tags" object contains duplicate tag name "{name}".', ("tags", index, "name")
            )
        else:
            first[name] = index


@register("tag-description")
def tag_description(contract: ContractDoc, options: Any, context: Context):
    """A tag with no ``description``."""
    if not is_oas(contract):
        return
    tags = contract.document.get("tags")
    if isinstance(tags, list):
        for index, tag in enumerate(tags):
            yield from _truthy_field(
                tag, ("tags", index), ("description",), 'Tag object must have "description".'
            )


# Operations ------------------------------------------------------------------------------


def _operations(contract: ContractDoc) -> list[tuple[str, str, dict, dict]]:
    return view(contract).operations() if is_oas(contract) else []


@register("operation-operationId")
def operation_operation_id(contract: ContractDoc, options: Any, context: Context):
    """An operation with no ``operationId``."""
    for path, method, operation, _ in _operations(contract):
        yield from _truthy_field(
            operation,
            ("paths", path, method),
            ("operationId",),
            'Operation must have "operationId".',
        )


@register("operation-operationId-unique")
def operation_operation_id_unique(contract: ContractDoc, options: Any, context: Context):
    """An ``operationId`` used by an earlier operation too."""
    seen: list[Any] = []
    for path, method, operation, _ in _operations(contract):
        if "operationId" not in operation:
            continue
        operation_id = operation["operationId"]
        if operation_id in seen:
            yield Hit("operationId must be unique.", ("paths", path, method, "operationId"))
        else:
            seen.append(operation_id)


@register("operation-operationId-valid-in-url")
def operation_operation_id_valid_in_url(contract: ContractDoc, options: Any, context: Context):
    """An ``operationId`` with characters that are not allowed in a URL."""
    for path, method, operation, _ in _operations(contract):
        operation_id = operation.get("operationId")
        if isinstance(operation_id, str) and not _VALID_IN_URL.match(operation_id):
            yield Hit(
                "operationId must not contain characters that are invalid when used in URL.",
                ("paths", path, method, "operationId"),
            )


@register("operation-success-response")
def operation_success_response(contract: ContractDoc, options: Any, context: Context):
    """An operation with no 2xx or 3xx response (``2XX`` ranges do not count, as in Spectral)."""
    for path, method, operation, _ in _operations(contract):
        responses = operation.get("responses")
        if not isinstance(responses, dict):
            continue
        if not any(200 <= js_number(str(code)) < 400 for code in responses):
            yield Hit(
                "Operation must define at least one 2xx or 3xx response.",
                ("paths", path, method, "responses"),
            )


@register("operation-description")
def operation_description(contract: ContractDoc, options: Any, context: Context):
    """An operation with no non-empty ``description``."""
    for path, method, operation, _ in _operations(contract):
        yield from _truthy_field(
            operation,
            ("paths", path, method),
            ("description",),
            'Operation "description" must be present and non-empty string.',
        )


@register("operation-tags")
def operation_tags(contract: ContractDoc, options: Any, context: Context):
    """An operation with no ``tags``, or an empty list of them."""
    for path, method, operation, _ in _operations(contract):
        yield from _nonempty_array(
            operation,
            ("paths", path, method),
            "tags",
            'Operation must have non-empty "tags" array.',
        )


@register("operation-singular-tag")
def operation_singular_tag(contract: ContractDoc, options: Any, context: Context):
    """An operation with more than one tag."""
    for path, method, operation, _ in _operations(contract):
        tags = operation.get("tags")
        if isinstance(tags, list | str) and len(tags) > 1:
            yield Hit(
                "Operation must not have more than a single tag.", ("paths", path, method, "tags")
            )


@register("operation-tag-defined")
def operation_tag_defined(contract: ContractDoc, options: Any, context: Context):
    """An operation's tag that the document's ``tags`` do not define."""
    if not is_oas(contract):
        return
    tags = contract.document.get("tags")
    defined = set()
    if isinstance(tags, list):
        defined = {
            t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
    for path, method, operation, _ in _operations(contract):
        used = operation.get("tags")
        if isinstance(used, list):
            for index, tag in enumerate(used):
                if not isinstance(tag, str) or tag not in defined:
                    yield Hit(
                        "Operation tags must be defined in global tags.",
                        ("paths", path, method, "tags", index),
                    )


@register("operation-parameters")
def operation_parameters(contract: ContractDoc, options: Any, context: Context):
    """An operation's parameters that repeat a name and place, mix ``in: body`` with
    ``in: formData``, or have more than one body."""
    current = view(contract) if is_oas(contract) else None
    for path, method, operation, _ in _operations(contract):
        parameters = operation.get("parameters")
        if not isinstance(parameters, list) or len(parameters) < 2:
            continue
        where = ("paths", path, method, "parameters")
        seen: set[str] = set()
        bodies: list[int] = []
        forms = 0
        for index, parameter in enumerate(parameters):
            parameter = current.resolved(parameter) if current else parameter
            if not isinstance(parameter, dict) or "$ref" in parameter:
                continue
            fingerprint = f"{_js_text(parameter.get('in'))}-{_js_text(parameter.get('name'))}"
            if fingerprint in seen:
                yield Hit(
                    "A parameter in this operation already exposes the same combination of"
                    ' "name" and "in" values.',
                    (*where, index),
                )
            seen.add(fingerprint)
            if parameter.get("in") == "body":
                bodies.append(index)
            elif parameter.get("in") == "formData":
                forms += 1
        if bodies and forms:
            yield Hit('Operation must not have both "in:body" and "in:formData" parameters.', where)
        for index in bodies[1:]:
            yield Hit(
                'Operation must not have more than a single instance of the "in:body" parameter.',
                (*where, index),
            )


def _js_text(value: Any) -> str:
    """JavaScript's ``String(value)`` for the values a parameter's name and place may be."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# Paths -----------------------------------------------------------------------------------


def _path_keys(contract: ContractDoc) -> list[str]:
    paths = contract.document.get("paths") if is_oas(contract) else None
    return [k for k in paths if isinstance(k, str)] if isinstance(paths, dict) else []


@register("path-declarations-must-exist")
def path_declarations_must_exist(contract: ContractDoc, options: Any, context: Context):
    """A path with an empty parameter declaration, ``{}``."""
    for key in _path_keys(contract):
        if "{}" in key:
            yield Hit(
                'Path parameter declarations must not be empty, ex."/given/{}" is invalid.',
                ("paths", key),
            )


@register("path-keys-no-trailing-slash")
def path_keys_no_trailing_slash(contract: ContractDoc, options: Any, context: Context):
    """A path (other than ``/``) that ends with a slash."""
    for key in _path_keys(contract):
        if len(key) > 1 and key.endswith("/"):
            yield Hit("Path must not end with slash.", ("paths", key))


@register("path-not-include-query")
def path_not_include_query(contract: ContractDoc, options: Any, context: Context):
    """A path with a query string in it."""
    for key in _path_keys(contract):
        if "?" in key:
            yield Hit("Path must not include query string.", ("paths", key))


@register("path-params")
def path_params(contract: ContractDoc, options: Any, context: Context):
    """Path parameters that are not defined, defined but unused, not required, defined twice or
    used twice in a path; and paths that are the same but for their parameters' names."""
    if not is_oas(contract):
        return
    paths = contract.document.get("paths")
    if not isinstance(paths, dict):
        return
    current = view(contract)
    hits: dict[tuple[str, Path], None] = {}  # Spectral reports a place and message once
    normalised: dict[str, str] = {}
    for path, item in paths.items():
        item = current.resolved(item)
        if not isinstance(item, dict):
            continue
        key = _PATH_PARAMETER.sub("%", path)
        if key in normalised:
            message = f'Paths "{normalised[key]}" and "{path}" must not be equivalent.'
            hits[(message, ("paths", path))] = None
        else:
            normalised[key] = path
        used: list[str] = []
        for match in _PATH_PARAMETER.finditer(path):
            name = re.sub(r"[{}?*;]", "", match.group())
            if name in used:
                message = f'Path "{path}" must not use parameter "{{{name}}}" multiple times.'
                hits[(message, ("paths", path))] = None
            else:
                used.append(name)
        shared = _path_parameters(current, item.get("parameters"), ("paths", path), hits)
        for method, operation in item.items():
            if method not in OPERATION_KEYS or not isinstance(operation, dict):
                continue
            where = ("paths", path, method)
            own = _path_parameters(current, operation.get("parameters"), where, hits)
            defined = {**shared, **own}
            for name, at in defined.items():
                if name not in used:
                    hits[(f'Parameter "{name}" must be used in path "{path}".', at)] = None
            for name in used:
                if name not in defined:
                    message = (
                        f'Operation must define parameter "{{{name}}}" as expected by path'
                        f' "{path}".'
                    )
                    hits[(message, where)] = None
    for message, at in hits:
        yield Hit(message, at)


def _path_parameters(
    current: View, parameters: Any, base: Path, hits: dict[tuple[str, Path], None]
) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not isinstance(parameters, list):
        return found
    for index, parameter in enumerate(parameters):
        parameter = current.resolved(parameter)
        if not isinstance(parameter, dict):
            continue
        if parameter.get("in") != "path" or "name" not in parameter:
            continue
        name = _js_text(parameter["name"])
        at = (*base, "parameters", index)
        if parameter.get("required") is not True:
            message = (
                f'Path parameter "{name}" must have "required" property that is set to "true".'
            )
            hits[(message, at)] = None
        if name in found:
            hits[(f'Path parameter "{name}" must not be defined multiple times.', at)] = None
            continue
        found[name] = at
    return found


# Parameters --------------------------------------------------------------------------------


@register("oas2-parameter-description")
def oas2_parameter_description(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 parameter with no ``description``."""
    if is_oas2(contract):
        for path, parameter in view(contract).walk().parameters:
            yield from _truthy_field(
                parameter, path, ("description",), 'Parameter objects must have "description".'
            )


@register("oas3-parameter-description")
def oas3_parameter_description(contract: ContractDoc, options: Any, context: Context):
    """An OpenAPI 3 parameter (of a path, an operation or the components) with no
    ``description``."""
    if not is_oas3(contract):
        return
    current = view(contract)
    places: list[tuple[Path, Any]] = []
    paths = contract.document.get("paths")
    if isinstance(paths, dict):
        for path, item in paths.items():
            places.append(
                (("paths", path, "parameters"), _field(current.resolved(item), ("parameters",)))
            )
        for path, method, operation, _ in current.operations():
            places.append((("paths", path, method, "parameters"), operation.get("parameters")))
    places.append(
        (("components", "parameters"), _field(contract.document, ("components", "parameters")))
    )
    seen: set[int] = set()
    for base, parameters in places:
        if isinstance(parameters, dict):
            items = list(parameters.items())
        elif isinstance(parameters, list):
            items = list(enumerate(parameters))
        else:
            continue
        for key, parameter in items:
            where: Path = (*base, key)
            if isinstance(parameter, dict) and "$ref" in parameter:
                continue  # reported where it is written (Spectral reports the resolved node once)
            if not isinstance(parameter, dict) or not truthy(parameter.get("in")):
                continue
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            yield from _truthy_field(
                parameter, where, ("description",), 'Parameter objects must have "description".'
            )


# Security ----------------------------------------------------------------------------------


def _requirements(contract: ContractDoc) -> Iterator[tuple[Path, Any]]:
    """Each security requirement: the document's, then each operation's."""
    security = contract.document.get("security")
    if isinstance(security, list):
        for index, requirement in enumerate(security):
            yield ("security", index), requirement
    for path, method, operation, _ in _operations(contract):
        security = operation.get("security")
        if isinstance(security, list):
            for index, requirement in enumerate(security):
                yield ("paths", path, method, "security", index), requirement


def _security_defined(contract: ContractDoc, version: int) -> Iterator[Hit]:
    current = view(contract)
    if version == 2:
        schemes = contract.document.get("securityDefinitions")
        location = "securityDefinitions"
    else:
        components = contract.document.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
        location = "components.securitySchemes"
    for where, requirement in _requirements(contract):
        if not isinstance(requirement, dict) or not all(
            isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)
            for scopes in requirement.values()
        ):
            continue  # Spectral reads only requirements of the right shape
        for name, scopes in requirement.items():
            if not isinstance(schemes, dict) or name not in schemes:
                what = "API" if len(where) == 2 else "Operation"
                yield Hit(
                    f'{what} "security" values must match a scheme defined in the "{location}"'
                    " object.",
                    (*where, name),
                )
                continue
            scheme = current.resolved(schemes[name])
            for index, scope in enumerate(scopes):
                if not _scope_defined(version, scope, scheme):
                    yield Hit(f'"{scope}" must be listed among scopes.', (*where, name, index))


def _scope_defined(version: int, scope: str, scheme: Any) -> bool:
    if not isinstance(scheme, dict):
        return False
    if version == 2:
        return isinstance(scheme.get("scopes"), dict) and scope in scheme["scopes"]
    flows = scheme.get("flows")
    if isinstance(flows, dict):
        for flow in flows.values():
            scopes = flow.get("scopes") if isinstance(flow, dict) else None
            if isinstance(scopes, dict) and scope in scopes:
                return True
    return False


@register("oas3-operation-security-defined")
def oas3_operation_security_defined(contract: ContractDoc, options: Any, context: Context):
    """A security requirement (the document's or an operation's) naming a scheme that
    ``components.securitySchemes`` does not define, or a scope its flows do not list."""
    if is_oas3(contract):
        yield from _security_defined(contract, 3)


@register("oas2-operation-security-defined")
def oas2_operation_security_defined(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 security requirement naming a scheme that ``securityDefinitions`` does not
    define, or a scope it does not list."""
    if is_oas2(contract):
        yield from _security_defined(contract, 2)


# Reusable objects ------------------------------------------------------------------------


def _unreferenced(contract: ContractDoc, objects: Any, location: str) -> Iterator[Hit]:
    if not isinstance(objects, dict):
        return
    refs = view(contract).walk().refs
    parts = tuple(location[2:].split("/"))
    for name in objects:
        if f"{location}/{name}" not in refs:
            yield Hit("Potentially unused component has been detected.", (*parts, name))


@register("oas3-unused-component")
def oas3_unused_component(contract: ContractDoc, options: Any, context: Context):
    """A component (schema, response, parameter, example, request body, header, link or
    callback) that no ``$ref`` in the document names."""
    if not is_oas3(contract):
        return
    components = contract.document.get("components")
    if isinstance(components, dict):
        for kind in _COMPONENT_TYPES:
            yield from _unreferenced(contract, components.get(kind), f"#/components/{kind}")


@register("oas2-unused-definition")
def oas2_unused_definition(contract: ContractDoc, options: Any, context: Context):
    """A Swagger 2.0 definition that no ``$ref`` in the document names."""
    if is_oas2(contract):
        yield from _unreferenced(contract, contract.document.get("definitions"), "#/definitions")


# Schemas and markdown, anywhere in the document ------------------------------------------


@register("no-$ref-siblings")
def no_ref_siblings(contract: ContractDoc, options: Any, context: Context):
    """A key beside a ``$ref`` (Swagger 2.0 and OpenAPI 3.0, where siblings are ignored)."""
    if not (is_oas2(contract) or contract.openapi == "3.0"):
        return
    for path, node in view(contract).walk().ref_parents:
        if len(node) > 1:
            for key in node:
                if key != "$ref":
                    yield Hit("$ref must not be placed next to any other properties", (*path, key))


@register("array-items")
def array_items(contract: ContractDoc, options: Any, context: Context):
    """A schema of ``type: array`` with no ``items``."""
    if not is_oas(contract):
        return
    lists_allowed = contract.openapi not in ("2.0", "3.0")
    for path, node in view(contract).walk().arrays:
        kind = node.get("type")
        # JavaScript's loose == makes ["array"] equal "array" in 2.0 and 3.0's filter
        if kind != "array" and kind != ["array"] and not lists_allowed:
            continue
        yield from _truthy_field(
            node,
            path,
            ("items",),
            'Schemas with "type: array", require a sibling "items" field',
        )


def _is_type(value: Any, kind: Any) -> bool | None:
    """Whether ``value`` is of JSON Schema type ``kind``; None for a type JSON Schema lacks."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return None


@register("typed-enum")
def typed_enum(contract: ContractDoc, options: Any, context: Context):
    """An enum value that is not of its schema's ``type``."""
    if not is_oas(contract):
        return
    nullable = "x-nullable" if is_oas2(contract) else "nullable"
    for path, node, _ in view(contract).walk().enums:
        values, kind = node.get("enum"), node.get("type")
        if not isinstance(values, list) or not truthy(kind):
            continue
        kinds = list(kind) if isinstance(kind, list) else [kind]
        if node.get(nullable) is True and "null" not in kinds:
            kinds.append("null")
        if any(_is_type(None, k) is None for k in kinds if isinstance(k, str)) or not all(
            isinstance(k, str) for k in kinds
        ):
            continue  # a type JSON Schema does not know: Spectral's validator refuses it
        for index, value in enumerate(values):
            if not any(_is_type(value, k) for k in kinds):
                yield Hit(
                    f"Enum value `{_js_text(value)}` does not respect the specified type"
                    f" `{_js_type_text(kind)}`.",
                    (*path, "enum", index),
                )


def _js_type_text(kind: Any) -> str:
    return ",".join(map(str, kind)) if isinstance(kind, list) else _js_text(kind)


def _canonical(value: Any) -> Any:
    """A key equal for the values JSON Schema's ``uniqueItems`` calls equal: a text or a
    number as itself (a whole float as its integer), anything else as its JSON with keys
    sorted."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is bool or value is None:
        return (value,)  # True is not 1, nor None a missing value

    def plain(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, list):
            return [plain(v) for v in item]
        return item

    return orjson.dumps(plain(value), option=orjson.OPT_SORT_KEYS, default=str)


@register("duplicated-entry-in-enum")
def duplicated_entry_in_enum(contract: ContractDoc, options: Any, context: Context):
    """An enum that lists a value twice."""
    if not is_oas(contract):
        return
    for path, node, key in view(contract).walk().enums:
        values = node.get("enum")
        if key == "properties" or not isinstance(values, list):
            continue
        seen: set[Any] = set()
        for value in values:
            canonical = _canonical(value)
            if canonical in seen:
                yield Hit("Enum values must not have duplicate entries.", (*path, "enum"))
                break
            seen.add(canonical)


@register("no-eval-in-markdown")
def no_eval_in_markdown(contract: ContractDoc, options: Any, context: Context):
    """A description or title with ``eval(`` in it."""
    if is_oas(contract):
        for path, text in view(contract).walk().texts:
            if "eval(" in text:
                yield Hit('Markdown descriptions must not have "eval(".', path)


@register("no-script-tags-in-markdown")
def no_script_tags_in_markdown(contract: ContractDoc, options: Any, context: Context):
    """A description or title with a ``<script`` tag in it."""
    if is_oas(contract):
        for path, text in view(contract).walk().texts:
            if "<script" in text:
                yield Hit('Markdown descriptions must not have "<script>" tags.', path)


# Callbacks and webhooks ------------------------------------------------------------------


@register("oas3-callbacks-in-callbacks")
def oas3_callbacks_in_callbacks(contract: ContractDoc, options: Any, context: Context):
    """A callback's operation that declares callbacks of its own."""
    if not is_oas3(contract):
        return
    current = view(contract)
    for path, method, operation, _ in _operations(contract):
        callbacks = operation.get("callbacks")
        if not isinstance(callbacks, dict):
            continue
        for name, callback in callbacks.items():
            callback = current.resolved(callback)
            if not isinstance(callback, dict):
                continue
            for expression, item in callback.items():
                item = current.resolved(item)
                if not isinstance(item, dict):
                    continue
                for key, inner in item.items():
                    if isinstance(inner, dict) and "callbacks" in inner:
                        yield Hit(
                            "Callbacks should not be defined within a callback",
                            (
                                "paths",
                                path,
                                method,
                                "callbacks",
                                name,
                                expression,
                                key,
                                "callbacks",
                            ),
                        )


def _webhook_operations(contract: ContractDoc) -> Iterator[tuple[Path, dict]]:
    webhooks = contract.document.get("webhooks")
    if contract.openapi == "3.1" and isinstance(webhooks, dict):
        for name, item in webhooks.items():
            if isinstance(item, dict):
                for key, operation in item.items():
                    if isinstance(operation, dict):
                        yield ("webhooks", name, key), operation


@register("oas3_1-servers-in-webhook")
def oas31_servers_in_webhook(contract: ContractDoc, options: Any, context: Context):
    """Servers declared in a webhook (OpenAPI 3.1)."""
    webhooks = contract.document.get("webhooks")
    if contract.openapi == "3.1" and isinstance(webhooks, dict) and "servers" in webhooks:
        yield Hit("Servers should not be defined in a webhook.", ("webhooks", "servers"))
    for path, operation in _webhook_operations(contract):
        if "servers" in operation:
            yield Hit("Servers should not be defined in a webhook.", (*path, "servers"))


@register("oas3_1-callbacks-in-webhook")
def oas31_callbacks_in_webhook(contract: ContractDoc, options: Any, context: Context):
    """Callbacks declared in a webhook's operation (OpenAPI 3.1)."""
    for path, operation in _webhook_operations(contract):
        if "callbacks" in operation:
            yield Hit("Callbacks should not be defined in a webhook.", (*path, "callbacks"))


@register("oas2-anyOf")
def oas2_any_of(contract: ContractDoc, options: Any, context: Context):
    """``anyOf`` in a Swagger 2.0 document, which has no such keyword."""
    if is_oas2(contract):
        for path in view(contract).walk().keywords["anyOf"]:
            yield Hit('"anyOf" keyword must not be used in OpenAPI v2 document.', path)


@register("oas2-oneOf")
def oas2_one_of(contract: ContractDoc, options: Any, context: Context):
    """``oneOf`` in a Swagger 2.0 document, which has no such keyword."""
    if is_oas2(contract):
        for path in view(contract).walk().keywords["oneOf"]:
            yield Hit('"oneOf" keyword must not be used in OpenAPI v2 document.', path)
