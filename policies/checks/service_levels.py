"""Service levels: the error ratio and the p99 latency of each edge and each endpoint, against
thresholds, where enough calls were made to judge; over each rule's own window (the last hour by
default) ending where the evaluation's window ends, because a service level is judged on what
the landscape does now, not averaged over a week."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policies.engine import CHECKS, Context, Hit

if TYPE_CHECKING:  # the inventory and the store are read only when a store is evaluated
    from clew.inventory import Endpoint
    from clew.store import queries
    from clew.store.queries import EdgeTotals

NS_PER_MS = 1_000_000
_DURATION = re.compile(r"^(\d+)([mhd])$")
_MINUTES = {"m": 1, "h": 60, "d": 1440}


def _minutes(duration: str) -> int:
    match = _DURATION.match(duration.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"window {duration!r} is not a duration such as 30m, 1h or 7d")
    return int(match[1]) * _MINUTES[match[2]]


def _window(context: Context, duration: str) -> queries.Window:
    """The last ``duration`` before the evaluation window's end (or now)."""
    from clew.store import queries

    end = context.window.until_minute if context.window else None
    if end is None:
        end = -(-int(context.now.timestamp()) // 60)
    return queries.Window(end - _minutes(duration), end)


@dataclass(frozen=True)
class ErrorRatioOptions:
    max_ratio: float = 0.05  # failed calls over calls
    min_calls: int = 100  # fewer calls than this are not judged
    window: str = "1h"  # the last 30m, 1h, 1d, ... before the evaluation's end

    def __post_init__(self) -> None:
        _minutes(self.window)


@dataclass(frozen=True)
class LatencyOptions:
    max_ms: float = 1000.0
    quantile: float = 0.99
    min_calls: int = 100
    window: str = "1h"

    def __post_init__(self) -> None:
        _minutes(self.window)
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile {self.quantile} is not between 0 and 1")


def _ratio(what: str, count: int, errors: int, options: ErrorRatioOptions):
    if count < options.min_calls or count == 0:
        return
    ratio = errors / count
    if ratio > options.max_ratio:
        yield Hit(
            f"{what}: {ratio:.1%} of {count:,} calls in the last {options.window} failed (at"
            f" most {options.max_ratio:.1%})"
        )


def _latency(what: str, count: int, buckets: dict[int, int], options: LatencyOptions):
    if count < options.min_calls or not buckets:
        return
    from clew.store import histogram

    value = histogram.quantile(buckets, options.quantile)
    if value is not None and value / NS_PER_MS > options.max_ms:
        label = f"p{options.quantile * 100:g}"
        yield Hit(
            f"{what}: {label} {value / NS_PER_MS:,.0f} ms over {count:,} calls in the last"
            f" {options.window} (at most {options.max_ms:,.0f} ms)"
        )


def _edge_totals(context: Context, duration: str) -> dict[tuple[str, str, str], EdgeTotals]:
    from clew.store import queries

    window = _window(context, duration)
    return context.cached(
        f"edge-totals {duration}",
        lambda: {
            (e.client, e.server, e.connection_type): e
            for e in queries.edge_totals(context.conn, window)
        },
    )


@CHECKS.register("edge-error-ratio", "edge", ErrorRatioOptions)
def edge_error_ratio(edge: EdgeTotals, options: ErrorRatioOptions, context: Context):
    """An edge whose share of failed calls over the rule's window is above the threshold."""
    recent = _edge_totals(context, options.window).get(
        (edge.client, edge.server, edge.connection_type)
    )
    if recent is not None:
        what = f"{edge.client} → {edge.server}"
        yield from _ratio(what, recent.count, recent.errors, options)


@CHECKS.register("edge-latency", "edge", LatencyOptions)
def edge_latency(edge: EdgeTotals, options: LatencyOptions, context: Context):
    """An edge whose latency quantile (p99 by default) over the rule's window is above the
    threshold."""
    recent = _edge_totals(context, options.window).get(
        (edge.client, edge.server, edge.connection_type)
    )
    if recent is not None:
        what = f"{edge.client} → {edge.server}"
        yield from _latency(what, recent.count, recent.histogram, options)


def _endpoint_totals(context: Context, duration: str) -> dict[tuple[str, str], EdgeTotals]:
    """(server, "METHOD route") → its totals over every caller in the last ``duration``."""
    from clew.store import queries
    from clew.store.queries import EdgeTotals

    window = _window(context, duration)

    def merge() -> dict[tuple[str, str], EdgeTotals]:
        merged: dict[tuple[str, str], EdgeTotals] = {}
        for endpoint, totals in queries.endpoint_totals(context.conn, window):
            into = merged.setdefault(
                (totals.server, endpoint), EdgeTotals("*", totals.server, totals.connection_type)
            )
            into.count += totals.count
            into.errors += totals.errors
            for index, n in totals.histogram.items():
                into.histogram[index] = into.histogram.get(index, 0) + n
        return merged

    return context.cached(f"endpoint-totals {duration}", merge)


def _endpoint_key(endpoint: Endpoint) -> tuple[str, str]:
    if endpoint.protocol == "messaging":
        return endpoint.service, endpoint.route
    return endpoint.service, f"{endpoint.method} {endpoint.route}"


@CHECKS.register("endpoint-error-ratio", "endpoint", ErrorRatioOptions)
def endpoint_error_ratio(endpoint: Endpoint, options: ErrorRatioOptions, context: Context):
    """An endpoint whose share of failed calls over the rule's window is above the threshold."""
    totals = _endpoint_totals(context, options.window).get(_endpoint_key(endpoint))
    if totals is not None:
        what = f"{endpoint.method} {endpoint.route}"
        yield from _ratio(what, totals.count, totals.errors, options)


@CHECKS.register("endpoint-latency", "endpoint", LatencyOptions)
def endpoint_latency(endpoint: Endpoint, options: LatencyOptions, context: Context):
    """An endpoint whose latency quantile (p99 by default) over the rule's window is above the
    threshold."""
    totals = _endpoint_totals(context, options.window).get(_endpoint_key(endpoint))
    if totals is not None:
        what = f"{endpoint.method} {endpoint.route}"
        yield from _latency(what, totals.count, totals.histogram, options)
