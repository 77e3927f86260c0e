"""Contracts at rest: each API (by kind and title) and its versions, each version with its document
and its operations. A version is its content: the same text read twice, or from two places, is
stored once (its hash is unique), so re-reading a folder of contracts adds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.records import Contract, Operation
from clew.store import executemany, utcnow

_CONTRACT_ID = text("SELECT id FROM contracts WHERE kind = :kind AND title = :title")
_INSERT_CONTRACT = text("INSERT INTO contracts (kind, title) VALUES (:kind, :title)")
_KNOWN = text("SELECT registry_state FROM contract_versions WHERE content_hash = :hash")
_RESTATE = text("UPDATE contract_versions SET registry_state = :state WHERE content_hash = :hash")
_INSERT_VERSION = text(
    "INSERT INTO contract_versions (contract_id, content_hash, version, spec_version, servers,"
    " problems, document, source, operation_count, registry_state, first_seen_at)"
    " VALUES (:contract_id, :hash, :version, :spec_version, :servers, :problems, :document,"
    " :source, :operation_count, :state, :first_seen_at)"
)
_VERSION_ID = text("SELECT id FROM contract_versions WHERE content_hash = :hash")
_INSERT_OPERATION = (
    "INSERT INTO operations (version_id, protocol, role, method, path, operation_id, deprecated,"
    " sunset, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def write(
    conn: Connection, contracts: Sequence[Contract], operations: Sequence[Operation], source: str
) -> int:
    """Store the versions not stored yet, with their operations; returns the records stored
    (versions and operations)."""
    stored = 0
    by_hash: dict[str, list[Operation]] = {}
    for operation in operations:
        by_hash.setdefault(operation.content_hash, []).append(operation)
    for contract in contracts:
        known = conn.execute(_KNOWN, {"hash": contract.content_hash}).first()
        if known is not None:
            if contract.state is not None and known[0] != contract.state:
                conn.execute(_RESTATE, {"state": contract.state, "hash": contract.content_hash})
            continue
        ops = by_hash.get(contract.content_hash, [])
        conn.execute(
            _INSERT_VERSION,
            {
                "contract_id": _contract_id(conn, contract, source),
                "hash": contract.content_hash,
                "version": contract.version,
                "spec_version": contract.spec_version,
                "servers": orjson.dumps(list(contract.servers)).decode(),
                "problems": orjson.dumps(list(contract.problems)).decode(),
                "document": contract.document,
                "source": source,
                "operation_count": len(ops),
                "state": contract.state,
                "first_seen_at": utcnow(),
            },
        )
        version_id = conn.execute(_VERSION_ID, {"hash": contract.content_hash}).scalar_one()
        executemany(
            conn,
            _INSERT_OPERATION,
            [
                (
                    version_id,
                    op.protocol,
                    op.role,
                    op.method,
                    op.path,
                    op.operation_id,
                    op.deprecated,
                    op.sunset,
                    op.details,
                )
                for op in ops
            ],
        )
        stored += 1 + len(ops)
    return stored


def _contract_id(conn: Connection, contract: Contract, source: str) -> int:
    """The contract's id, made when new; one without a title is named after its file."""
    key = {"kind": contract.kind, "title": contract.title or PurePath(source).stem}
    found = conn.execute(_CONTRACT_ID, key).scalar()
    if found is None:
        conn.execute(_INSERT_CONTRACT, key)
        found = conn.execute(_CONTRACT_ID, key).scalar_one()
    return found


@dataclass(frozen=True)
class VersionSummary:
    """One version of a contract, as ``clew contracts`` lists it."""

    kind: str
    title: str
    version: str | None
    spec_version: str
    content_hash: str
    operations: int
    deprecated: int
    servers: list[str]
    problems: list[str]
    source: str
    first_seen_at: str
    registry_state: str | None = None  # the registry's state: DEPRECATED, DRAFT, ...


def versions(conn: Connection) -> list[VersionSummary]:
    """Every stored version, by contract, oldest version first."""
    rows = conn.execute(
        text(
            "SELECT c.kind, c.title, v.version, v.spec_version, v.content_hash,"
            " v.operation_count, v.servers, v.problems, v.source, v.first_seen_at,"
            " (SELECT count(*) FROM operations o WHERE o.version_id = v.id AND o.deprecated),"
            " v.registry_state"
            " FROM contract_versions v JOIN contracts c ON c.id = v.contract_id"
            " ORDER BY c.kind, c.title, v.first_seen_at, v.id"
        )
    )
    return [
        VersionSummary(
            kind=kind,
            title=title,
            version=version,
            spec_version=spec_version,
            content_hash=content_hash,
            operations=operations,
            deprecated=deprecated,
            servers=orjson.loads(servers),
            problems=orjson.loads(problems),
            source=source,
            first_seen_at=str(first_seen),
            registry_state=state,
        )
        for (
            kind,
            title,
            version,
            spec_version,
            content_hash,
            operations,
            servers,
            problems,
            source,
            first_seen,
            deprecated,
            state,
        ) in rows
    ]


def version(conn: Connection, reference: str) -> tuple[str, dict, list[Operation], tuple] | None:
    """A stored version by content hash (12 characters of it or more) or ``TITLE@VERSION`` (the
    latest with that version): (label, document, operations, servers); None when there is none."""
    if "@" in reference:
        title, _, wanted = reference.rpartition("@")
        row = conn.execute(
            text(
                "SELECT v.id, c.title, v.version, v.content_hash, v.document, v.servers"
                " FROM contract_versions v JOIN contracts c ON c.id = v.contract_id"
                " WHERE c.title = :title AND v.version = :version ORDER BY v.id DESC LIMIT 1"
            ),
            {"title": title, "version": wanted},
        ).first()
    elif len(reference) >= 12 and all(ch in "0123456789abcdef" for ch in reference.lower()):
        row = conn.execute(
            text(
                "SELECT v.id, c.title, v.version, v.content_hash, v.document, v.servers"
                " FROM contract_versions v JOIN contracts c ON c.id = v.contract_id"
                " WHERE v.content_hash LIKE :prefix ORDER BY v.id DESC LIMIT 1"
            ),
            {"prefix": reference.lower() + "%"},
        ).first()
    else:
        return None
    if row is None:
        return None
    version_id, title, version_text, content_hash, document, servers = row
    operations = [
        Operation(content_hash, *op)
        for op in conn.execute(
            text(
                "SELECT protocol, role, method, path, operation_id, deprecated, sunset, details"
                " FROM operations WHERE version_id = :id ORDER BY id"
            ),
            {"id": version_id},
        )
    ]
    label = f"{title}@{version_text or '?'} ({content_hash[:12]})"
    return label, orjson.loads(document), operations, tuple(orjson.loads(servers))


@dataclass(frozen=True)
class StoredVersion:
    """A contract version with its operations, for the inventory."""

    kind: str
    title: str
    version: str | None
    content_hash: str
    servers: tuple[str, ...]
    operations: list[Operation]
    state: str | None = None  # the registry's: DEPRECATED, ...


def every_version(conn: Connection) -> dict[tuple[str, str], list[StoredVersion]]:
    """Every stored version with its operations, by contract (kind, title), oldest first."""
    versions: dict[int, StoredVersion] = {}
    by_contract: dict[tuple[str, str], list[StoredVersion]] = {}
    rows = conn.execute(
        text(
            "SELECT v.id, c.kind, c.title, v.version, v.content_hash, v.servers, v.registry_state"
            " FROM contract_versions v JOIN contracts c ON c.id = v.contract_id"
            " ORDER BY c.kind, c.title, v.first_seen_at, v.id"
        )
    )
    for version_id, kind, title, version_text, content_hash, servers, state in rows:
        stored = StoredVersion(
            kind, title, version_text, content_hash, tuple(orjson.loads(servers)), [], state
        )
        versions[version_id] = stored
        by_contract.setdefault((kind, title), []).append(stored)
    operations = conn.execute(
        text(
            "SELECT version_id, protocol, role, method, path, operation_id, deprecated, sunset,"
            " details FROM operations ORDER BY id"
        )
    )
    for version_id, protocol, role, method, path, operation_id, deprecated, *rest in operations:
        stored = versions[version_id]
        stored.operations.append(
            Operation(
                stored.content_hash,
                protocol,
                role,
                method,
                path,
                operation_id,
                bool(deprecated),  # SQLite gives 0 and 1
                *rest,
            )
        )
    return by_contract
