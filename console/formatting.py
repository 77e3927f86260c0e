"""How numbers read in the console: rates, ratios, latencies and minutes, one way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def count(value: int | None) -> str:
    """``12345`` → ``12,345``."""
    return "–" if value is None else f"{value:,}"


def rate(rps: float | None) -> str:
    """Requests per second with sensible precision: ``12.3/s``, ``0.042/s``, ``1,204/s``."""
    if rps is None:
        return "–"
    if rps == 0:
        return "0/s"
    if rps >= 100:
        return f"{rps:,.0f}/s"
    if rps >= 10:
        return f"{rps:.1f}/s"
    if rps >= 0.01:
        return f"{rps:.2f}/s"
    return f"{rps:.4f}/s"


def ratio(value: float | None) -> str:
    """An error ratio as a percentage: ``0.0231`` → ``2.31 %``; a tiny non-zero one is not 0."""
    if value is None:
        return "–"
    if value == 0:
        return "0 %"
    percent = value * 100
    if percent < 0.01:
        return "<0.01 %"
    if percent >= 10:
        return f"{percent:.1f} %"
    return f"{percent:.2f} %"


def ms(value: float | None) -> str:
    """A latency in milliseconds: ``0.27 ms``, ``42 ms``, ``1.25 s``."""
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def minute(epoch_minute: int | None) -> str:
    """An epoch minute as ``2026-11-18 09:40 UTC``."""
    if epoch_minute is None:
        return "–"
    return datetime.fromtimestamp(epoch_minute * 60, UTC).strftime("%Y-%m-%d %H:%M UTC")


def latencies(p50: float | None, p95: float | None, p99: float | None) -> str:
    """Three percentiles compactly: ``12 / 40 / 88 ms``, each in its own unit past a second."""
    values = (p50, p95, p99)
    if all(v is not None and v < 1000 for v in values):
        return " / ".join(ms(v)[:-3] for v in values) + " ms"
    return " / ".join(ms(v) for v in values)


def duration_minutes(minutes: int) -> str:
    """A whole number of minutes in words: ``45 minutes``, ``3 hours``, ``1 day 2 hours``."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if n
    ]
    return " ".join(parts) or "0 minutes"


def instant(ns: int | None) -> str:
    """An epoch-ns time as ``2026-11-18 09:40:12 UTC``."""
    if ns is None:
        return "–"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ns: int | None, now_ns: int) -> str:
    """How long before ``now_ns`` a time was, roughly: ``12 minutes ago``, ``3 days ago``."""
    if ns is None:
        return "–"
    minutes = max(0, (now_ns - ns) // 60_000_000_000)
    if minutes < 1:
        return "just now"
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size:
            n = minutes // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
