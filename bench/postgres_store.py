"""What the benchmarks need on PostgreSQL: the server to use, databases of their own on it, the
server's CPU time spent for a client, where Clew's span chunks landed, and the raw COPY peer.

The server is ``--postgres-url``, else ``CLEW_TEST_POSTGRES_URL``, else the local default
(``DEFAULT_SERVER``). A benchmark never writes into the database the URL names: it makes a
database of its own on that server (``tests.scratch_postgres``) and drops it afterwards, or, for
the 10M-span store ``query_map.py`` reuses, keeps one under a name of its own.

Run as a script (``python bench/postgres_store.py copy-floor SERVER FILE…``), it measures the
raw COPY floor of those files and prints it as JSON: ``ingest_otlp_json.py`` runs it so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import orjson
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests/

from clew.pipeline import batches
from clew.store import ensure_schema, open_engine, partitions, spans
from collectors import Source
from collectors.otlp_json import OtlpJsonCollector
from tests.scratch_postgres import scratch_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
#: The span chunks' columns and their types, as Clew's writer copies them (``clew.store.spans``).
CHUNK_COLUMNS = ("trace_id", "start_ns", "span_count", "spans")
CHUNK_TYPES = ("varchar", "int8", "int4", "bytea")
#: Spans per transaction, as Clew's pipeline commits them (``clew.pipeline.BATCH_SPANS``).
BATCH_SPANS = 25_000
_TICKS = os.sysconf("SC_CLK_TCK")

#: Hosts whose server processes this machine's ``/proc`` shows.
_LOCAL_HOSTS = (None, "", "localhost", "127.0.0.1", "::1")


def server_url(value: str | None = None) -> str:
    """The PostgreSQL server to use: ``value`` (``--postgres-url``), else
    ``CLEW_TEST_POSTGRES_URL``, else ``DEFAULT_SERVER``."""
    return value or os.environ.get("CLEW_TEST_POSTGRES_URL") or DEFAULT_SERVER


def libpq_url(url: str, **query: str) -> str:
    """``url`` as libpq and psycopg take it (no SQLAlchemy driver name), with ``query`` added."""
    parsed = make_url(url).set(drivername="postgresql")
    if query:
        parsed = parsed.update_query_dict(query)
    return parsed.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """``url`` as a report may print it: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def server_of(url: str) -> str:
    """The server ``url`` points at, whatever database it names: ``user@host:port``."""
    parsed = make_url(url)
    return f"{parsed.username or ''}@{parsed.host or ''}:{parsed.port or 5432}"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class BackendCpu(threading.Thread):
    """The CPU seconds the server's backends spend for the connections that name themselves
    ``application_name``, sampled every ``interval`` from ``/proc`` (the server runs on this
    machine): the work a client's own CPU time does not show.

    A backend's last moments before it exits (at most ``interval``) go unseen; a server on
    another host gives nothing (``seconds`` is None).
    """

    def __init__(self, server: str, application_name: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.server, self.name, self.interval = server, application_name, interval
        self.local = make_url(server).host in _LOCAL_HOSTS
        self.by_pid: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        if not self.local:
            return
        with psycopg.connect(libpq_url(self.server), autocommit=True) as conn:
            while True:
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.name,)
                ).fetchall()
                for (pid,) in pids:
                    with contextlib.suppress(OSError):  # the backend has just exited
                        self.by_pid[pid] = _cpu_seconds(pid)
                if self.done.wait(self.interval):
                    return

    @property
    def seconds(self) -> float | None:
        """The backends' CPU seconds as last seen, summed (None for a server elsewhere)."""
        return sum(self.by_pid.values()) if self.local else None


def chunk_batches(paths: Sequence[Path], batch_spans: int = BATCH_SPANS) -> list[list[tuple]]:
    """The span chunk rows Clew's writer stores for these OTLP/JSON files, transaction by
    transaction: each file read in Clew's batches (``clew.pipeline.batches``), each batch's
    spans grouped by trace and encoded as ``clew.store.spans.write_chunks`` does (a trace's
    spans spread over more than a chunk's time window split in several rows)."""
    out = []
    for path in paths:
        for batch in batches(OtlpJsonCollector(), Source(path), batch_spans):
            if isinstance(batch, int) or not batch.rows:
                continue
            rows: list[tuple] = []
            for trace_id, chunk in spans.chunks_of(batch.rows).items():
                if chunk.last_start_ns - chunk.start_ns < spans.CHUNK_WINDOW_NS:
                    rows.append((trace_id, chunk.start_ns, chunk.span_count, bytes(chunk.data)))
                else:
                    parts = spans.windows(spans.decode(chunk.data))
                    rows.extend((trace_id, *part) for part in parts)
            out.append(rows)
    return out


def copy_chunks(url: str, table: str, transactions: Iterable[list[tuple]]) -> dict:
    """COPY (binary, through psycopg, as ``clew.store.append`` does) each list of chunk rows
    into ``table`` of the database at ``url`` in a transaction of its own; the wall time, the
    server backend's CPU time and the rows copied."""
    copied = 0
    with psycopg.connect(libpq_url(url)) as conn:
        pid = conn.info.backend_pid
        statement = f"COPY {table} ({', '.join(CHUNK_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        local = make_url(url).host in _LOCAL_HOSTS
        server_before = _server_cpu(pid) if local else None
        started = time.perf_counter()
        for rows in transactions:
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(CHUNK_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            conn.commit()
            copied += len(rows)
        wall = time.perf_counter() - started
        server_after = _server_cpu(pid) if local else None
        size = conn.execute(
            # A plain table has no partition tree: its own size.
            "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size(%s))"
            " FROM pg_partition_tree(%s)",
            (table, table),
        ).fetchone()[0]
    server = None if server_before is None or server_after is None else server_after - server_before
    return {"wall_s": wall, "server_cpu_s": server, "rows": copied, "mb": int(size) / 2**20}


def _server_cpu(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        return _cpu_seconds(pid)
    return None


def day_partitions(engine: Engine, table: str = "span_chunks") -> dict:
    """Where ``table``'s rows are: per partition, its chunks, spans and first and last start; and
    what is wrong, if anything (the table not partitioned, a row in a partition not of its day,
    a partition the store's listing of days does not name)."""
    with engine.connect() as conn:
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table}
        ).scalar()
        rows = conn.execute(
            text(
                f"SELECT tableoid::regclass::text, count(*), sum(span_count), min(start_ns),"
                f" max(start_ns) FROM {table} GROUP BY 1 ORDER BY 1"
            )
        ).all()
        listed = partitions.days(conn, table)
    problems = [] if kind == "p" else [f"{table} is not a partitioned table (relkind {kind!r})"]
    found = []
    for name, chunks, held, first, last in rows:
        day = partitions.day_of(first)
        if name != partitions.partition_name(table, day) or partitions.day_of(last) != day:
            problems.append(f"{name} holds rows starting from {first} to {last} ns")
        if day not in listed:
            problems.append(f"{name} is not among the days the store lists for {table}")
        found.append({"partition": name, "chunks": chunks, "spans": int(held)})
    return {"table": table, "partitions": found, "problems": problems}


@contextlib.contextmanager
def scratch(server: str, prefix: str) -> Iterator[str]:
    """A new database on ``server`` for one measurement, dropped afterwards: its URL."""
    with scratch_database(server, prefix) as url:
        yield url


#: Server settings a reader of the figures wants beside them.
SETTINGS = ("shared_buffers", "work_mem", "synchronous_commit", "fsync", "jit", "max_wal_size")


def server_facts(server: str) -> dict:
    """The server's version and the settings that move the figures most (``SETTINGS``)."""
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                (list(SETTINGS),),
            ).fetchall()
        )
    return {"server": shown(server), "version": version, "settings": settings}


#: The raw COPY floor's table: the span chunks' columns, nothing else.
BARE_TABLE = (
    "CREATE TABLE bare_chunks (trace_id varchar(32), start_ns int8, span_count int4, spans bytea)"
)


def copy_floor(server: str, paths: Sequence[Path]) -> dict:
    """The raw COPY floor of these files' spans: their chunk rows (``chunk_batches``, untimed)
    COPYed into a bare table, and (informative) into Clew's ``span_chunks``, its day partitions
    made beforehand; each in a new database on ``server``, dropped after."""
    started = time.perf_counter()
    transactions = chunk_batches(paths)
    made = {"rows_made": sum(len(rows) for rows in transactions)}
    made["made_s"] = time.perf_counter() - started
    with scratch(server, "clew_bench_copy") as url:
        engine = open_engine(url)
        with engine.begin() as conn:
            conn.execute(text(BARE_TABLE))
        engine.dispose()
        bare = copy_chunks(url, "bare_chunks", transactions) | made
    with scratch(server, "clew_bench_copy") as url:
        engine = open_engine(url)
        ensure_schema(engine)
        with engine.begin() as conn:
            starts = [row[1] for rows in transactions for row in rows]
            partitions.ensure(conn, "span_chunks", starts)
        engine.dispose()
        into_clew = copy_chunks(url, "span_chunks", transactions) | made
    return {"bare": bare, "span_chunks": into_clew}


def copy_floor_apart(server: str, paths: Sequence[Path]) -> dict:
    """``copy_floor`` in a process of its own (this file run as a script), so that the caller's
    heap and collector state, which its other peers are timed in, stay as they were."""
    command = [sys.executable, __file__, "copy-floor", server, *map(str, paths)]
    done = subprocess.run(command, check=True, capture_output=True)
    return orjson.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The raw COPY floor, as a report in JSON.")
    parser.add_argument("what", choices=["copy-floor"])
    parser.add_argument("server", help="the PostgreSQL server")
    parser.add_argument("paths", nargs="+", type=Path, help="OTLP/JSON files")
    args = parser.parse_args(argv)
    sys.stdout.write(orjson.dumps(copy_floor(args.server, args.paths)).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
