"""What rules apply to, gathered from contract files (``clew check PATH…``) or from the store
(every other evaluation): contracts, their operations, endpoints, edges, services and the graph,
each named stably (findings are known across runs by their subject's name) and with its owning
team and system where the catalog says."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from clew.records import Contract, Operation
from collectors import asyncapi, openapi
from policies.engine import Context, PolicyError, Subject
from policies.locate import Locator

if TYPE_CHECKING:  # the store is read only when it is evaluated, not for contract files
    from sqlalchemy.engine import Connection

    from clew.store.contracts import StoredVersion

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass
class ContractDoc:
    """One contract version as rules read it: its document (references as written) and what
    Clew made of it."""

    kind: str  # "openapi" or "asyncapi"
    spec_version: str  # "2.0", "3.0.3", "3.1.0", "2.6.0", "3.0.0"
    title: str
    version: str | None
    document: dict
    source: str  # the file it was read from (or the store's record of it)
    content_hash: str
    servers: tuple[str, ...] = ()
    #: What Clew read of its operations; None: read from the document when first asked (a
    #: file's rules seldom need them, and Stripe's 417 take a tenth of its lint).
    given_operations: list[Operation] | None = None
    state: str | None = None  # the registry's
    service: str | None = None  # the service it belongs to, when known

    @property
    def operations(self) -> list[Operation]:
        if self.given_operations is None:
            reader = openapi.read if self.kind == "openapi" else asyncapi.read
            records = reader(self.document, self.content_hash)
            self.given_operations = [r for r in records if isinstance(r, Operation)]
        return self.given_operations

    @property
    def name(self) -> str:
        return f"{self.title}@{self.version or '?'}"

    @property
    def openapi(self) -> str | None:
        """The OpenAPI major.minor ("2.0", "3.0", "3.1"); None for AsyncAPI."""
        if self.kind != "openapi":
            return None
        return ".".join(self.spec_version.split(".")[:2])


@dataclass
class OperationDoc:
    """One HTTP operation of an OpenAPI contract: the operation object and where it is."""

    contract: ContractDoc
    method: str  # upper case
    path: str  # the path template, as written under ``paths``
    node: dict  # the operation object
    path_item: dict  # its path item (parameters shared by the path's operations)
    pointer: tuple[str | int, ...]  # ("paths", "/pets/{id}", "get")

    @property
    def name(self) -> str:
        return f"{self.contract.name} {self.method} {self.path}"


def operation_docs(contract: ContractDoc) -> Iterator[OperationDoc]:
    """The HTTP operations under ``paths`` of an OpenAPI contract, in document order."""
    if contract.kind != "openapi":
        return
    paths = contract.document.get("paths")
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method, node in item.items():
            if method in _HTTP_METHODS and isinstance(node, dict):
                yield OperationDoc(
                    contract, method.upper(), path, node, item, ("paths", path, method)
                )


def read_contract_file(path: Path) -> tuple[ContractDoc, Locator]:
    """A contract file (OpenAPI or AsyncAPI, JSON or YAML) as a ContractDoc, with a locator of
    its lines; a PolicyError naming the file, the position and the reason when it cannot be."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot be read: {error.strerror or error}") from error
    try:
        document = openapi.parse(data, str(path))
    except openapi.ParseError as error:
        raise PolicyError(f"{path}: {error.position}: {error.reason}") from error
    content_hash = hashlib.sha256(data).hexdigest()
    if openapi.not_openapi(document) is None:
        info = document.get("info") if isinstance(document.get("info"), dict) else {}
        version = info.get("version")
        doc = ContractDoc(
            "openapi",
            str(document.get("openapi") or document.get("swagger")),
            str(info.get("title") or "") or path.stem,
            None if version is None else str(version),
            document,
            str(path),
            content_hash,
            openapi.servers(document),
        )
    elif asyncapi.not_asyncapi(document) is None:
        records = list(asyncapi.read(document, content_hash))
        contract = next(r for r in records if isinstance(r, Contract))
        doc = ContractDoc(
            contract.kind,
            contract.spec_version,
            contract.title or path.stem,
            contract.version,
            document,
            str(path),
            content_hash,
            contract.servers,
            [r for r in records if isinstance(r, Operation)],
        )
    else:
        raise PolicyError(f"{path}: document: neither an OpenAPI nor an AsyncAPI document")
    return doc, Locator(data)


def contract_subjects(doc: ContractDoc, locator: Locator | None, team=None, system=None):
    """The contract and its operations as subjects."""
    locate = locator.position if locator is not None else None
    yield Subject("contract", doc.name, doc, team, system, doc.source, locate)
    for op in operation_docs(doc):
        yield Subject("operation", op.name, op, team, system, doc.source, locate)


def from_files(paths: Iterable[Path]) -> dict[str, list[Subject]]:
    """Subjects of contract files (folders are read for ``*.json``, ``*.yaml``, ``*.yml``)."""
    subjects: dict[str, list[Subject]] = {"contract": [], "operation": []}
    for path in _contract_files(paths):
        doc, locator = read_contract_file(path)
        for subject in contract_subjects(doc, locator):
            subjects[subject.kind].append(subject)
    return subjects


def _contract_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and in the folders named the ``*.json``, ``*.yaml`` and ``*.yml`` files
    that are OpenAPI or AsyncAPI documents (a catalog file or a CI config beside them is not
    read); a file named that is not a contract is an error."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                suffix = found.suffix in (".json", ".yaml", ".yml")
                if suffix and found.is_file() and _is_contract(found):
                    yield found
        elif path.exists():
            yield path
        else:
            raise PolicyError(f"{path}: no such file or folder")


def _is_contract(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return True  # named in the error that reading it gives
    detectors = (openapi.OpenApiCollector(), asyncapi.AsyncApiCollector())
    return any(d.detect(head) for d in detectors) or openapi.OpenApiCollector().detect_file(
        path, head
    )


@dataclass
class Owners:
    """Who owns what, from the catalog: a service's owner and system, and a contract's (its API
    entity's, else its service's)."""

    services: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    contracts: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    entities: dict[str, dict] = field(default_factory=dict)  # components and resources by name

    def of_service(self, name: str | None) -> tuple[str | None, str | None]:
        return self.services.get(name or "", (None, None))


def owners(conn: Connection) -> Owners:
    """Who owns each service and contract, from the store's catalog."""
    from clew.store import catalog

    def name(ref: str | None) -> str | None:  # group:default/payments-team → payments-team
        return catalog.entity_name(ref) if ref else None

    found = Owners()
    definitions = catalog.definitions(conn)
    for entity in catalog.entities(conn):
        kind = entity["kind"].lower()
        pair = (name(entity["owner"]), name(entity["system"]))
        if kind in ("component", "resource"):
            found.services[entity["name"]] = pair
            found.entities[entity["name"]] = entity
        elif kind == "api":
            content_hash = definitions.get(entity["ref"])
            if content_hash:
                found.contracts[content_hash] = pair
    return found


def from_store(context: Context) -> dict[str, list[Subject]]:
    """Every subject the store holds: the latest version of each contract and its operations,
    the inventory's endpoints, the edges and services seen in the context's window, and the
    graph."""
    from clew import graph as graphs
    from clew.inventory import inventory
    from clew.store import queries
    from clew.store.contracts import every_version

    conn = context.conn
    who = context.cached("owners", lambda: owners(conn))
    subjects: dict[str, list[Subject]] = {
        kind: [] for kind in ("contract", "operation", "endpoint", "edge", "service", "graph")
    }
    endpoints = context.cached(
        "inventory", lambda: inventory(conn, context.window, now=context.now)
    )
    served_by: dict[str, str] = {}
    for endpoint in endpoints:
        if endpoint.contract and not endpoint.service.startswith("["):
            served_by.setdefault(endpoint.contract, endpoint.service)
    for versions in context.cached("versions", lambda: every_version(conn)).values():
        latest = versions[-1]
        doc = stored_contract(conn, latest)
        doc.service = served_by.get(doc.name)
        team, system = who.contracts.get(latest.content_hash) or who.of_service(doc.service)
        for subject in contract_subjects(doc, None, team, system):
            subjects[subject.kind].append(subject)
    for endpoint in endpoints:
        team, system = who.of_service(endpoint.service)
        name = f"{endpoint.service} {endpoint.method} {endpoint.route}"
        subjects["endpoint"].append(Subject("endpoint", name, endpoint, team, system))
    edges = context.cached("edges", lambda: queries.edge_totals(conn, context.window))
    for edge in edges:
        # The caller owns the dependency; a caller outside the catalog (the map's generic
        # client, a gateway, a partner) leaves it to the callee's owners.
        team, system = who.of_service(edge.client)
        if team is None:
            team, system = who.of_service(edge.server)
        name = f"{edge.client} → {edge.server}"
        if edge.connection_type == "messaging_system":
            name += " (messaging)"
        subjects["edge"].append(Subject("edge", name, edge, team, system))
    nodes = context.cached("nodes", lambda: queries.nodes(conn))
    graph = context.cached("graph", lambda: graphs.build(edges, nodes))
    for name, kind in sorted(graph.nodes(data="kind")):
        if kind == "service":
            team, system = who.of_service(name)
            subjects["service"].append(Subject("service", name, name, team, system))
    subjects["graph"].append(Subject("graph", "landscape", graph))
    return subjects


def stored_contract(conn: Connection, version: StoredVersion) -> ContractDoc:
    """A stored contract version as rules read it."""
    from sqlalchemy import text

    row = conn.execute(
        text(
            "SELECT spec_version, document, source FROM contract_versions WHERE content_hash = :h"
        ),
        {"h": version.content_hash},
    ).one()
    return ContractDoc(
        version.kind,
        row.spec_version,
        version.title,
        version.version,
        orjson.loads(row.document),
        row.source,
        version.content_hash,
        version.servers,
        version.operations,
        version.state,
    )
