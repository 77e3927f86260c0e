"""Ingest of generated OTLP/JSON spans: ``clew ingest`` against the floor of parsing the same files.

The floor, measured in the same run over the same files, is ``orjson.loads`` of every line plus a
minimal extraction of what Clew stores per span (ids, parent, service, name, kind, start,
duration, status and the attributes as a dict), with no database. Clew is the real CLI in a
subprocess on a fresh SQLite database, rollups included; its peak memory is the summed RSS of
the process and its parse workers, sampled every 50 ms.

A second peer, informative and without a target, is the floor plus a SQLite sink: the same parse,
each span widened to the 22 columns of Clew's ``spans`` table (the known attributes picked out,
the rest as orjson text), inserted with ``sqlite3`` ``executemany`` (``INSERT OR IGNORE``) into a
fresh database made from Clew's own schema, with Clew's PRAGMAs, committing every 25,000 spans,
no rollups. It shows what the SQLite sink alone costs.

On PostgreSQL (``--backend postgresql`` or ``both``), Clew is the same CLI writing into a
database of its own on the server (``--postgres-url``, else ``CLEW_TEST_POSTGRES_URL``, else
the local default), made and migrated before the timing and dropped after it; the server's CPU
time for its connections is printed beside the CLI's. Its peer is the raw COPY floor: the span
chunk rows Clew's writer stores for the same files (made beforehand, untimed, in a process of
its own: ``postgres_store.copy_floor``), COPYed in binary through psycopg, a transaction per
batch of 25,000 spans as Clew commits them, into a bare table (no key, no index, no partition)
in a database of its own: what the engine and the driver cost with no Clew logic. An
informative second COPY puts the same rows into Clew's own ``span_chunks`` (day partitions,
their key and indexes), nothing else. The run checks that Clew's span chunks landed in the
partitions of their days.

    .venv/bin/python bench/ingest_otlp_json.py [--spans 1000000] [--repeat 1] [--json]
        [--backend sqlite|postgresql|both] [--postgres-url URL]

Targets (issue 3): Clew's spans/s at least the floor's (1.0x), and a peak RSS of at most 300 MB
(on PostgreSQL too, the CLI's process tree: the server's memory is its own). Issue 8 sets no
target for the spans/s on PostgreSQL: the figure, beside SQLite's and the COPY floor's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import otlp_landscape
import postgres_store
from sqlalchemy import text

from clew.records import Span
from clew.store import ensure_schema, open_engine

SPAN_COLUMNS = Span._fields
BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
TARGET_RATIO = 1.0
TARGET_RSS_MB = 300.0
SINK_COMMIT_EVERY = 25_000  # spans per commit, as Clew's batches
#: Clew's SQLite PRAGMAs (clew.store._sqlite_pragmas).
SINK_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-32768",
)


def corpus_folder(spans: int, files: int, seed: int) -> Path:
    """The folder ``corpus`` generates these parameters' files into (named by the generator's
    digest too, so that a changed generator makes new files)."""
    digest = hashlib.sha256(Path(otlp_landscape.__file__).read_bytes()).hexdigest()[:12]
    return OUT / f"otlp_json-{spans}-{files}f-seed{seed}-{digest}"


def corpus(spans: int, files: int, seed: int) -> list[Path]:
    """The generated files for these parameters, generated unless a complete set is there."""
    folder = corpus_folder(spans, files, seed)
    digest = folder.name.rsplit("-", 1)[1]
    manifest = folder.with_name(folder.name + ".json")  # beside the folder that is ingested
    if manifest.exists():
        listed = orjson.loads(manifest.read_bytes())["files"]
        paths = [folder / name for name in listed]
        if all(
            p.exists() and p.stat().st_size == size
            for p, size in zip(paths, listed.values(), strict=True)
        ):
            return paths
    started = time.perf_counter()
    paths = otlp_landscape.generate(folder, spans, files=files, seed=seed)
    # The manifest goes last: a folder without one is an interrupted run, generated again.
    manifest.write_bytes(
        orjson.dumps(
            {
                "spans": spans,
                "seed": seed,
                "generator": digest,
                "files": {p.name: p.stat().st_size for p in paths},
            }
        )
    )
    print(
        f"generated {spans:,} spans in {time.perf_counter() - started:.1f} s: {folder}",
        file=sys.stderr,
    )
    return paths


def floor(paths: list[Path]) -> int:
    """Parse every line and extract each span's fields into a tuple; returns the spans seen."""
    loads = orjson.loads
    count = 0
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                rows = []
                for resource_spans in loads(line)["resourceSpans"]:
                    service = None
                    for kv in resource_spans["resource"]["attributes"]:
                        if kv["key"] == "service.name":
                            service = kv["value"]["stringValue"]
                    for scope_spans in resource_spans["scopeSpans"]:
                        for span in scope_spans["spans"]:
                            start = int(span["startTimeUnixNano"])
                            attributes = {
                                kv["key"]: next(iter(kv["value"].values()))
                                for kv in span.get("attributes", ())
                            }
                            rows.append(
                                (
                                    span["traceId"],
                                    span["spanId"],
                                    span.get("parentSpanId"),
                                    service,
                                    span["name"],
                                    span["kind"],
                                    start,
                                    int(span["endTimeUnixNano"]) - start,
                                    span.get("status", {}).get("code", 0),
                                    attributes,
                                )
                            )
                count += len(rows)
    return count


def floor_sqlite(paths: list[Path], db: Path) -> int:
    """The floor's parse, each span as a 22-column row of a ``spans`` table keyed by (trace id,
    span id), written to SQLite at ``db``: a plain row-per-span sink. Attributes Clew has
    columns for are popped by their current semantic-convention names (no legacy renaming); the
    rest go in as orjson text.
    Returns the spans seen.
    """
    loads, dumps = orjson.loads, orjson.dumps
    conn = sqlite3.connect(db, isolation_level="DEFERRED")
    for pragma in SINK_PRAGMAS:
        conn.execute(pragma)
    sql = (
        f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
    )
    count = 0
    rows: list[tuple] = []
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                for resource_spans in loads(line)["resourceSpans"]:
                    service = None
                    for kv in resource_spans["resource"]["attributes"]:
                        if kv["key"] == "service.name":
                            service = kv["value"]["stringValue"]
                    for scope_spans in resource_spans["scopeSpans"]:
                        for span in scope_spans["spans"]:
                            start = int(span["startTimeUnixNano"])
                            duration = int(span["endTimeUnixNano"]) - start
                            status = span.get("status", {})
                            attributes = {
                                kv["key"]: next(iter(kv["value"].values()))
                                for kv in span.get("attributes", ())
                            }
                            pop = attributes.pop
                            http_status = pop("http.response.status_code", None)
                            rows.append(
                                (
                                    span["traceId"],
                                    span["spanId"],
                                    span.get("parentSpanId"),
                                    service,
                                    span["name"],
                                    span["kind"],
                                    start,
                                    duration,
                                    status.get("code", 0),
                                    status.get("message"),
                                    pop("http.request.method", None),
                                    pop("http.route", None),
                                    None if http_status is None else int(http_status),
                                    pop("url.path", None),
                                    pop("server.address", None),
                                    pop("service.peer.name", None),
                                    pop("db.system.name", None),
                                    pop("messaging.system", None),
                                    pop("messaging.destination.name", None),
                                    pop("rpc.service", None),
                                    pop("rpc.method", None),
                                    dumps(attributes).decode() if attributes else None,
                                )
                            )
                while len(rows) >= SINK_COMMIT_EVERY:
                    conn.executemany(sql, rows[:SINK_COMMIT_EVERY])
                    conn.commit()
                    count += SINK_COMMIT_EVERY
                    rows = rows[SINK_COMMIT_EVERY:]
    if rows:
        conn.executemany(sql, rows)
        conn.commit()
        count += len(rows)
    conn.close()
    return count


def sink_ingest(paths: list[Path]) -> tuple[float, int, float]:
    """Run ``floor_sqlite`` into a fresh database; (wall, spans, MB)."""
    with tempfile.TemporaryDirectory(prefix="sink-db-", dir=OUT) as tmp:
        db = Path(tmp) / "sink.db"
        with contextlib.closing(sqlite3.connect(db)) as conn:  # outside the timing
            conn.execute(
                f"CREATE TABLE spans ({', '.join(SPAN_COLUMNS)}, PRIMARY KEY (trace_id, span_id))"
            )
        started = time.perf_counter()
        seen = floor_sqlite(paths, db)
        wall = time.perf_counter() - started
        db_bytes = sum(p.stat().st_size for p in Path(tmp).glob("sink.db*"))
        with contextlib.closing(sqlite3.connect(db)) as conn:
            stored = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    if stored != seen:
        sys.exit(f"floor + SQLite sink saw {seen} spans and stored {stored}")
    return wall, stored, db_bytes / 2**20


#: TreeMemory reads PSS at every this many RSS samples.
PSS_EVERY = 10


class TreeMemory(threading.Thread):
    """Samples the summed RSS (every 50 ms) and PSS (every 0.5 s) of a process and its
    descendants (parse workers too).

    ``wait4`` alone reports the largest single process of the tree; the tree's total is what
    the machine has to hold.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0  # bytes
        self.done = threading.Event()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(child) for child in task.read_text().split())
        return pids

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        tick = 0
        while not self.done.wait(self.interval):
            # PSS every tenth sample only: the kernel walks a process's page tables to sum it
            # (about 1.4 ms for 150 MB, holding its memory map's lock), which would slow the
            # process measured; RSS is a counter read.
            with_pss = tick % PSS_EVERY == 0
            tick += 1
            rss = pss = 0
            for pid in self._tree():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                    if with_pss:
                        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                        pss += int(rollup.split("\nPss:", 1)[1].split()[0]) * 1024
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


def clew_ingest(folder: Path, clew: list[str] | None = None) -> dict:
    """Run ``clew ingest --json`` on ``folder`` into a fresh SQLite file; wall time and peak RSS.

    ``clew`` is the command that runs Clew's CLI (by default the environment's ``clew``).
    """
    with tempfile.TemporaryDirectory(prefix="clew-db-", dir=OUT) as tmp:
        db = Path(tmp) / "clew.db"
        measured = measured_ingest(folder, str(db), Path(tmp), clew)
        measured["db_mb"] = sum(p.stat().st_size for p in Path(tmp).glob("clew.db*")) / 2**20
    return measured


def measured_ingest(
    folder: Path,
    database: str,
    tmp: Path,
    clew: list[str] | None = None,
    server_cpu: postgres_store.BackendCpu | None = None,
) -> dict:
    """Run ``clew ingest --json`` on ``folder`` into ``database`` (a path or URL), its output
    kept in ``tmp``; exits when it fails. Its wall and CPU time, the peak memory of its process
    tree, what it printed, and with ``server_cpu`` the server's CPU time for it."""
    clew = clew or [str(Path(sys.executable).with_name("clew"))]
    command = [*clew, "ingest", str(folder), "--json", "--db", database]
    with open(tmp / "stdout", "w+b") as out, open(tmp / "stderr", "w+b") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        memory = TreeMemory(process.pid)
        memory.start()
        if server_cpu is not None:
            server_cpu.start()
        # wait4: this child's rusage, its waited-for workers included (CPU summed, RSS max).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        memory.done.set()
        memory.join()
        if server_cpu is not None:
            server_cpu.done.set()
            server_cpu.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"clew ingest failed ({process.returncode}):\n{stderr.decode()[-2000:]}")
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "peak_rss_mb": memory.peak_rss / 2**20,
        "peak_pss_mb": memory.peak_pss / 2**20,
        "largest_process_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "server_cpu_s": server_cpu.seconds if server_cpu is not None else None,
        "result": orjson.loads(stdout),
    }


#: How the CLI's connections name themselves to the server, for ``BackendCpu`` to find them.
APPLICATION_NAME = "clew_bench_ingest"


def clew_ingest_postgres(folder: Path, server: str) -> dict:
    """Run ``clew ingest --json`` on ``folder`` into a new database on ``server`` (made and
    migrated before the timing, dropped after); what ``measured_ingest`` reports, the database's
    size, how long its schema took and where the span chunks landed."""
    with (
        postgres_store.scratch(server, "clew_bench_ingest") as url,
        tempfile.TemporaryDirectory(prefix="clew-pg-", dir=OUT) as tmp,
    ):
        engine = open_engine(url)
        try:
            started = time.perf_counter()
            ensure_schema(engine)
            schema_s = time.perf_counter() - started
            database = postgres_store.libpq_url(url, application_name=APPLICATION_NAME)
            server_cpu = postgres_store.BackendCpu(server, APPLICATION_NAME)
            measured = measured_ingest(folder, database, Path(tmp), server_cpu=server_cpu)
            measured["command"] = measured["command"].replace(database, "<scratch database>")
            measured["schema_s"] = schema_s
            measured["partitions"] = postgres_store.day_partitions(engine)
            with engine.connect() as conn:
                size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            measured["db_mb"] = size / 2**20
        finally:
            engine.dispose()
    return measured


#: The ``--backend`` choices and the stores each measures Clew on.
BACKENDS = {"sqlite": ("sqlite",), "postgresql": ("postgresql",), "both": ("sqlite", "postgresql")}


def run(
    spans: int,
    files: int,
    seed: int,
    repeat: int = 1,
    backends: tuple[str, ...] = ("sqlite",),
    server: str | None = None,
) -> dict:
    """Generate (or reuse) the files, then measure the floor and, per backend, its peers and
    Clew on them, in turn: on SQLite the floor + SQLite sink, on PostgreSQL the COPY floors.

    With ``repeat`` > 1 each side keeps its fastest run (and Clew its largest RSS): on a shared
    machine the fastest run is the one least disturbed by others.
    """
    OUT.mkdir(exist_ok=True)
    paths = corpus(spans, files, seed)
    data_bytes = sum(p.stat().st_size for p in paths)
    for path in paths:  # both sides read from the page cache
        path.read_bytes()
    on_sqlite, on_postgres = "sqlite" in backends, "postgresql" in backends
    server = postgres_store.server_url(server)

    load = os.getloadavg()[0]
    floor_wall = sink_wall = float("inf")
    sink_mb = 0.0
    clew: dict = {}
    on_pg: dict = {}
    copies: dict = {}
    memory = dict.fromkeys(("peak_rss_mb", "peak_pss_mb", "largest_process_rss_mb"), 0.0)
    pg_memory = dict(memory)
    for _ in range(repeat):
        started = time.perf_counter()
        seen = floor(paths)
        floor_wall = min(floor_wall, time.perf_counter() - started)
        if seen != spans:
            sys.exit(f"floor saw {seen} spans, expected {spans}")
        if on_sqlite:
            wall, stored, db_mb = sink_ingest(paths)
            if stored != spans:
                sys.exit(f"floor + SQLite sink stored {stored} spans, expected {spans}")
            if wall < sink_wall:
                sink_wall, sink_mb = wall, db_mb
            attempt = clew_ingest(paths[0].parent)
            memory = {k: max(v, attempt[k]) for k, v in memory.items()}
            if not clew or attempt["wall_s"] < clew["wall_s"]:
                clew = attempt
        if on_postgres:
            for name, figures in postgres_store.copy_floor_apart(server, paths).items():
                if name not in copies or figures["wall_s"] < copies[name]["wall_s"]:
                    copies[name] = figures
            attempt = clew_ingest_postgres(paths[0].parent, server)
            pg_memory = {k: max(v, attempt[k]) for k, v in pg_memory.items()}
            if not on_pg or attempt["wall_s"] < on_pg["wall_s"]:
                on_pg = attempt
    floor_rate = seen / floor_wall
    report: dict = {
        "benchmark": "ingest_otlp_json",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "orjson": orjson.__version__,
            "load_1m_before": load,
            "load_1m_after": os.getloadavg()[0],
        },
        "backends": list(backends),
        "spans": spans,
        "repeat": repeat,
        "files": len(paths),
        "data_mb": data_bytes / 2**20,
        "floor": {"spans_per_s": floor_rate, "wall_s": floor_wall},
        "correct": True,
        "targets": {},
    }
    if on_sqlite:
        clew |= memory
        result = clew["result"]
        clew_rate = result["inserted"] / clew["wall_s"]
        ratio = clew_rate / floor_rate
        sink_rate = spans / sink_wall
        report["clew"] = {
            "spans_per_s": clew_rate,
            "wall_s": clew["wall_s"],
            "cpu_s": clew["cpu_s"],
            "peak_rss_mb": clew["peak_rss_mb"],
            "peak_pss_mb": clew["peak_pss_mb"],
            "largest_process_rss_mb": clew["largest_process_rss_mb"],
            "db_mb": clew["db_mb"],
            "command": clew["command"],
            "ingest": {k: result[k] for k in ("records", "inserted", "duplicates", "quarantined")},
        }
        report["ratio"] = ratio
        # Informative, no target: what the SQLite sink alone costs.
        report["floor_sqlite"] = {
            "spans_per_s": sink_rate,
            "wall_s": sink_wall,
            "db_mb": sink_mb,
            "commit_every": SINK_COMMIT_EVERY,
        }
        report["ratio_floor_sqlite"] = clew_rate / sink_rate
        report["correct"] = (
            result["inserted"] == spans and result["quarantined"] == 0 and not result["problems"]
        )
        report["targets"] |= {
            "ratio": {"target": f">= {TARGET_RATIO}", "pass": ratio >= TARGET_RATIO},
            "peak_rss_mb": {
                "target": f"<= {TARGET_RSS_MB:.0f}",
                "pass": clew["peak_rss_mb"] <= TARGET_RSS_MB,
            },
        }
    if on_postgres:
        on_pg |= pg_memory
        result = on_pg["result"]
        pg_rate = result["inserted"] / on_pg["wall_s"]
        bare, into_clew = copies["bare"], copies["span_chunks"]
        copy_rate = spans / bare["wall_s"]
        placed = on_pg["partitions"]
        report["machine"]["postgresql"] = postgres_store.server_facts(server)
        report["postgresql"] = {
            "spans_per_s": pg_rate,
            "wall_s": on_pg["wall_s"],
            "cpu_s": on_pg["cpu_s"],
            "server_cpu_s": on_pg["server_cpu_s"],
            "peak_rss_mb": on_pg["peak_rss_mb"],
            "peak_pss_mb": on_pg["peak_pss_mb"],
            "largest_process_rss_mb": on_pg["largest_process_rss_mb"],
            "db_mb": on_pg["db_mb"],
            "schema_s": on_pg["schema_s"],
            "command": on_pg["command"],
            "ingest": {k: result[k] for k in ("records", "inserted", "duplicates", "quarantined")},
            "partitions": placed,
            "copy_floor": {"spans_per_s": copy_rate, **bare},
            "copy_span_chunks": {"spans_per_s": spans / into_clew["wall_s"], **into_clew},
            "ratio_copy_floor": pg_rate / copy_rate,
            "ratio_floor": pg_rate / floor_rate,
        }
        if on_sqlite:
            report["postgresql"]["ratio_sqlite"] = pg_rate / report["clew"]["spans_per_s"]
        report["correct"] = report["correct"] and (
            result["inserted"] == spans
            and result["quarantined"] == 0
            and not result["problems"]
            and not placed["problems"]
            and sum(p["spans"] for p in placed["partitions"]) == spans
            and bare["rows"] == into_clew["rows"] == bare["rows_made"]
        )
        report["targets"]["peak_rss_mb postgresql"] = {
            "target": f"<= {TARGET_RSS_MB:.0f}",
            "pass": on_pg["peak_rss_mb"] <= TARGET_RSS_MB,
        }
    return report


def table(report: dict) -> str:
    """The report as a small Markdown table, as it goes into RESULTS.md."""
    floor_, targets = report["floor"], report["targets"]

    def verdict(name: str) -> str:
        return "PASS" if targets[name]["pass"] else "FAIL"

    lines = [
        f"{report['spans']:,} spans in {report['files']} files ({report['data_mb']:.0f} MB),"
        f" {report['machine']['cpus']} cores, best of {report['repeat']},"
        f" load {report['machine']['load_1m_before']:.2f} before and"
        f" {report['machine']['load_1m_after']:.2f} after",
    ]
    if "postgresql" in report:
        facts = report["machine"]["postgresql"]
        settings = ", ".join(f"{k} {v}" for k, v in facts["settings"].items())
        lines.append(f"PostgreSQL {facts['version']} on the same machine ({settings})")
    lines += [
        "",
        "| measure | value | target | |",
        "|---|---:|---|---|",
        f"| floor (orjson.loads + extraction) spans/s | {floor_['spans_per_s']:,.0f}"
        f" ({floor_['wall_s']:.1f} s) | | |",
    ]
    if "clew" in report:
        clew, sink = report["clew"], report["floor_sqlite"]
        lines += [
            f"| Clew `clew ingest` spans/s | {clew['spans_per_s']:,.0f}"
            f" ({clew['wall_s']:.1f} s wall, {clew['cpu_s']:.1f} s CPU) | | |",
            f"| ratio Clew / floor | {report['ratio']:.3f} | {targets['ratio']['target']}"
            f" | {verdict('ratio')} |",
            f"| informative: floor + SQLite sink (executemany, no rollups) spans/s"
            f" | {sink['spans_per_s']:,.0f} ({sink['wall_s']:.1f} s, {sink['db_mb']:.0f} MB file)"
            " | none | |",
            f"| informative: ratio Clew / (floor + SQLite sink)"
            f" | {report['ratio_floor_sqlite']:.3f} | none | |",
            f"| Clew peak RSS, process tree summed | {clew['peak_rss_mb']:.0f} MB"
            f" | {targets['peak_rss_mb']['target']} MB | {verdict('peak_rss_mb')} |",
            f"| (tree PSS; largest single process RSS) | {clew['peak_pss_mb']:.0f} MB;"
            f" {clew['largest_process_rss_mb']:.0f} MB | | |",
            f"| inserted / quarantined | {clew['ingest']['inserted']:,} /"
            f" {clew['ingest']['quarantined']:,} | {report['spans']:,} / 0"
            f" | {_all_in(clew['ingest'], report['spans'])} |",
            f"| SQLite file (with WAL) | {clew['db_mb']:.0f} MB | | |",
        ]
    if "postgresql" in report:
        pg = report["postgresql"]
        copy, into = pg["copy_floor"], pg["copy_span_chunks"]
        server_cpu = (
            "" if pg["server_cpu_s"] is None else f", server {pg['server_cpu_s']:.1f} s CPU"
        )
        placed = pg["partitions"]
        where = "; ".join(
            f"`{p['partition']}` {p['chunks']:,} chunks, {p['spans']:,} spans"
            for p in placed["partitions"]
        )
        lines += [
            f"| Clew `clew ingest` into PostgreSQL spans/s | {pg['spans_per_s']:,.0f}"
            f" ({pg['wall_s']:.1f} s wall, {pg['cpu_s']:.1f} s CPU{server_cpu}) | | |",
            f"| raw COPY floor: the same chunk rows into a bare table spans/s"
            f" | {copy['spans_per_s']:,.0f} ({copy['wall_s']:.1f} s, {copy['rows']:,} rows,"
            f" {_cpu(copy)}{copy['mb']:.0f} MB) | | |",
            f"| ratio Clew PostgreSQL / raw COPY floor | {pg['ratio_copy_floor']:.3f} | none | |",
            f"| informative: the same rows into Clew's `span_chunks` (day partitions, key,"
            f" indexes) spans/s | {into['spans_per_s']:,.0f} ({into['wall_s']:.1f} s,"
            f" {_cpu(into)}{into['mb']:.0f} MB) | none | |",
            f"| ratio Clew PostgreSQL / floor | {pg['ratio_floor']:.3f} | none | |",
        ]
        if "ratio_sqlite" in pg:
            lines.append(
                f"| ratio Clew PostgreSQL / Clew SQLite | {pg['ratio_sqlite']:.3f} | none | |"
            )
        lines += [
            f"| Clew peak RSS on PostgreSQL, process tree summed (not the server)"
            f" | {pg['peak_rss_mb']:.0f} MB"
            f" | {targets['peak_rss_mb postgresql']['target']} MB"
            f" | {verdict('peak_rss_mb postgresql')} |",
            f"| inserted / quarantined on PostgreSQL | {pg['ingest']['inserted']:,} /"
            f" {pg['ingest']['quarantined']:,} | {report['spans']:,} / 0"
            f" | {_all_in(pg['ingest'], report['spans'])} |",
            f"| span chunks by day partition | {where} | each in its day's"
            f" | {'FAIL' if placed['problems'] else 'PASS'} |",
            f"| PostgreSQL database (schema made before the timing, in {pg['schema_s']:.1f} s)"
            f" | {pg['db_mb']:.0f} MB | | |",
        ]
        lines.extend(f"\n- {problem}" for problem in placed["problems"])
    return "\n".join(lines)


def _all_in(ingest: dict, spans: int) -> str:
    return "PASS" if ingest["inserted"] == spans and ingest["quarantined"] == 0 else "FAIL"


def _cpu(copy: dict) -> str:
    return "" if copy["server_cpu_s"] is None else f"server {copy['server_cpu_s']:.1f} s CPU, "


def finish(report: dict, render, as_json: bool, strict: bool) -> int:
    """Print a benchmark's report (JSON, or the table ``render`` makes) and return its exit
    code: 2 when its counts are wrong, 1 with ``strict`` when a target is missed, else 0."""
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(report))
    if not report["correct"]:
        return 2
    missed = not all(t["pass"] for t in report["targets"].values())
    return 1 if strict and missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans to generate and ingest")
    parser.add_argument("--files", type=int, default=10, help="files to split them into")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate floor and Clew N times, keep the best"
    )
    parser.add_argument(
        "--backend", choices=sorted(BACKENDS), default="sqlite", help="the store(s) Clew writes"
    )
    parser.add_argument(
        "--postgres-url",
        help="the PostgreSQL server (a database of its own is made on it and dropped);"
        f" default CLEW_TEST_POSTGRES_URL, else {postgres_store.DEFAULT_SERVER}",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    report = run(
        args.spans, args.files, args.seed, args.repeat, BACKENDS[args.backend], args.postgres_url
    )
    return finish(report, table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
