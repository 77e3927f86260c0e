"""Rollup blocks: the per-minute edge cells added up over aligned blocks of 10 minutes, an hour and
a day, kept in the transaction that writes the minute cells.

Every field of a cell but its maximum is additive, so a block is the sum of its minutes (its
maximum the largest of theirs, read from them where a change may have taken it out), and a window
is read as the largest whole blocks it holds plus the minutes at its ragged ends (``plan``): the
last seven days merge some 80 rows per edge and endpoint instead of 10,080. Whatever writes minute
cells to ``edge_rollups`` passes the same changes to ``apply`` in the same transaction, after
writing them, and whatever deletes minute cells (retention) deletes the blocks that hold them, or
reads count them still.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.store import executemany
from clew.store.cells import Cell, applied

#: Block lengths in minutes, longest first; each divides the one before it.
BLOCK_MINUTES = (1440, 60, 10)


def plan(
    since: int | None, until: int | None, lengths: tuple[int, ...] = BLOCK_MINUTES
) -> list[tuple[int, int | None, int | None]]:
    """``[since, until)`` (epoch minutes, ``None`` open) as ``(length, start, end)`` parts that
    cover it exactly once: whole blocks of each length, longest first, and minutes (length 1)
    where no whole block fits."""
    if not lengths:
        return [(1, since, until)] if since is None or until is None or since < until else []
    length, shorter = lengths[0], lengths[1:]
    start = None if since is None else -(-since // length) * length
    end = None if until is None else until // length * length
    if start is not None and end is not None and start >= end:
        return plan(since, until, shorter)
    parts = []
    if since is not None and since < start:
        parts += plan(since, start, shorter)
    parts.append((length, start, end))
    if until is not None and end < until:
        parts += plan(end, until, shorter)
    return parts


_SELECT = text(
    "SELECT id, block_minutes, minute, client, server, connection_type, endpoint, source, count,"
    " errors, client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count, lag_sum_ns,"
    " lag_histogram FROM edge_rollup_blocks"
    " WHERE block_minutes = :length AND minute IN :starts AND source IN :sources"
).bindparams(bindparam("starts", expanding=True), bindparam("sources", expanding=True))
_INSERT = (
    "INSERT INTO edge_rollup_blocks (block_minutes, minute, client, server, connection_type,"
    " endpoint, source, count, errors, client_errors, duration_sum_ns, duration_max_ns,"
    " histogram, lag_count, lag_sum_ns, lag_histogram)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE edge_rollup_blocks SET count = ?, errors = ?, client_errors = ?,"
    " duration_sum_ns = ?, duration_max_ns = ?, histogram = ?, lag_count = ?, lag_sum_ns = ?,"
    " lag_histogram = ? WHERE id = ?"
)
_DELETE = "DELETE FROM edge_rollup_blocks WHERE id = ?"


def apply(conn: Connection, cells: Mapping[tuple, Cell]) -> int:
    """Add changes to minute cells, keyed ``(minute, client, server, connection type, endpoint,
    source)``, to the blocks that hold them; returns the block rows written."""
    changes: dict[tuple, Cell] = {}
    # Shortest blocks from the minutes, each longer one from the one below: every length divides
    # the next, and the buckets of far fewer sums are added up.
    below: Mapping[tuple, Cell] = {(1, *key): cell for key, cell in cells.items()}
    for length in reversed(BLOCK_MINUTES):
        level: dict[tuple, Cell] = {}
        for (_, minute, *rest), cell in below.items():
            key = (length, minute - minute % length, *rest)
            total = level.get(key)
            if total is None:
                total = level[key] = Cell()
            total.add(cell)
        changes.update(level)
        below = level
    if not changes:
        return 0
    sources = sorted({key[6] for key in changes})
    stored: dict[tuple, Any] = {}
    for length in BLOCK_MINUTES:
        starts = sorted({key[1] for key in changes if key[0] == length})
        for at in range(0, len(starts), 500):
            params = {"length": length, "starts": starts[at : at + 500], "sources": sources}
            for row in conn.execute(_SELECT, params):
                stored[tuple(row[1:8])] = row
    inserts, updates, deletes = [], [], []
    for key in sorted(changes):
        old = stored.get(key)
        values = applied(old[8:17] if old is not None else None, changes[key])
        if values is not None and values[4] is None:
            values = (*values[:4], _longest(conn, key), *values[5:])
        if values is None:
            if old is not None:
                deletes.append((old[0],))
        elif old is None:
            inserts.append((*key, *values))
        else:
            updates.append((*values, old[0]))
    for statement, rows in ((_DELETE, deletes), (_UPDATE, updates), (_INSERT, inserts)):
        if rows:
            executemany(conn, statement, rows)
    return len(inserts) + len(updates) + len(deletes)


_LONGEST = text(
    "SELECT MAX(duration_max_ns) FROM edge_rollups WHERE client = :client AND server = :server"
    " AND minute >= :since AND minute < :until AND connection_type = :connection_type"
    " AND endpoint = :endpoint AND source = :source"
)


def _longest(conn: Connection, key: tuple) -> int:
    """The maximum of a block whose change may have taken it out (``clew.store.cells.settled``):
    the largest of its minute cells', written already."""
    length, minute, client, server, connection_type, endpoint, source = key
    params = {
        "client": client,
        "server": server,
        "since": minute,
        "until": minute + length,
        "connection_type": connection_type,
        "endpoint": endpoint,
        "source": source,
    }
    return conn.execute(_LONGEST, params).scalar() or 0


def clear(conn: Connection, sources: Iterable[str]) -> None:
    """Delete the blocks of these sources (before their minute cells are rebuilt)."""
    conn.execute(
        text("DELETE FROM edge_rollup_blocks WHERE source IN :sources").bindparams(
            bindparam("sources", expanding=True)
        ),
        {"sources": list(sources)},
    )
