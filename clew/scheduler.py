"""Jobs shared by workers: any number of ``clew worker`` processes may run the same jobs on one
database, and each run of a job happens in one of them.

A job is known by its key (``job_key``): a digest of what it does (a pull's kind, URL and group; a
check's window and files; retention), the same in every worker configured with it. Before a run,
a worker takes the job's lock without waiting (``exclusive``): on PostgreSQL a session advisory
lock on a connection of its own, held for the run; on SQLite a lock on one byte of a file beside
the database (``fcntl``), which the other workers on that machine see. A worker that cannot take
it leaves the run to the worker that holds it.

The lock alone keeps two runs from overlapping; the record of runs (``job_runs``) keeps a job to
once per interval: with the lock held, a worker leaves the run when the job started within the
last nine tenths of its interval, in whichever worker. Workers started at different moments thus
take turns as their schedules come due, and a worker that stops (or dies) leaves the job to the
others at their next turn. A run's row is written when it starts and completed when it ends; one
whose worker died stays without an end.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, text, update

from clew.store.models import JobRunRow

#: Within this share of a job's interval after it started, the job is not run again.
RECENT_SHARE = 0.9
#: Byte offsets of SQLite's job locks are taken modulo this (a file's locks need no bytes).
_SQLITE_LOCK_SPAN = 1 << 30


def job_key(*parts: object) -> str:
    """A job's key from what identifies it: 32 hex digits."""
    identity = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def worker_name() -> str:
    """This worker as ``job_runs`` names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lock_number(key: str) -> int:
    """The signed 64-bit number PostgreSQL's advisory locks take, from a job's key."""
    return int.from_bytes(bytes.fromhex(key)[:8], "big", signed=True)


@contextlib.contextmanager
def exclusive(engine: Engine, key: str) -> Iterator[bool]:
    """Try to take the job's lock, without waiting; yields whether it was taken, and holds it
    until the block ends."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            number = _lock_number(key)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:n)"), {"n": number}).scalar()
            conn.commit()
            try:
                yield bool(taken)
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": number})
                    conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True  # a database no other process can open
        return
    offset = _lock_number(key) % _SQLITE_LOCK_SPAN
    with open(f"{database}.jobs.lock", "a+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)


@dataclass(frozen=True)
class Run:
    """A run of a job, as ``job_runs`` keeps it."""

    id: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


def latest_run(engine: Engine, key: str) -> Run | None:
    """The job's latest run, in any worker."""
    runs = JobRunRow.__table__.c
    query = (
        select(runs.id, runs.worker, runs.started_at, runs.finished_at, runs.outcome)
        .where(runs.job == key)
        .order_by(runs.started_at.desc(), runs.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return Run(row[0], row[1], _aware(row[2]), _aware(row[3]), row[4])


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for the UTC ones it was given."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def too_soon(latest: Run | None, every_s: float, now: datetime) -> bool:
    """Whether the job started within the recent share of its interval before ``now``."""
    if latest is None:
        return False
    return now - latest.started_at < timedelta(seconds=every_s * RECENT_SHARE)


def start_run(engine: Engine, key: str, name: str, now: datetime) -> int:
    """Record a run starting now; returns its id."""
    row = {"job": key, "name": name[:1024], "worker": worker_name(), "started_at": now}
    with engine.begin() as conn:
        return conn.execute(insert(JobRunRow.__table__).values(row)).inserted_primary_key[0]


def finish_run(engine: Engine, run_id: int, outcome: str, summary: str) -> None:
    """Complete a run's record with how it ended."""
    runs = JobRunRow.__table__
    ended = {"finished_at": datetime.now(UTC), "outcome": outcome, "summary": summary}
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(ended))


def forget_runs_before(engine: Engine, moment: datetime) -> int:
    """Delete the records of runs that started before ``moment``; returns how many."""
    runs = JobRunRow.__table__
    with engine.begin() as conn:
        return conn.execute(delete(runs).where(runs.c.started_at < moment)).rowcount
