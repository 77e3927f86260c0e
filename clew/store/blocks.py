"""Rollup blocks: the per-minute edge cells added up over aligned blocks of 10 minutes, an hour and
a day, kept in the transaction that writes the minute cells.

Every field of a cell is additive, so a block is the sum of its minutes, and a window is read as
the largest whole blocks it holds plus the minutes at its ragged ends (``plan``): the last seven
days merge some 80 rows per edge and endpoint instead of 10,080. Whatever writes minute cells to
``edge_rollups`` passes the same changes to ``apply`` in the same transaction, and whatever
deletes minute cells (retention) deletes the blocks that hold them, or reads count them still.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.store import histogram

#: Block lengths in minutes, longest first; each divides the one before it.
BLOCK_MINUTES = (1440, 60, 10)


class CellChange(Protocol):
    """What a change to one minute cell carries (``clew.pipeline.rollups.Cell``)."""

    count: int
    errors: int
    client_errors: int
    duration_sum: int
    duration_max: int
    buckets: dict[int, int]
    clamp: bool
    lag_count: int
    lag_sum: int
    lag_buckets: dict[int, int]


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


class _Sum:
    __slots__ = (
        "buckets",
        "clamp",
        "client_errors",
        "count",
        "duration_max",
        "duration_sum",
        "errors",
        "lag_buckets",
        "lag_count",
        "lag_sum",
    )

    def __init__(self) -> None:
        self.count = self.errors = self.client_errors = self.duration_sum = 0
        self.duration_max = self.lag_count = self.lag_sum = 0
        self.buckets: dict[int, int] = {}
        self.lag_buckets: dict[int, int] = {}
        self.clamp = False

    def add(self, cell: CellChange) -> None:
        self.count += cell.count
        self.errors += cell.errors
        self.client_errors += cell.client_errors
        self.duration_sum += cell.duration_sum
        self.duration_max = max(self.duration_max, cell.duration_max)
        self.clamp = self.clamp or cell.clamp
        self.lag_count += cell.lag_count
        self.lag_sum += cell.lag_sum
        for into, buckets in ((self.buckets, cell.buckets), (self.lag_buckets, cell.lag_buckets)):
            for bucket, n in buckets.items():
                into[bucket] = into.get(bucket, 0) + n


def _added(stored: dict[int, int], delta: dict[int, int]) -> dict[int, int]:
    for bucket, n in delta.items():
        left = stored.get(bucket, 0) + n
        if left:
            stored[bucket] = left
        else:
            stored.pop(bucket, None)
    return stored


def _clamped_max(cell_max: int, buckets: dict[int, int]) -> int:
    # Counts taken out may have held the maximum: keep it within the top bucket left.
    top = max((b for b, n in buckets.items() if n > 0), default=None)
    if top is None or top == histogram.ZERO_BUCKET:
        return 0
    return min(cell_max, int(histogram.GAMMA**top))


_SELECT = text(
    "SELECT id, block_minutes, minute, client, server, connection_type, endpoint, source, count,"
    " errors, client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count, lag_sum_ns,"
    " lag_histogram FROM edge_rollup_blocks"
    " WHERE block_minutes = :length AND minute IN :starts AND source IN :sources"
).bindparams(bindparam("starts", expanding=True), bindparam("sources", expanding=True))
_VALUES = (
    "count, errors, client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count,"
    " lag_sum_ns, lag_histogram"
)
_INSERT = text(
    f"INSERT INTO edge_rollup_blocks (block_minutes, minute, client, server, connection_type,"
    f" endpoint, source, {_VALUES}) VALUES (:block_minutes, :minute, :client, :server,"
    " :connection_type, :endpoint, :source, :count, :errors, :client_errors, :duration_sum_ns,"
    " :duration_max_ns, :histogram, :lag_count, :lag_sum_ns, :lag_histogram)"
)
_UPDATE = text(
    "UPDATE edge_rollup_blocks SET count = :count, errors = :errors,"
    " client_errors = :client_errors, duration_sum_ns = :duration_sum_ns,"
    " duration_max_ns = :duration_max_ns, histogram = :histogram, lag_count = :lag_count,"
    " lag_sum_ns = :lag_sum_ns, lag_histogram = :lag_histogram WHERE id = :id"
)
_DELETE = text("DELETE FROM edge_rollup_blocks WHERE id = :id")


def apply(conn: Connection, cells: Mapping[tuple, CellChange]) -> int:
    """Add changes to minute cells, keyed ``(minute, client, server, connection type, endpoint,
    source)``, to the blocks that hold them; returns the block rows written."""
    changes: dict[tuple, _Sum] = {}
    # Shortest blocks from the minutes, each longer one from the one below: every length divides
    # the next, and the buckets of far fewer sums are added up.
    below: Mapping[tuple, CellChange] = {(1, *key): cell for key, cell in cells.items()}
    for length in reversed(BLOCK_MINUTES):
        level: dict[tuple, _Sum] = {}
        for (_, minute, *rest), cell in below.items():
            key = (length, minute - minute % length, *rest)
            total = level.get(key)
            if total is None:
                total = level[key] = _Sum()
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
        delta, old = changes[key], stored.get(key)
        if old is None:
            count = errors = client_errors = dsum = dmax = lag_count = lag_sum = 0
            buckets: dict[int, int] = {}
            lag_buckets: dict[int, int] = {}
        else:
            count, errors, client_errors, dsum, dmax = old[8:13]
            buckets = histogram.loads(old[13])
            lag_count, lag_sum, lag_buckets = old[14], old[15], histogram.loads(old[16])
        count += delta.count
        if count <= 0:
            if old is not None:
                deletes.append({"id": old[0]})
            continue
        buckets = _added(buckets, delta.buckets)
        lag_buckets = _added(lag_buckets, delta.lag_buckets)
        dmax = max(dmax, delta.duration_max)
        if delta.clamp:
            dmax = _clamped_max(dmax, buckets)
        lag_count += delta.lag_count
        values = {
            "count": count,
            "errors": errors + delta.errors,
            "client_errors": client_errors + delta.client_errors,
            "duration_sum_ns": dsum + delta.duration_sum,
            "duration_max_ns": dmax,
            "histogram": histogram.dumps(buckets),
            "lag_count": lag_count,
            "lag_sum_ns": lag_sum + delta.lag_sum,
            "lag_histogram": histogram.dumps(lag_buckets) if lag_count else None,
        }
        if old is None:
            names = ("block_minutes", "minute", "client", "server", "connection_type")
            inserts.append(values | dict(zip((*names, "endpoint", "source"), key, strict=True)))
        else:
            updates.append(values | {"id": old[0]})
    for statement, rows in ((_DELETE, deletes), (_UPDATE, updates), (_INSERT, inserts)):
        if rows:
            conn.execute(statement, rows)
    return len(inserts) + len(updates) + len(deletes)


def clear(conn: Connection, sources: Iterable[str]) -> None:
    """Delete the blocks of these sources (before their minute cells are rebuilt)."""
    conn.execute(
        text("DELETE FROM edge_rollup_blocks WHERE source IN :sources").bindparams(
            bindparam("sources", expanding=True)
        ),
        {"sources": list(sources)},
    )
