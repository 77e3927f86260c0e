"""Rollup cells: the additive sums one edge cell holds, and how a change to them is applied to
the stored row. Minute cells (``edge_rollups``) and their blocks (``edge_rollup_blocks``) share
both, so the two tables can never disagree on the arithmetic.

The largest duration of a cell cannot be subtracted. A change therefore carries the largest
duration it adds and the largest it takes out, each with how many of its values are that
duration (``settled``): that tells the cell's new maximum from its stored one unless what is
taken out is the maximum itself and no copy of it is known to be left. Only then is the maximum
unknown (None) and read back from what the cell is made of (``clew.pipeline.rollups.apply``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from clew.store import histogram

#: The stored columns of a cell, in the order ``applied`` reads and returns them.
VALUE_COLUMNS = (
    "count",
    "errors",
    "client_errors",
    "duration_sum_ns",
    "duration_max_ns",
    "histogram",
    "lag_count",
    "lag_sum_ns",
    "lag_histogram",
)

V = TypeVar("V", int, tuple)


class Cell:
    """Additive sums of one rollup cell, and the extremes of the durations a change adds and
    takes out (``duration_max`` and ``max_count``, ``taken_max`` and ``taken_count``: a count of
    0 means none). Durations below 0 count as 0 there, as a stored maximum is never below 0.

    ``lag_*`` measure queue lag (consumer start − producer end) on a topic → consumer edge, for
    the consumer spans whose producer span is known.
    """

    __slots__ = (
        "buckets",
        "client_errors",
        "count",
        "duration_max",
        "duration_sum",
        "errors",
        "lag_buckets",
        "lag_count",
        "lag_sum",
        "max_count",
        "taken_count",
        "taken_max",
    )

    def __init__(self) -> None:
        self.count = self.errors = self.client_errors = self.duration_sum = 0
        self.duration_max = self.max_count = self.taken_max = self.taken_count = 0
        self.lag_count = self.lag_sum = 0
        self.buckets: dict[int, int] = {}
        self.lag_buckets: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"Cell(count={self.count}, errors={self.errors}, buckets={self.buckets})"

    def add(self, other: Cell) -> None:
        """Add another cell's sums to this one."""
        self.count += other.count
        self.errors += other.errors
        self.client_errors += other.client_errors
        self.duration_sum += other.duration_sum
        self.duration_max, self.max_count = larger(
            self.duration_max, self.max_count, other.duration_max, other.max_count
        )
        self.taken_max, self.taken_count = larger(
            self.taken_max, self.taken_count, other.taken_max, other.taken_count
        )
        self.lag_count += other.lag_count
        self.lag_sum += other.lag_sum
        for into, buckets in ((self.buckets, other.buckets), (self.lag_buckets, other.lag_buckets)):
            for bucket, n in buckets.items():
                into[bucket] = into.get(bucket, 0) + n

    def see(self, duration: int, sign: int) -> None:
        """A duration added (``sign`` > 0) or taken out, for the extremes."""
        duration = max(duration, 0)
        if sign > 0:
            self.duration_max, self.max_count = larger(
                self.duration_max, self.max_count, duration, sign
            )
        else:
            self.taken_max, self.taken_count = larger(
                self.taken_max, self.taken_count, duration, -sign
            )


def larger(value: V, count: int, other: V, other_count: int) -> tuple[V, int]:
    """The larger of two extremes, each with how many values are it (0: no value)."""
    if not other_count:
        return value, count
    if not count or other > value:
        return other, other_count
    if other == value:
        return value, count + other_count
    return value, count


def smaller(value: V, count: int, other: V, other_count: int) -> tuple[V, int]:
    """The smaller of two extremes, each with how many values are it (0: no value)."""
    if not other_count:
        return value, count
    if not count or other < value:
        return other, other_count
    if other == value:
        return value, count + other_count
    return value, count


def settled(
    stored: V | None,
    added: V,
    added_count: int,
    taken: V,
    taken_count: int,
    *,
    lowest: bool = False,
) -> V | None:
    """A cell's extreme (its largest value; its smallest with ``lowest``) once a change is
    applied, or None when that cannot be told from these alone.

    ``stored`` is the stored extreme (None for a new cell; at least one stored value is it),
    ``added`` the change's extreme among the values it adds and ``added_count`` how many of them
    are it, ``taken`` and ``taken_count`` the same of the values it takes out (each taken value
    was stored or added). What is taken out leaves the extreme standing unless it reaches it and
    as many copies of it go as are known to be there.
    """
    candidates = []
    if stored is not None:
        candidates.append(stored)
    if added_count:
        candidates.append(added)
    if not candidates:
        return None
    best = min(candidates) if lowest else max(candidates)
    if not taken_count or taken != best:
        beyond = taken_count and (taken < best if lowest else taken > best)
        return None if beyond else best
    left = (1 if stored == best else 0) + (added_count if added_count and added == best else 0)
    return best if left > taken_count else None


def applied(stored: Sequence | None, delta: Cell) -> tuple | None:
    """The stored values (``VALUE_COLUMNS`` order, or ``None`` for a new cell) with ``delta``
    added; ``None`` when nothing is left (no count, error or latency) and the row goes. The
    maximum in the values is None when the change took out what may have been the maximum
    (``settled``): the caller reads it back."""
    if stored is None:
        count = errors = client_errors = dsum = lag_count = lag_sum = 0
        dmax = None
        buckets: dict[int, int] = {}
        lag_buckets: dict[int, int] = {}
    else:
        count, errors, client_errors, dsum, dmax = stored[:5]
        buckets = histogram.loads(stored[5])
        lag_count, lag_sum, lag_buckets = stored[6], stored[7], histogram.loads(stored[8])
    count += delta.count
    errors += delta.errors
    buckets = _added(buckets, delta.buckets)
    if count <= 0 and errors <= 0 and not buckets:
        # A cell of spans or requests has its errors and a bucket per call among its count;
        # one of connector metrics may hold errors or latencies whose calls are still to come
        # (an export split over requests), and stays.
        return None
    lag_buckets = _added(lag_buckets, delta.lag_buckets)
    dmax = settled(dmax, delta.duration_max, delta.max_count, delta.taken_max, delta.taken_count)
    lag_count += delta.lag_count
    return (
        count,
        errors,
        client_errors + delta.client_errors,
        dsum + delta.duration_sum,
        dmax,
        histogram.dumps(buckets),
        lag_count,
        lag_sum + delta.lag_sum,
        histogram.dumps(lag_buckets) if lag_count else None,
    )


def _added(stored: dict[int, int], delta: dict[int, int]) -> dict[int, int]:
    """Bucket counts added, empty buckets dropped."""
    for bucket, n in delta.items():
        left = stored.get(bucket, 0) + n
        if left:
            stored[bucket] = left
        else:
            stored.pop(bucket, None)
    return stored
