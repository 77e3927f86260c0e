"""A service catalog at rest: entities by ref, the relations they declare, the API definitions
they carry. A catalog file is read whole whenever it changes, and what it declared before is
replaced by what it declares now (an entity moved to another file moves with it)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.records import ApiDefinition, CatalogEntity, DeclaredDependency
from clew.store import executemany, insert_ignoring_duplicates, utcnow

_IDS_PER_QUERY = 500
_ENTITY_COLUMNS = (
    "ref, kind, namespace, name, title, description, type, lifecycle, owner, system, domain,"
    " tags, annotations, links, problems, source, updated_at"
)


def write(
    conn: Connection,
    source: str,
    entities: Sequence[CatalogEntity],
    dependencies: Sequence[DeclaredDependency],
    definitions: Sequence[ApiDefinition],
) -> int:
    """Replace what ``source`` declared with these records; returns how many were stored."""
    for table in ("catalog_entities", "declared_dependencies", "api_definitions"):
        conn.execute(text(f"DELETE FROM {table} WHERE source = :source"), {"source": source})
    refs = [e.ref for e in entities]
    for start in range(0, len(refs), _IDS_PER_QUERY):  # declared elsewhere before: moved here
        batch = {"refs": refs[start : start + _IDS_PER_QUERY]}
        for statement in (
            "DELETE FROM catalog_entities WHERE ref IN :refs",
            "DELETE FROM declared_dependencies WHERE declared_by IN :refs",
        ):
            conn.execute(text(statement).bindparams(bindparam("refs", expanding=True)), batch)
    now = utcnow()
    marks = ", ".join("?" * 17)
    executemany(
        conn,
        f"INSERT INTO catalog_entities ({_ENTITY_COLUMNS}) VALUES ({marks})",
        [
            (
                e.ref,
                e.kind,
                e.namespace,
                e.name,
                e.title,
                e.description,
                e.type,
                e.lifecycle,
                e.owner,
                e.system,
                e.domain,
                orjson.dumps(list(e.tags)).decode(),
                e.annotations,
                e.links,
                orjson.dumps(list(e.problems)).decode(),
                source,
                now,
            )
            for e in entities
        ],
    )
    stored = len(entities)
    stored += insert_ignoring_duplicates(
        conn,
        "declared_dependencies",
        ("from_ref", "to_ref", "relation", "declared_by", "field", "source"),
        [(d.from_ref, d.to_ref, d.relation, d.declared_by, d.field, source) for d in dependencies],
    )
    refs = [d.api_ref for d in definitions]
    for start in range(0, len(refs), _IDS_PER_QUERY):
        conn.execute(
            text("DELETE FROM api_definitions WHERE api_ref IN :refs").bindparams(
                bindparam("refs", expanding=True)
            ),
            {"refs": refs[start : start + _IDS_PER_QUERY]},
        )
    executemany(
        conn,
        "INSERT INTO api_definitions (api_ref, spec_type, location, content_hash, problems,"
        " source) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                d.api_ref,
                d.spec_type,
                d.location,
                None if d.text is None else hashlib.sha256(d.text.encode()).hexdigest(),
                orjson.dumps(list(d.problems)).decode(),
                source,
            )
            for d in definitions
        ],
    )
    return stored + len(definitions)


def entities(conn: Connection) -> list[dict]:
    """Every catalog entity, by ref."""
    rows = conn.execute(text(f"SELECT {_ENTITY_COLUMNS} FROM catalog_entities ORDER BY ref"))
    found = []
    for row in rows:
        entity = dict(row._mapping)
        entity["tags"] = orjson.loads(entity["tags"])
        entity["problems"] = orjson.loads(entity["problems"])
        entity["updated_at"] = str(entity["updated_at"])
        found.append(entity)
    return found


def dependencies(conn: Connection) -> list[tuple[str, str, str]]:
    """Every declared relation: (from ref, to ref, relation), sorted."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT from_ref, to_ref, relation FROM declared_dependencies ORDER BY 1, 2, 3"
        )
    )
    return [tuple(row) for row in rows]


def definitions(conn: Connection) -> dict[str, str | None]:
    """Each API entity's ref → the content hash of the contract its definition is."""
    rows = conn.execute(text("SELECT api_ref, content_hash FROM api_definitions"))
    return dict(rows.all())


def entity_name(ref: str) -> str:
    """An entity ref's name: ``component:default/orders`` → ``orders``."""
    return ref.rsplit("/", 1)[-1].split(":", 1)[-1]
