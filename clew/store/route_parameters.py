"""Segment positions that cardinality decided are route parameters (``clew.routes.Cardinality``),
at rest: (service, method, prefix), the method '' for any. Read when an ingest starts; each
decision written with the batch that made it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.store import insert_ignoring_duplicates

Position = tuple[str, str | None, str]


def load(conn: Connection) -> list[Position]:
    """Every decision kept, in the order they were made."""
    rows = conn.execute(text("SELECT service, method, prefix FROM route_parameters ORDER BY id"))
    return [(service, method or None, prefix) for service, method, prefix in rows]


def save(conn: Connection, positions: Iterable[Position]) -> int:
    """Keep decisions (those kept already are left); returns how many are new."""
    rows = [(service, method or "", prefix) for service, method, prefix in positions]
    columns = ("service", "method", "prefix")
    return insert_ignoring_duplicates(conn, "route_parameters", columns, rows)
