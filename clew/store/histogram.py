"""Fixed log-bucket latency histograms (the DDSketch mapping) with a 2 % relative-error bound.

A duration ``x`` (ns) falls in bucket ``i = ceil(log_gamma(x))``, so the bucket covers
``(gamma**(i-1), gamma**i]``. Reporting ``2 * gamma**i / (gamma + 1)`` for any value in it is off by
at most ``ALPHA`` relative to the true value. Buckets are fixed, so histograms from any minutes,
edges or processes merge by adding counts: p50/p95/p99 over a window are a merge, never a scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import msgspec
import orjson

#: The promised bound on relative error.
ALPHA = 0.02
# The buckets are cut a little finer than the bound so that float rounding at a bucket's edge
# never pushes an estimate past it.
_MAPPING_ALPHA = 0.0195
GAMMA = (1 + _MAPPING_ALPHA) / (1 - _MAPPING_ALPHA)
_LOG_GAMMA = math.log(GAMMA)
#: Durations of 0 ns (clock resolution, or missing end times) share one bucket.
ZERO_BUCKET = -(2**31)


def bucket_of(duration_ns: int) -> int:
    """The bucket index of a duration in nanoseconds."""
    if duration_ns <= 0:
        return ZERO_BUCKET
    return math.ceil(math.log(duration_ns) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The representative value (ns) of a bucket: within ALPHA of every value in it."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Add histograms bucket by bucket."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for index, count in histogram.items():
            total[index] = total.get(index, 0) + count
    return total


def quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ns: the value of rank ``ceil(q * n)`` (the lower nearest rank).

    ``None`` for an empty histogram.
    """
    n = sum(histogram.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(histogram))


def dumps(histogram: Mapping[int, int]) -> str:
    """The stored form: a JSON object of bucket index to count, its keys in text order (one
    histogram always has the same text)."""
    # orjson writes the integer keys as strings and sorts them itself: five times as fast as
    # sorting the items first (a block's histogram is written again with every batch).
    return orjson.dumps(histogram, option=_DUMPS_OPTIONS).decode()


_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
#: Reads the keys as integers while it parses: three times as fast as converting them after.
_DECODER = msgspec.json.Decoder(dict[int, int])


def loads(text: str | bytes | None) -> dict[int, int]:
    """Parse the stored form."""
    if not text:
        return {}
    return _DECODER.decode(text)
