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

    .venv/bin/python bench/ingest_otlp_json.py [--spans 1000000] [--repeat 1] [--json]

Targets (issue 3): Clew's spans/s at least the floor's (1.0x), and a peak RSS of at most 300 MB.
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

from clew.records import Span

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


def corpus(spans: int, files: int, seed: int) -> list[Path]:
    """The generated files for these parameters, generated unless a complete set is there."""
    digest = hashlib.sha256(Path(otlp_landscape.__file__).read_bytes()).hexdigest()[:12]
    folder = OUT / f"otlp_json-{spans}-{files}f-seed{seed}-{digest}"
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
    clew = clew or [str(Path(sys.executable).with_name("clew"))]
    with tempfile.TemporaryDirectory(prefix="clew-db-", dir=OUT) as tmp:
        db = Path(tmp) / "clew.db"
        command = [*clew, "ingest", str(folder), "--json", "--db", str(db)]
        with open(Path(tmp) / "stdout", "w+b") as out, open(Path(tmp) / "stderr", "w+b") as err:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=err)
            memory = TreeMemory(process.pid)
            memory.start()
            # wait4: this child's rusage, its waited-for workers included (CPU summed, RSS max).
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            memory.done.set()
            memory.join()
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if process.returncode != 0:
            sys.exit(f"clew ingest failed ({process.returncode}):\n{stderr.decode()[-2000:]}")
        db_bytes = sum(p.stat().st_size for p in Path(tmp).glob("clew.db*"))
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "peak_rss_mb": memory.peak_rss / 2**20,
        "peak_pss_mb": memory.peak_pss / 2**20,
        "largest_process_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "db_mb": db_bytes / 2**20,
        "result": orjson.loads(stdout),
    }


def run(spans: int, files: int, seed: int, repeat: int = 1) -> dict:
    """Generate (or reuse) the files, then measure the floor, the floor + SQLite sink and Clew on
    them, in turn.

    With ``repeat`` > 1 each side keeps its fastest run (and Clew its largest RSS): on a shared
    machine the fastest run is the one least disturbed by others.
    """
    OUT.mkdir(exist_ok=True)
    paths = corpus(spans, files, seed)
    data_bytes = sum(p.stat().st_size for p in paths)
    for path in paths:  # both sides read from the page cache
        path.read_bytes()

    load = os.getloadavg()[0]
    floor_wall = sink_wall = float("inf")
    sink_mb = 0.0
    clew: dict = {}
    memory = dict.fromkeys(("peak_rss_mb", "peak_pss_mb", "largest_process_rss_mb"), 0.0)
    for _ in range(repeat):
        started = time.perf_counter()
        seen = floor(paths)
        floor_wall = min(floor_wall, time.perf_counter() - started)
        if seen != spans:
            sys.exit(f"floor saw {seen} spans, expected {spans}")
        wall, stored, db_mb = sink_ingest(paths)
        if stored != spans:
            sys.exit(f"floor + SQLite sink stored {stored} spans, expected {spans}")
        if wall < sink_wall:
            sink_wall, sink_mb = wall, db_mb
        attempt = clew_ingest(paths[0].parent)
        memory = {k: max(v, attempt[k]) for k, v in memory.items()}
        if not clew or attempt["wall_s"] < clew["wall_s"]:
            clew = attempt
    clew |= memory
    result = clew["result"]
    correct = result["inserted"] == spans and result["quarantined"] == 0 and not result["problems"]

    clew_rate = result["inserted"] / clew["wall_s"]
    floor_rate = seen / floor_wall
    ratio = clew_rate / floor_rate
    sink_rate = spans / sink_wall
    return {
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
        "spans": spans,
        "repeat": repeat,
        "files": len(paths),
        "data_mb": data_bytes / 2**20,
        "clew": {
            "spans_per_s": clew_rate,
            "wall_s": clew["wall_s"],
            "cpu_s": clew["cpu_s"],
            "peak_rss_mb": clew["peak_rss_mb"],
            "peak_pss_mb": clew["peak_pss_mb"],
            "largest_process_rss_mb": clew["largest_process_rss_mb"],
            "db_mb": clew["db_mb"],
            "command": clew["command"],
            "ingest": {k: result[k] for k in ("records", "inserted", "duplicates", "quarantined")},
        },
        "floor": {"spans_per_s": floor_rate, "wall_s": floor_wall},
        "ratio": ratio,
        # Informative, no target: what the SQLite sink alone costs.
        "floor_sqlite": {
            "spans_per_s": sink_rate,
            "wall_s": sink_wall,
            "db_mb": sink_mb,
            "commit_every": SINK_COMMIT_EVERY,
        },
        "ratio_floor_sqlite": clew_rate / sink_rate,
        "correct": correct,
        "targets": {
            "ratio": {"target": f">= {TARGET_RATIO}", "pass": ratio >= TARGET_RATIO},
            "peak_rss_mb": {
                "target": f"<= {TARGET_RSS_MB:.0f}",
                "pass": clew["peak_rss_mb"] <= TARGET_RSS_MB,
            },
        },
    }


def table(report: dict) -> str:
    """The report as a small Markdown table, as it goes into RESULTS.md."""
    clew, floor_, targets = report["clew"], report["floor"], report["targets"]
    sink = report["floor_sqlite"]

    def verdict(name: str) -> str:
        return "PASS" if targets[name]["pass"] else "FAIL"

    lines = [
        f"{report['spans']:,} spans in {report['files']} files ({report['data_mb']:.0f} MB),"
        f" {report['machine']['cpus']} cores, best of {report['repeat']},"
        f" load {report['machine']['load_1m_before']:.2f} before and"
        f" {report['machine']['load_1m_after']:.2f} after",
        "",
        "| measure | value | target | |",
        "|---|---:|---|---|",
        f"| Clew `clew ingest` spans/s | {clew['spans_per_s']:,.0f}"
        f" ({clew['wall_s']:.1f} s wall, {clew['cpu_s']:.1f} s CPU) | | |",
        f"| floor (orjson.loads + extraction) spans/s | {floor_['spans_per_s']:,.0f}"
        f" ({floor_['wall_s']:.1f} s) | | |",
        f"| ratio Clew / floor | {report['ratio']:.3f} | {targets['ratio']['target']}"
        f" | {verdict('ratio')} |",
        f"| informative: floor + SQLite sink (executemany, no rollups) spans/s"
        f" | {sink['spans_per_s']:,.0f} ({sink['wall_s']:.1f} s, {sink['db_mb']:.0f} MB file)"
        " | none | |",
        f"| informative: ratio Clew / (floor + SQLite sink) | {report['ratio_floor_sqlite']:.3f}"
        " | none | |",
        f"| Clew peak RSS, process tree summed | {clew['peak_rss_mb']:.0f} MB"
        f" | {targets['peak_rss_mb']['target']} MB | {verdict('peak_rss_mb')} |",
        f"| (tree PSS; largest single process RSS) | {clew['peak_pss_mb']:.0f} MB;"
        f" {clew['largest_process_rss_mb']:.0f} MB | | |",
        f"| inserted / quarantined | {clew['ingest']['inserted']:,} /"
        f" {clew['ingest']['quarantined']:,} | {report['spans']:,} / 0"
        f" | {'PASS' if report['correct'] else 'FAIL'} |",
        f"| SQLite file (with WAL) | {clew['db_mb']:.0f} MB | | |",
    ]
    return "\n".join(lines)


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
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    report = run(args.spans, args.files, args.seed, args.repeat)
    return finish(report, table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
