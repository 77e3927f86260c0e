"""OpenAPI contracts, 2.0 (Swagger), 3.0 and 3.1, in JSON or YAML: a ``Contract`` and its
``Operation`` records.

What is read:

- the operations under ``paths`` (role ``server``), the callbacks an operation declares (role
  ``callback``, the path being the callback's runtime expression, ``{$request.body#/url}``) and
  3.1's ``webhooks`` (role ``webhook``, the path being the webhook's name); 3.1 documents may have
  no ``paths`` at all;
- per operation: its id, ``deprecated``, ``x-sunset``, and in ``details`` (JSON) its summary,
  tags, parameters (path item's and operation's merged, the operation's winning; name, place,
  required, type), request body (required, media types; 2.0's ``in: body`` parameter and
  ``consumes``), responses (status → media types; 2.0's ``produces``) and security (the
  operation's, else the document's): what the breaking-change checks compare;
- servers: 3.x ``servers`` (variables given their defaults), 2.0 ``schemes`` × ``host`` +
  ``basePath``.

References: a local ``$ref`` (``#/components/parameters/limit``, JSON-pointer escapes and
percent-encoding undone) is followed wherever an operation's parts may be one (path items,
parameters, request bodies, responses, callbacks), through chains of references, at most
``MAX_REF_DEPTH`` deep; a cycle or a dangling pointer is a problem noted on the contract, not a
crash. A reference to another file or a URL is never fetched here (Clew fetches nothing it is
not told to): it is noted on the contract as not followed. Schemas are kept as written, their
references unresolved: the diff resolves what it compares.

A file that is no OpenAPI document (no ``openapi`` 3.x or ``swagger: "2.0"`` at its top) or that
cannot be parsed is quarantined whole, with the reason and, for bad JSON or YAML, the line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from clew.records import Checkpoint, Contract, Operation, Quarantined, Record, excerpt
from collectors import CollectorError, Source, fetch, open_file, safe_yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: References followed one after another before giving up.
MAX_REF_DEPTH = 64
#: Callbacks within callbacks read (a callback's operation may declare callbacks of its own).
MAX_CALLBACK_DEPTH = 8
#: The largest JSON file read whole to find its OpenAPI version key.
MAX_DETECT_BYTES = 64 * 2**20
#: A version key with an OpenAPI version, anywhere in a JSON document.
_JSON_VERSION = re.compile(rb'"(?:openapi"\s*:\s*"3\.[0-9]|swagger"\s*:\s*"2\.0")')
#: A head that names an OpenAPI version near its top, in JSON or YAML.
_HEAD = re.compile(rb"""(?:^|[\n{,])\s*["']?(?:openapi|swagger)["']?\s*:""")


class OpenApiCollector:
    """OpenAPI 2.0, 3.0 and 3.1 documents."""

    name = "openapi"
    description = "OpenAPI 2.0 (Swagger), 3.0 and 3.1 contracts, JSON or YAML"

    def detect(self, head: bytes) -> bool:
        return _HEAD.search(head[:4096].lstrip(b"\xef\xbb\xbf")) is not None

    def detect_file(self, path: Path, head: bytes) -> bool:
        """A JSON document whose version key comes after the head (keys sorted: ``components``
        first): its whole text names an OpenAPI version, up to ``MAX_DETECT_BYTES``."""
        if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"{":
            return False
        try:
            if path.stat().st_size > MAX_DETECT_BYTES:
                return False
            with open_file(path) as handle:
                return _JSON_VERSION.search(handle.read(MAX_DETECT_BYTES)) is not None
        except (OSError, EOFError):
            return False

    def collect(self, source: Source) -> Iterator[Record]:
        return collect_document(source, not_openapi, read)


def collect_document(
    source: Source,
    refuse: Callable[[Any], str | None],
    read_document: Callable[[dict, str], Iterator[Record]],
) -> Iterator[Record]:
    """The records of a file holding one contract document (OpenAPI, AsyncAPI): parsed (JSON or
    YAML), refused with ``refuse``'s reason when it is not the collector's, else read by
    ``read_document`` with its content hash; then one checkpoint at its end. Anything that
    cannot be read is quarantined whole, with the line where parsing stopped."""
    try:
        with source.open() as handle:
            data = handle.read()
    except OSError as error:
        raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
    try:
        document = parse(data, source.name)
    except ParseError as error:
        yield Quarantined(error.position, error.reason, excerpt(data[:200]))
        yield Checkpoint(len(data))
        return
    reason = refuse(document)
    if reason is not None:
        yield Quarantined("document", reason, excerpt(data[:200]))
    else:
        yield from read_document(document, hashlib.sha256(data).hexdigest())
    yield Checkpoint(len(data))


class ParseError(ValueError):
    """A document that is neither JSON nor YAML: where (``line L column C``) and why."""

    def __init__(self, position: str, reason: str) -> None:
        self.position, self.reason = position, reason
        super().__init__(f"{position}: {reason}")


def parse(data: bytes, source: str) -> Any:
    """A JSON or YAML document (YAML through ``safe_yaml``)."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as error:
            if data.count(b"\n") < 2:  # JSON in one line, not YAML that starts a flow mapping
                position = f"line {error.lineno} column {error.colno}"
                raise ParseError(position, f"invalid JSON: {error.msg}") from None
    try:
        return safe_yaml.load(data, source)
    except safe_yaml.YamlError as error:
        position = "document" if error.line is None else f"line {error.line} column {error.column}"
        raise ParseError(position, f"invalid YAML: {error.reason}") from None


def not_openapi(document: Any) -> str | None:
    """Why a parsed document is not an OpenAPI document, or None."""
    if not isinstance(document, dict):
        return "not an OpenAPI document: its top is not a mapping"
    swagger, openapi = document.get("swagger"), document.get("openapi")
    if str(swagger) == "2.0" or (isinstance(openapi, str) and openapi.startswith("3.")):
        return None
    if swagger is not None or openapi is not None:
        return f"OpenAPI version {openapi or swagger!s} is not read (2.0, 3.0 and 3.1 are)"
    return "not an OpenAPI document: no openapi or swagger version at its top"


def read(document: dict, content_hash: str) -> Iterator[Contract | Operation]:
    """The contract and operations of a parsed OpenAPI document."""
    refs = Refs(document)
    spec_version = str(document.get("openapi") or document.get("swagger"))
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    operations = list(_operations(document, refs, content_hash))
    yield Contract(
        kind="openapi",
        spec_version=spec_version,
        title=str(info.get("title") or ""),
        version=None if info.get("version") is None else str(info.get("version")),
        content_hash=content_hash,
        servers=tuple(_servers(document)),
        document=orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
        problems=tuple(sorted(refs.problems)),
    )
    yield from operations


class Refs:
    """Local references of one document, followed; what could not be, noted."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.problems: set[str] = set()
        self._pointed: dict[str, Any] = {}  # each pointer resolved once
        self._remote: dict[str, Refs | None] = {}  # each fetched document, by its URL

    def follow(self, node: Any, where: str) -> Any:
        """``node``, or what its ``$ref`` chain leads to; None (a problem noted) when the chain
        leaves the document, dangles, loops or runs too deep."""
        seen: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#"):
                return self._elsewhere(ref, where)
            if ref in seen:
                self.problems.add(f"{where}: $ref {ref!r} refers to itself through {seen}")
                return None
            if len(seen) >= MAX_REF_DEPTH:
                self.problems.add(f"{where}: more than {MAX_REF_DEPTH} $refs in a chain")
                return None
            seen.append(ref)
            node = self.pointer(ref)
            if node is None:
                self.problems.add(f"{where}: $ref {ref!r} points at nothing")
                return None
        return node

    def _elsewhere(self, ref: str, where: str) -> Any:
        """What a reference to another document names: fetched when it is a URL the operator
        allows (``collectors.fetch``), its own chain followed within it; else a problem noted.
        References inside what it names stay as written (schemas are compared as written)."""
        url, _, fragment = ref.partition("#")
        if not fetch.allowed(url):
            self.problems.add(f"{where}: $ref {ref!r} is in another document (not fetched)")
            return None
        if url not in self._remote:
            try:
                data = fetch.fetch(url)
                self._remote[url] = Refs(parse(data, url))
            except (fetch.FetchError, ParseError) as error:
                self.problems.add(f"{where}: $ref {ref!r}: {error}")
                self._remote[url] = None
        remote = self._remote[url]
        if remote is None:
            return None
        found = remote.follow(remote.pointer("#" + fragment), f"{where} ({url})")
        self.problems |= remote.problems
        if found is None:
            self.problems.add(f"{where}: $ref {ref!r} points at nothing")
        return found

    def pointer(self, ref: str) -> Any:
        """The node a local JSON pointer (``#/a/b~1c``) names, or None. A ``$ref`` met on the
        way is followed (AsyncAPI's ``#/channels/a/messages/b`` where channel ``a`` is itself a
        reference); a pointer that leads through itself names nothing."""
        if ref not in self._pointed:
            self._pointed[ref] = None  # while it is being resolved
            self._pointed[ref] = self._resolve(ref)
        return self._pointed[ref]

    def _resolve(self, ref: str) -> Any:
        node: Any = self.document
        fragment = unquote(ref[1:])
        if not fragment:
            return node
        if not fragment.startswith("/"):
            return None
        for token in fragment[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token not in node:
                node = self.follow(node, f"$ref {ref!r}")
            if isinstance(node, dict):
                node = node.get(token, _MISSING)
                if node is _MISSING:
                    return None
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node


_MISSING = object()


def _operations(document: dict, refs: Refs, content_hash: str) -> Iterator[Operation]:
    two = str(document.get("swagger")) == "2.0"
    paths = document.get("paths")
    if isinstance(paths, dict):
        for path, item in paths.items():
            yield from _path_item(document, refs, content_hash, "server", str(path), item, two)
    webhooks = document.get("webhooks")
    if isinstance(webhooks, dict):
        for name, item in webhooks.items():
            yield from _path_item(document, refs, content_hash, "webhook", str(name), item, two)


def _path_item(
    document: dict,
    refs: Refs,
    content_hash: str,
    role: str,
    path: str,
    item: Any,
    two: bool,
    depth: int = 0,
) -> Iterator[Operation]:
    item = refs.follow(item, f"{role} {path}")
    if not isinstance(item, dict):
        return
    shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
    for method in HTTP_METHODS:
        operation = item.get(method)
        if not isinstance(operation, dict):
            continue
        where = f"{method.upper()} {path}"
        details = _details(document, refs, operation, shared, where, two)
        sunset = operation.get("x-sunset")
        yield Operation(
            content_hash=content_hash,
            protocol="http",
            role=role,
            method=method.upper(),
            path=path,
            operation_id=_text(operation.get("operationId")),
            deprecated=operation.get("deprecated") is True,
            sunset=None if sunset is None else str(sunset),
            details=orjson.dumps(details, option=orjson.OPT_NON_STR_KEYS).decode(),
        )
        callbacks = operation.get("callbacks")
        if isinstance(callbacks, dict) and depth >= MAX_CALLBACK_DEPTH:
            refs.problems.add(f"{where}: callbacks nested more than {MAX_CALLBACK_DEPTH} deep")
        elif isinstance(callbacks, dict):
            for name, callback in callbacks.items():
                callback = refs.follow(callback, f"{where} callback {name}")
                if not isinstance(callback, dict):
                    continue
                for expression, callback_item in callback.items():
                    yield from _path_item(
                        document,
                        refs,
                        content_hash,
                        "callback",
                        str(expression),
                        callback_item,
                        two,
                        depth + 1,
                    )


def _details(
    document: dict, refs: Refs, operation: dict, shared: list, where: str, two: bool
) -> dict:
    """What the breaking-change checks compare of one operation."""
    parameters: dict[tuple[str, str], dict] = {}
    body: dict | None = None
    own = operation.get("parameters") if isinstance(operation.get("parameters"), list) else []
    for raw in (*shared, *own):  # the operation's own win, by (name, place)
        parameter = refs.follow(raw, f"{where} parameter")
        if not isinstance(parameter, dict) or "name" not in parameter:
            continue
        place = str(parameter.get("in", ""))
        if two and place == "body":
            body = {
                "required": parameter.get("required") is True,
                "media": _consumes(document, operation),
            }
            continue
        schema = parameter.get("schema") if isinstance(parameter.get("schema"), dict) else parameter
        parameters[(str(parameter["name"]), place)] = {
            "name": str(parameter["name"]),
            "in": place,
            "required": parameter.get("required") is True or place == "path",
            "type": schema.get("type")
            if not isinstance(schema.get("type"), list)
            else sorted(map(str, schema["type"])),
        }
    if not two:
        request = refs.follow(operation.get("requestBody"), f"{where} requestBody")
        if isinstance(request, dict):
            content = request.get("content") if isinstance(request.get("content"), dict) else {}
            body = {"required": request.get("required") is True, "media": sorted(map(str, content))}
    elif body is None and any(p.get("in") == "formData" for p in parameters.values()):
        body = {"required": False, "media": _consumes(document, operation)}
    responses: dict[str, list[str]] = {}
    raw_responses = (
        operation.get("responses") if isinstance(operation.get("responses"), dict) else {}
    )
    for status, raw in raw_responses.items():
        response = refs.follow(raw, f"{where} response {status}")
        if not isinstance(response, dict):
            responses[str(status)] = []
            continue
        if two:
            produces = operation.get("produces", document.get("produces")) or []
            responses[str(status)] = sorted(map(str, produces)) if "schema" in response else []
        else:
            content = response.get("content") if isinstance(response.get("content"), dict) else {}
            responses[str(status)] = sorted(map(str, content))
    security = operation.get("security", document.get("security"))
    return {
        "summary": _text(operation.get("summary")),
        "tags": [str(tag) for tag in operation.get("tags") or [] if isinstance(tag, str | int)],
        "parameters": [parameters[key] for key in sorted(parameters)],
        "body": body,
        "responses": dict(sorted(responses.items())),
        "security": _security(security),
    }


def _consumes(document: dict, operation: dict) -> list[str]:
    consumes = operation.get("consumes", document.get("consumes")) or []
    return sorted(map(str, consumes)) if isinstance(consumes, list) else []


def _security(security: Any) -> list[list[str]]:
    """Security requirements as the schemes each alternative needs (``[]``: none needed)."""
    if not isinstance(security, list):
        return []
    return [sorted(map(str, req)) for req in security if isinstance(req, dict)]


def servers(document: dict) -> tuple[str, ...]:
    """The document's server URLs (OpenAPI 2: scheme://host/basePath), as ``read`` gives them."""
    return tuple(_servers(document))


def _servers(document: dict) -> Iterator[str]:
    if str(document.get("swagger")) == "2.0":
        host = document.get("host")
        base = str(document.get("basePath") or "")
        if not host:
            if base:
                yield base
            return
        schemes = document.get("schemes") or ["https"]
        for scheme in schemes if isinstance(schemes, list) else ["https"]:
            yield f"{scheme}://{host}{base}"
        return
    servers = document.get("servers")
    if not isinstance(servers, list):
        return
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        variables = server.get("variables") if isinstance(server.get("variables"), Mapping) else {}
        for name, variable in variables.items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + str(name) + "}", str(variable["default"]))
        yield url


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
