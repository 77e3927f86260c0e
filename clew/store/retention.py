"""Retention: how long each tier of data is kept, and the removal of what is older.

Three horizons, each optional, each counted back from now and rounded down to a UTC day, so that
a day is kept or removed whole and SQLite and PostgreSQL keep the same rows:

* ``raw``: spans and gateway requests (``clew.store.partitions``: whole day partitions dropped on
  PostgreSQL, the same days' rows deleted on SQLite).
* ``minutes``: the minute tier of the rollups: minute cells of ``edge_rollups``, the 10-minute
  blocks, and the failing paths' minutes.
* ``hours``: the hour tier: the hour and day blocks of ``edge_rollup_blocks``.

A window reaching before the minutes' horizon is read from the hour and day blocks
(``clew.store.blocks.plan``), so it is counted at the resolution of an hour at its ragged start.
Rollups outlive the raw rows they were made from: the failing paths keep their exemplar trace
ids, which the console fetches from a trace store when the spans are gone. Endpoints, contracts,
findings and accounts are not data of a time and are never removed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.store import partitions
from clew.store.partitions import NS_PER_DAY, Dropped

_NS_PER_MINUTE = 60_000_000_000
_MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Horizons:
    """How long each tier is kept, in seconds; None keeps it for ever."""

    raw_s: float | None = None
    minutes_s: float | None = None
    hours_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("raw_s", "minutes_s", "hours_s"):
            value = getattr(self, name)
            if value is not None and value < 86_400:
                raise ValueError(f"{name[:-2]}: at least a day (1d), not {value:g} s")
        kept = [v for v in (self.raw_s, self.minutes_s, self.hours_s) if v is not None]
        if kept != sorted(kept):
            raise ValueError("raw is kept no longer than minutes, minutes than hours")


@dataclass
class Report:
    """What one retention pass removed (or, dry, would remove)."""

    dry_run: bool = False
    #: The first kept day of each tier, as YYYY-MM-DD (None: the tier is kept for ever).
    raw_from: str | None = None
    minutes_from: str | None = None
    hours_from: str | None = None
    raw: list[Dropped] = field(default_factory=list)
    minute_cells: int = 0
    ten_minute_blocks: int = 0
    failing_path_minutes: int = 0
    hour_and_day_blocks: int = 0

    def as_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "raw_from": self.raw_from,
            "minutes_from": self.minutes_from,
            "hours_from": self.hours_from,
            "raw": [dropped.as_json() for dropped in self.raw],
            "minute_cells": self.minute_cells,
            "ten_minute_blocks": self.ten_minute_blocks,
            "failing_path_minutes": self.failing_path_minutes,
            "hour_and_day_blocks": self.hour_and_day_blocks,
        }


def _cutoff_day(now_ns: int, keep_s: float) -> int:
    """The first day kept: the day that ``keep_s`` before now falls on."""
    return (now_ns - int(keep_s * 1e9)) // NS_PER_DAY


def apply(conn: Connection, horizons: Horizons, now_ns: int, dry_run: bool = False) -> Report:
    """Remove what each tier holds before its horizon, in the caller's transaction (which it
    holds the writers' lock for); with ``dry_run``, count it only."""
    report = Report(dry_run=dry_run)
    partitions.take_writer_lock(conn)
    if horizons.raw_s is not None:
        day = _cutoff_day(now_ns, horizons.raw_s)
        report.raw_from = partitions.day_text(day)
        report.raw = partitions.drop_before(conn, day * NS_PER_DAY, dry_run)
    if horizons.minutes_s is not None:
        day = _cutoff_day(now_ns, horizons.minutes_s)
        report.minutes_from = partitions.day_text(day)
        minute = day * _MINUTES_PER_DAY
        report.minute_cells = _remove(conn, "edge_rollups WHERE minute < :m", minute, dry_run)
        report.ten_minute_blocks = _remove(
            conn, "edge_rollup_blocks WHERE block_minutes = 10 AND minute < :m", minute, dry_run
        )
        report.failing_path_minutes = _remove(
            conn, "failing_paths WHERE minute < :m", minute, dry_run
        )
    if horizons.hours_s is not None:
        day = _cutoff_day(now_ns, horizons.hours_s)
        report.hours_from = partitions.day_text(day)
        report.hour_and_day_blocks = _remove(
            conn,
            "edge_rollup_blocks WHERE block_minutes IN (60, 1440) AND minute < :m",
            day * _MINUTES_PER_DAY,
            dry_run,
        )
    return report


def _remove(conn: Connection, where: str, minute: int, dry_run: bool) -> int:
    if dry_run:
        return conn.execute(text(f"SELECT count(*) FROM {where}"), {"m": minute}).scalar_one()
    return conn.execute(text(f"DELETE FROM {where}"), {"m": minute}).rowcount
