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


# --- Histograms of other shapes, in these buckets ---------------------------------------------


def spread(into: dict[int, int], low_ns: float, high_ns: float, count: int) -> None:
    """Add ``count`` values that lie somewhere in ``(low_ns, high_ns]`` to ``into``, spread
    evenly as Prometheus's ``histogram_quantile`` interpolates within a bucket: the k-th of them
    sits in the middle of the k-th of ``count`` equal parts of the range. Counts stay whole and
    add up to ``count`` exactly. A range that is a point puts them all there."""
    if count <= 0:
        return
    low = max(low_ns, 0.0)
    if high_ns <= low:
        index = bucket_of(high_ns) if high_ns > 0 else ZERO_BUCKET
        into[index] = into.get(index, 0) + count
        return
    width = high_ns - low

    def placed(edge: float) -> int:
        """How many of the values sit at or below ``edge``."""
        return min(count, max(0, math.floor(count * (edge - low) / width + 0.5)))

    # The first value's bucket holds every value up to its upper edge (those below a
    # nanosecond too: the lowest bucket kept is 1 ns's).
    first = max(0, bucket_of(low + width * 0.5 / count))
    last = max(first, bucket_of(high_ns))
    below = 0
    for index in range(first, last + 1):
        upto = count if index == last else placed(GAMMA**index)
        if upto > below:
            into[index] = into.get(index, 0) + upto - below
            below = upto


def from_explicit(
    bounds_ns: tuple[float, ...],
    counts: tuple[int, ...],
    min_ns: float | None = None,
    max_ns: float | None = None,
) -> dict[int, int]:
    """An explicit-bucket histogram (OTLP's: bucket ``i`` holds values in ``(bounds[i-1],
    bounds[i]]``, the first from 0, the last unbounded) in these buckets, each bucket's count
    spread over the range it covers (``spread``), narrowed to the smallest and largest value
    where they are known. The unbounded bucket's values sit just above its bound unless the
    largest value is known."""
    out: dict[int, int] = {}
    for i, count in enumerate(counts):
        if not count:
            continue
        low = bounds_ns[i - 1] if i > 0 else 0.0
        high = bounds_ns[i] if i < len(bounds_ns) else None
        if min_ns is not None and min_ns > low:
            low = min_ns
        if max_ns is not None and (high is None or max_ns < high):
            high = max_ns
        if high is None or high < low:
            index = bucket_of(math.nextafter(low, math.inf)) if low > 0 else ZERO_BUCKET
            out[index] = out.get(index, 0) + count
        else:
            spread(out, low, high, count)
    return out


def from_exponential(
    scale: int,
    offset: int,
    counts: tuple[int, ...],
    unit_ns: float,
    zero_count: int = 0,
    zero_threshold_ns: float = 0.0,
    min_ns: float | None = None,
    max_ns: float | None = None,
) -> dict[int, int]:
    """An exponential histogram (OTLP's: bucket ``offset + i`` holds values in ``(base**index,
    base**(index + 1)]`` units, ``base = 2 ** 2 ** -scale``) in these buckets, spread as
    ``from_explicit`` spreads. Values in its zero bucket are 0 here, or spread below its
    threshold where that is a nanosecond or more."""
    out: dict[int, int] = {}
    if zero_count:
        if zero_threshold_ns >= 1.0:
            spread(out, 0.0, zero_threshold_ns, zero_count)
        else:
            out[ZERO_BUCKET] = zero_count
    step = math.ldexp(math.log(2.0), -scale)  # ln(base)
    for i, count in enumerate(counts):
        if not count:
            continue
        index = offset + i
        low, high = math.exp(index * step) * unit_ns, math.exp((index + 1) * step) * unit_ns
        if min_ns is not None and low < min_ns <= high:
            low = min_ns
        if max_ns is not None and low < max_ns < high:
            high = max_ns
        spread(out, low, high, count)
    return out
