"""Backstage catalog files (``catalog-info.yaml``): a ``CatalogEntity`` for every entity, the
``DeclaredDependency`` records its spec declares, and an API entity's ``ApiDefinition``.

What is read, document by document (a file may hold several, separated by ``---``):

- any entity whose ``apiVersion`` is ``backstage.io/...``, with a ``kind`` and a
  ``metadata.name``: its namespace (``default`` when none), title, description, tags,
  annotations and links, and ``spec`` type, lifecycle, owner, system and domain;
- the relations Backstage itself derives from the spec of its built-in kinds, in its forward
  words: ``providesApis``/``consumesApis`` (Component), ``dependsOn`` and ``dependencyOf``
  (Component, Resource; a ``dependencyOf`` is kept as the ``dependsOn`` it implies) and
  ``partOf`` (``system`` of a Component, API or Resource, ``subcomponentOf``, a System's
  ``domain``, a Domain's ``subdomainOf``). Ownership is the entity's ``owner``, not a relation
  here; fields Backstage ignores (``apiConsumedBy`` written in an API's spec) are ignored too;
- an API's ``spec.definition``: inline text, or ``$text`` naming a file in the catalog file's
  folder (or below it), read. A ``$text`` URL is never fetched here (Clew fetches nothing it is
  not told to), nor is a path that leaves the folder read: both are noted on the definition.

Refs follow Backstage's ``parseEntityRef``: ``[<kind>:][<namespace>/]<name>``, the kind
defaulting by field (owner: group, system: system, domain: domain, APIs: api, subcomponentOf:
component), the namespace to the entity's own, and the whole lower-cased. Backstage gives
``dependsOn`` no default kind and refuses a ref without one; it is read as a component and
noted on the entity.

YAML is read through ``safe_yaml`` (YAML 1.2: ``lifecycle: on`` is the string "on"). A file that
cannot be parsed is quarantined whole with its line and column; a document that is no catalog
entity, or names an entity an earlier document of the file named, is quarantined alone and the
rest of the file read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from clew.records import (
    ApiDefinition,
    CatalogEntity,
    CatalogRecord,
    Checkpoint,
    Contract,
    DeclaredDependency,
    Operation,
    Quarantined,
    Record,
    Relation,
    excerpt,
)
from collectors import CollectorError, Source, asyncapi, fetch, openapi, safe_yaml

#: A head with a Backstage ``apiVersion`` near its top, in YAML (or JSON).
_HEAD = re.compile(
    rb"""(?:^|[\n{,])[ \t]*["']?apiVersion["']?[ \t]*:[ \t]*["']?backstage\.io/v1"""
    rb"""(?:alpha[0-9]+|beta[0-9]+)?["']?[ \t]*(?:[\r\n,}#]|$)"""
)
DEFAULT_NAMESPACE = "default"

#: Per built-in kind (lower case), the spec fields that declare a relation, with the kind a ref
#: without one defaults to (None: Backstage requires a kind there).
RELATION_FIELDS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "component": (
        ("system", Relation.PART_OF, "system"),
        ("subcomponentOf", Relation.PART_OF, "component"),
        ("providesApis", Relation.PROVIDES_API, "api"),
        ("consumesApis", Relation.CONSUMES_API, "api"),
        ("dependsOn", Relation.DEPENDS_ON, None),
        ("dependencyOf", Relation.DEPENDS_ON, None),
    ),
    "api": (("system", Relation.PART_OF, "system"),),
    "resource": (
        ("system", Relation.PART_OF, "system"),
        ("dependsOn", Relation.DEPENDS_ON, None),
        ("dependencyOf", Relation.DEPENDS_ON, None),
    ),
    "system": (("domain", Relation.PART_OF, "domain"),),
    "domain": (("subdomainOf", Relation.PART_OF, "domain"),),
}
#: Fields that declare the relation from the named entity to the declaring one.
REVERSED_FIELDS = frozenset({"dependencyOf"})
#: The entity's own columns that hold one ref each, with the kind a ref without one defaults to.
REF_COLUMNS = {"owner": "group", "system": "system", "domain": "domain"}
#: What a ref without a kind is read as where Backstage requires one (``dependsOn``).
GUESSED_KIND = "component"


class BackstageCollector:
    """Backstage catalog files: entities, their declared relations, API definitions."""

    name = "backstage"
    description = (
        "Backstage catalog files (catalog-info.yaml): entities, relations, API definitions"
    )

    def detect(self, head: bytes) -> bool:
        return _HEAD.search(head[:4096].lstrip(b"\xef\xbb\xbf")) is not None

    def collect(self, source: Source) -> Iterator[Record | CatalogRecord]:
        try:
            with source.open() as handle:
                data = handle.read()
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        try:
            documents = safe_yaml.load_all(data, source.name)
        except safe_yaml.YamlError as error:
            position = (
                "document" if error.line is None else f"line {error.line} column {error.column}"
            )
            yield Quarantined(position, f"invalid YAML: {error.reason}", excerpt(data[:200]))
        else:
            for record in read(documents, source.path.parent):
                yield record
                if type(record) is ApiDefinition and record.text is not None:
                    yield from contracts_of(record, source.name)
        yield Checkpoint(len(data))


def contracts_of(definition: ApiDefinition, source: str) -> Iterator[Contract | Operation]:
    """The contract version an API's definition is, when it is one Clew reads (OpenAPI,
    AsyncAPI), with
    its operations; its content hash is the definition text's, as ``api_definitions`` keeps it.
    A definition that cannot be read as one adds nothing here: its API entity is still kept."""
    kind = (definition.spec_type or "").lower()
    if kind not in ("openapi", "asyncapi"):
        return
    data = definition.text.encode()
    try:
        document = openapi.parse(data, f"{source} ({definition.api_ref})")
    except openapi.ParseError:
        return
    content_hash = hashlib.sha256(data).hexdigest()
    if kind == "openapi" and openapi.not_openapi(document) is None:
        yield from openapi.read(document, content_hash)
    elif kind == "asyncapi" and asyncapi.not_asyncapi(document) is None:
        yield from asyncapi.read(document, content_hash)


def read(documents: list[Any], folder: Path | None) -> Iterator[CatalogRecord | Quarantined]:
    """The records of a catalog file's parsed documents; ``folder`` is where its ``$text``
    paths are read from (None: they are not read)."""
    seen: dict[str, int] = {}
    for number, document in enumerate(documents, 1):
        if document is None:  # an empty document, as a trailing "---" makes
            continue
        reason = not_entity(document)
        if reason is None:
            ref = entity_ref(
                document["kind"], _namespace(document["metadata"]), document["metadata"]["name"]
            )
            if ref in seen:
                reason = f"entity {ref} is also document {seen[ref]} of this file"
        if reason is not None:
            yield Quarantined(f"document {number}", reason, _excerpt(document))
            continue
        seen[ref] = number
        yield from _entity(document, number, folder)


def not_entity(document: Any) -> str | None:
    """Why a parsed document is not a catalog entity Clew reads, or None."""
    if not isinstance(document, dict):
        return "not a catalog entity: the document is not a mapping"
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str):
        return "not a catalog entity: no apiVersion"
    if not api_version.startswith("backstage.io/"):
        return f"not a Backstage catalog entity: apiVersion {api_version!r}"
    if not isinstance(document.get("kind"), str) or not document["kind"]:
        return "catalog entity without a kind"
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return "catalog entity without metadata"
    if not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return "catalog entity without a metadata.name"
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        return "catalog entity whose metadata.namespace is not a name"
    return None


def split_ref(text: str) -> tuple[str | None, str | None, str]:
    """The kind, namespace and name a string ref gives (None: not given), by Backstage's rules:
    the kind ends at the first ``:``, the namespace at the first ``/``, unless that ``/`` comes
    first; a ValueError when a part it gives is empty."""
    colon, slash = text.find(":"), text.find("/")
    if slash != -1 and slash < colon:
        colon = -1
    kind = text[:colon] if colon != -1 else None
    namespace = text[colon + 1 : slash] if slash != -1 else None
    name = text[max(colon + 1, slash + 1) :]
    if kind == "" or namespace == "" or not name:
        raise ValueError(f"{text!r} is not of the form [<kind>:][<namespace>/]<name>")
    return kind, namespace, name


def entity_ref(kind: str, namespace: str, name: str) -> str:
    """An entity's ref, ``kind:namespace/name``, lower-cased as Backstage compares refs."""
    return f"{kind}:{namespace}/{name}".lower()


def _entity(document: dict, number: int, folder: Path | None) -> Iterator[CatalogRecord]:
    metadata = document["metadata"]
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    kind, name, namespace = document["kind"], metadata["name"], _namespace(metadata)
    ref = entity_ref(kind, namespace, name)
    relation_fields = RELATION_FIELDS.get(kind.lower(), ())
    defaults = {field: default for field, _, default in relation_fields} | REF_COLUMNS
    problems: list[str] = []
    targets = {
        field: _targets(spec[field], field, default, namespace, problems)
        for field, default in defaults.items()
        if spec.get(field) is not None
    }
    columns: dict[str, str | None] = {}
    for column in REF_COLUMNS:
        refs = targets.get(column, [])
        if len(refs) > 1:
            problems.append(f"spec.{column} names {len(refs)} entities; the first is kept")
        columns[column] = refs[0] if refs else None
    tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
    yield CatalogEntity(
        ref=ref,
        kind=kind,
        namespace=namespace,
        name=name,
        title=_text(metadata.get("title")),
        description=_text(metadata.get("description")),
        type=_text(spec.get("type")),
        lifecycle=_text(spec.get("lifecycle")),
        owner=columns["owner"],
        system=columns["system"],
        domain=columns["domain"],
        tags=tuple(text for tag in tags if (text := _text(tag)) is not None),
        annotations=_json(metadata.get("annotations"), dict),
        links=_json(metadata.get("links"), list),
        document=number,
        problems=tuple(problems),
    )
    declared: set[tuple[str, str, str]] = set()
    for field, relation, _ in relation_fields:
        for target in targets.get(field, []):
            edge = (target, ref, relation) if field in REVERSED_FIELDS else (ref, target, relation)
            if edge not in declared:
                declared.add(edge)
                yield DeclaredDependency(*edge, declared_by=ref, field=field)
    if kind.lower() == "api":
        yield definition(ref, spec, folder)


def _targets(
    value: Any, field: str, default_kind: str | None, namespace: str, problems: list[str]
) -> list[str]:
    """The refs a spec field names (one ref or a list of them); what cannot be read, noted."""
    refs = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            problems.append(f"spec.{field}: {item!r} is not an entity ref")
            continue
        try:
            kind, own_namespace, name = split_ref(item)
        except ValueError as error:
            problems.append(f"spec.{field}: {error}")
            continue
        if kind is None and default_kind is None:
            problems.append(
                f"spec.{field}: {item!r} names no kind (Backstage requires one here); "
                f"read as a {GUESSED_KIND}"
            )
        kind = kind or default_kind or GUESSED_KIND
        refs.append(entity_ref(kind, own_namespace or namespace, name))
    return refs


def definition(api_ref: str, spec: dict, folder: Path | None) -> ApiDefinition:
    """An API entity's definition: inline, or read from the ``$text`` file beside the catalog
    file; a URL or a path leaving ``folder`` is noted, not read."""
    spec_type = _text(spec.get("type"))
    written = spec.get("definition")
    if isinstance(written, str):
        return ApiDefinition(api_ref, spec_type, None, written, ())
    if isinstance(written, dict) and isinstance(written.get("$text"), str):
        location = written["$text"]
        text, problem = _read_beside(location, folder)
        problems = () if text is not None else (problem,)
        return ApiDefinition(api_ref, spec_type, location, text, problems)
    if written is None:
        problem = "no spec.definition"
    elif isinstance(written, dict) and ({"$json", "$yaml"} & written.keys()):
        key = next(iter({"$json", "$yaml"} & written.keys()))
        problem = f"spec.definition: {key} not read (a definition is text: $text reads it)"
    else:
        problem = "spec.definition is neither text nor a $text placeholder"
    return ApiDefinition(api_ref, spec_type, None, None, (problem,))


def _read_beside(location: str, folder: Path | None) -> tuple[str | None, str]:
    """The text of a ``$text`` target inside ``folder``, or None and why it was not read."""
    parts = urlsplit(location)
    if len(parts.scheme) > 1 or parts.netloc:
        if not fetch.allowed(location):
            return None, f"$text {location!r} is a URL: not fetched"
        try:
            return fetch.fetch(location).decode("utf-8-sig"), ""
        except fetch.FetchError as error:
            return None, f"$text: {error}"
        except UnicodeDecodeError as error:
            return None, f"$text {location!r}: not UTF-8 at byte {error.start}"
    if folder is None:
        return None, f"$text {location!r}: no folder to read it from"
    try:
        root = folder.resolve()
        path = (root / location).resolve()  # links followed: one out of the folder is out
        if Path(location).is_absolute() or not path.is_relative_to(root):
            return None, f"$text {location!r} leaves the catalog file's folder: not read"
        size = path.stat().st_size
        if size > safe_yaml.MAX_BYTES:
            return None, f"$text {location!r}: {size:,} bytes, larger than is read"
        return path.read_bytes().decode("utf-8-sig"), ""
    except UnicodeDecodeError as error:
        return None, f"$text {location!r}: not UTF-8 at byte {error.start}"
    except OSError as error:
        return None, f"$text {location!r}: cannot read: {error.strerror}"
    except ValueError as error:  # a NUL in the path
        return None, f"$text {location!r}: cannot read: {error}"


def _namespace(metadata: dict) -> str:
    return metadata.get("namespace") or DEFAULT_NAMESPACE


def _text(value: Any) -> str | None:
    """A scalar as text; None for nothing, a mapping or a list."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(value: Any, shape: type) -> str | None:
    if not isinstance(value, shape) or not value:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _excerpt(document: Any) -> str:
    return excerpt(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS, default=str))
