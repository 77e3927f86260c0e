"""Raw tables by day: on PostgreSQL, spans and gateway requests live in one partition per day,
and retention drops whole partitions; on SQLite, retention deletes the same days' rows.

The raw tables (``RAW_TABLES``) are range-partitioned on ``start_ns``, each partition one UTC
day, named ``<table>_d<YYYYMMDD>``. Their primary key is ``(id, start_ns)``, as PostgreSQL
requires of a partitioned table's keys; nothing refers to those ids. A write makes the
partitions its rows need first (``ensure``), under the writer's lock
(``clew.pipeline.Batch.write``), so two writers never race to make one. Retention (``drop_before``)
takes that lock too: a partition is never dropped between a writer's check and its rows.

Retention goes by whole days on both databases, so that SQLite and PostgreSQL keep the same rows:
a day is dropped once all of it is older than the cut-off. A chunk belongs to the day its earliest
row started (``clew.store.spans``, ``clew.store.gateway_requests`` keep chunks within a day).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: The raw tables partitioned by day, and the indexes each has besides its primary key
#: (``clew.store.models``; a test keeps the two in step).
RAW_TABLES = ("span_chunks", "gateway_request_chunks", "gateway_traces")
NS_PER_DAY = 86_400 * 1_000_000_000
_PARTITION = re.compile(r"^(?P<table>" + "|".join(RAW_TABLES) + r")_d(?P<day>\d{8})$")
#: The advisory lock batch writes take (``clew.pipeline``): "clew" in ASCII.
WRITER_LOCK = 0x636C6577


def day_of(start_ns: int) -> int:
    """The day (days since the Unix epoch, UTC) a start time falls on."""
    return start_ns // NS_PER_DAY


def day_text(day: int) -> str:
    """A day as ``YYYY-MM-DD``."""
    return f"{datetime.fromtimestamp(day * 86_400, UTC):%Y-%m-%d}"


def partition_name(table: str, day: int) -> str:
    """The name of ``table``'s partition for ``day``: ``span_chunks_d20261207``."""
    return f"{table}_d{datetime.fromtimestamp(day * 86_400, UTC):%Y%m%d}"


def is_partition(name: str) -> bool:
    """Whether a table's name is one of a raw table's day partitions (which the models do not
    list: migrations' autogenerate leaves them alone)."""
    return _PARTITION.match(name) is not None


def _day_of_name(name: str) -> int:
    stamp = datetime.strptime(_PARTITION.match(name)["day"], "%Y%m%d").replace(tzinfo=UTC)
    return int(stamp.timestamp()) // 86_400


def partitioned(conn: Connection) -> bool:
    """Whether this database keeps raw tables in day partitions (PostgreSQL)."""
    return conn.dialect.name == "postgresql"


def take_writer_lock(conn: Connection) -> None:
    """Hold the writers' lock until the transaction ends: one batch write (or retention) at a
    time. On SQLite, a write statement that changes nothing takes the database's write lock."""
    if partitioned(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})
    else:
        conn.execute(text("DELETE FROM ingest_checkpoints WHERE 1 = 0"))


def ensure(conn: Connection, table: str, starts: Iterable[int]) -> None:
    """Make the day partitions of ``table`` that rows starting at ``starts`` go into, where they
    are missing (PostgreSQL; nothing on SQLite). The caller holds the writers' lock."""
    if not partitioned(conn):
        return
    days = {day_of(start) for start in starts}
    if not days:
        return
    names = {partition_name(table, day): day for day in days}
    missing = conn.execute(
        text("SELECT n FROM unnest(CAST(:names AS text[])) AS n WHERE to_regclass(n) IS NULL"),
        {"names": sorted(names)},
    ).scalars()
    for name in missing:
        day = names[name]
        # Names and bounds are made here from integers, never from input: DDL takes no binds.
        conn.execute(
            text(
                f'CREATE TABLE "{name}" PARTITION OF "{table}"'
                f" FOR VALUES FROM ({day * NS_PER_DAY}) TO ({(day + 1) * NS_PER_DAY})"
            )
        )


def days(conn: Connection, table: str) -> list[int]:
    """The days ``table`` holds rows of (PostgreSQL: its partitions, empty ones too), oldest
    first."""
    if partitioned(conn):
        names = conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"
            ),
            {"table": table},
        ).scalars()
        return sorted(_day_of_name(name) for name in names if is_partition(name))
    starts = conn.execute(text(f"SELECT DISTINCT start_ns / {NS_PER_DAY} FROM {table}")).scalars()
    return sorted(int(day) for day in starts)


@dataclass
class Dropped:
    """What retention removed from one raw table: the days, and the rows they held."""

    table: str
    days: list[int] = field(default_factory=list)
    rows: int = 0

    def as_json(self) -> dict:
        return {
            "table": self.table,
            "days": [day_text(day) for day in self.days],
            "rows": self.rows,
        }


def drop_before(conn: Connection, cutoff_ns: int, dry_run: bool = False) -> list[Dropped]:
    """Remove every day of the raw tables that ends at or before ``cutoff_ns``: on PostgreSQL by
    dropping its partitions, on SQLite by deleting its rows. With ``dry_run``, only report them.
    The caller holds the writers' lock (``take_writer_lock``)."""
    last_day = cutoff_ns // NS_PER_DAY  # days before this one end at or before the cut-off
    report = []
    for table in RAW_TABLES:
        dropped = Dropped(table, [day for day in days(conn, table) if day < last_day])
        if partitioned(conn):
            for day in dropped.days:
                name = partition_name(table, day)
                dropped.rows += conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                if not dry_run:
                    conn.execute(text(f'DROP TABLE "{name}"'))
        elif dropped.days:
            params = {"until": last_day * NS_PER_DAY}
            where = f"FROM {table} WHERE start_ns < :until"
            if dry_run:
                dropped.rows = conn.execute(text(f"SELECT count(*) {where}"), params).scalar_one()
            else:
                dropped.rows = conn.execute(text(f"DELETE {where}"), params).rowcount
        report.append(dropped)
    return report
