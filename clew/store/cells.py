"""Rollup cells: the additive sums one edge cell holds, and how a change to them is applied to
the stored row. Minute cells (``edge_rollups``) and their blocks (``edge_rollup_blocks``) share
both, so the two tables can never disagree on the arithmetic.

The largest duration of a cell cannot be subtracted; when a change takes counts out of a cell,
its maximum is clamped to the upper edge of the highest bucket left, so it stays within the
histogram's 2 %.
"""

from __future__ import annotations

from collections.abc import Sequence

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


class Cell:
    """Additive sums of one rollup cell. ``clamp`` marks a cell that counts were taken out of.

    ``lag_*`` measure queue lag (consumer start − producer end) on a topic → consumer edge, for
    the consumer spans whose producer span is known.
    """

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

    def __repr__(self) -> str:
        return f"Cell(count={self.count}, errors={self.errors}, buckets={self.buckets})"

    def add(self, other: Cell) -> None:
        """Add another cell's sums to this one."""
        self.count += other.count
        self.errors += other.errors
        self.client_errors += other.client_errors
        self.duration_sum += other.duration_sum
        if other.duration_max > self.duration_max:
            self.duration_max = other.duration_max
        self.clamp = self.clamp or other.clamp
        self.lag_count += other.lag_count
        self.lag_sum += other.lag_sum
        for into, buckets in ((self.buckets, other.buckets), (self.lag_buckets, other.lag_buckets)):
            for bucket, n in buckets.items():
                into[bucket] = into.get(bucket, 0) + n


def clamped_max(cell_max: int, buckets: dict[int, int]) -> int:
    """A maximum that counts may have been taken out from, kept within the top bucket left."""
    top = max((b for b, n in buckets.items() if n > 0), default=None)
    if top is None or top == histogram.ZERO_BUCKET:
        return 0
    return min(cell_max, int(histogram.GAMMA**top))


def _added(stored: dict[int, int], delta: dict[int, int]) -> dict[int, int]:
    """Bucket counts added, empty buckets dropped."""
    for bucket, n in delta.items():
        left = stored.get(bucket, 0) + n
        if left:
            stored[bucket] = left
        else:
            stored.pop(bucket, None)
    return stored


def applied(stored: Sequence | None, delta: Cell) -> tuple | None:
    """The stored values (``VALUE_COLUMNS`` order, or ``None`` for a new cell) with ``delta``
    added; ``None`` when no count is left and the row goes."""
    if stored is None:
        count = errors = client_errors = dsum = dmax = lag_count = lag_sum = 0
        buckets: dict[int, int] = {}
        lag_buckets: dict[int, int] = {}
    else:
        count, errors, client_errors, dsum, dmax = stored[:5]
        buckets = histogram.loads(stored[5])
        lag_count, lag_sum, lag_buckets = stored[6], stored[7], histogram.loads(stored[8])
    count += delta.count
    if count <= 0:
        return None
    buckets = _added(buckets, delta.buckets)
    lag_buckets = _added(lag_buckets, delta.lag_buckets)
    dmax = max(dmax, delta.duration_max)
    if delta.clamp:
        dmax = clamped_max(dmax, buckets)
    lag_count += delta.lag_count
    return (
        count,
        errors + delta.errors,
        client_errors + delta.client_errors,
        dsum + delta.duration_sum,
        dmax,
        histogram.dumps(buckets),
        lag_count,
        lag_sum + delta.lag_sum,
        histogram.dumps(lag_buckets) if lag_count else None,
    )
