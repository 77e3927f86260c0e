"""Segment positions that cardinality decided are route parameters (``clew.routes.Cardinality``),
at rest: (service, method, prefix), the method '' for any; and the values it is still counting at
undecided positions. Read when an ingest starts; each decision and each count written with the
batch that made it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.store import executemany, insert_ignoring_duplicates

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


#: The digests of a position's values, each this long (``clew.routes``' digest).
DIGEST_BYTES = 8


def load_counting(conn: Connection) -> list[tuple[Position, int, list[bytes]]]:
    """Every position still counted, with when it was last seen and its values' digests; least
    recently seen first."""
    rows = conn.execute(
        text(
            "SELECT service, method, prefix, seen, digests FROM route_counting"
            " ORDER BY seen, service, method, prefix"
        )
    )
    return [
        ((service, method or None, prefix), seen, _split(bytes(digests)))
        for service, method, prefix, seen, digests in rows
    ]


def _split(digests: bytes) -> list[bytes]:
    return [digests[at : at + DIGEST_BYTES] for at in range(0, len(digests), DIGEST_BYTES)]


_UPSERT_COUNTING = (
    "INSERT INTO route_counting (service, method, prefix, seen, digests) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (service, method, prefix) DO UPDATE SET seen = excluded.seen,"
    " digests = excluded.digests"
)
_DELETE_COUNTING = text(
    "DELETE FROM route_counting WHERE service = :service AND method = :method"
    " AND prefix IN :prefixes"
).bindparams(bindparam("prefixes", expanding=True))


def save_counting(
    conn: Connection,
    counted: Iterable[tuple[Position, int, Iterable[bytes]]],
    ended: Iterable[Position],
) -> None:
    """Keep the values counted at positions, each with when it was last seen (replacing what
    was kept of it), and forget the positions whose counting ended."""
    rows = [
        (service, method or "", prefix, seen, b"".join(digests))
        for (service, method, prefix), seen, digests in counted
    ]
    if rows:
        executemany(conn, _UPSERT_COUNTING, rows)
    by_owner: dict[tuple[str, str], list[str]] = {}
    for service, method, prefix in ended:
        by_owner.setdefault((service, method or ""), []).append(prefix)
    for (service, method), prefixes in by_owner.items():
        for start in range(0, len(prefixes), 500):
            params = {
                "service": service,
                "method": method,
                "prefixes": prefixes[start : start + 500],
            }
            conn.execute(_DELETE_COUNTING, params)
