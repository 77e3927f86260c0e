"""The service map's and the edge panel's queries at 10M spans, next to DuckDB on the raw spans.

Clew's side is what the console calls: the map is ``console.queries.graph(engine, window)``
(``clew.metrics.graph_view``: every edge's totals merged from the rollups, the nodes, the graph,
its analyses and cycles), the edge panel is that plus ``console.queries.edge_series`` and
``console.queries.edge_endpoints`` for the busiest direct edge, as the panel callback fetches
them. Each is timed many times over windows of 15 minutes, an hour and three hours ending 17
minutes before the data does (as a window ending now falls anywhere in an hour) and over all of
it (no bounds), and its p50 and p95 are reported.

The peer is DuckDB computing the direct edges' count, errors and p50/p95/p99 from the raw spans,
exported once from the store to Parquet (through CSV, which DuckDB reads itself): each CLIENT
span joined to its child SERVER span (or CONSUMER span without messaging attributes) in another
service by (trace id, parent span id), the edge counted in the minute of the client span, with
the client's duration as its latency and as an error when either span has status ERROR or the
HTTP status (the server's, else the client's) is 5xx; percentiles by ``quantile_disc``, the value
of rank ceil(q·n), which is the rank Clew's histograms report. That is Clew's strict pairing
(``clew.pipeline.rollups``); the landscape has no span without a kind, so relaxed pairs do not
arise, and the run checks that Clew's direct edges hold none. Direct edges must agree exactly on
count and errors, and within 2 % on every percentile.

    .venv/bin/python bench/query_map.py [--spans 10000000] [--runs 30] [--repeat 1] [--json]

The store (``clew ingest`` of the generated OTLP/JSON files) and the Parquet export are built
once in ``bench/out/`` and reused. Target: the map's and the edge panel's p95 <= 100 ms in
every window.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from ingest_otlp_json import OUT, corpus, finish

from clew.records import Span
from clew.store import ensure_schema, open_engine, spans
from clew.store.queries import Window
from console import queries

TARGET_P95_MS = 100.0
PERCENTILE_TOLERANCE = 0.02
#: Windows in minutes, ending ``NOW_BEFORE_END`` minutes before the data's end; None: no bounds.
WINDOWS = {"15m": 15, "1h": 60, "3h": 180, "all": None}
#: The console's windows end now, anywhere in an hour: here 17 minutes before the data ends
#: (its end is a whole hour), so that no window falls on whole rollup blocks by chance.
NOW_BEFORE_END = 17
NS_PER_MINUTE = 60_000_000_000
#: The span columns the peer reads.
PEER_COLUMNS = {
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "parent_span_id": "VARCHAR",
    "service": "VARCHAR",
    "kind": "INTEGER",
    "start_ns": "BIGINT",
    "duration_ns": "BIGINT",
    "status": "INTEGER",
    "http_status": "INTEGER",
    "messaging_system": "VARCHAR",
    "messaging_destination": "VARCHAR",
}


def duckdb():
    """The duckdb module, installed into this environment first if it is missing (the
    benchmark's own setup: DuckDB is no dependency of Clew's)."""
    try:
        return importlib.import_module("duckdb")
    except ImportError:
        command = [sys.executable, "-m", "pip", "install", "-q", "duckdb"]
        print(f"duckdb is not installed: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=True)
        importlib.invalidate_caches()
        return importlib.import_module("duckdb")


def store(spans: int, files: int, seed: int) -> tuple[Path, dict]:
    """The SQLite store of the generated spans, ingested by ``clew ingest`` unless a complete one
    is there; returns its path and what the ingest reported."""
    folder = corpus(spans, files, seed)[0].parent
    db = OUT / f"store-{folder.name}" / "clew.db"
    manifest = db.parent.with_name(db.parent.name + ".json")
    if manifest.exists() and db.exists():
        engine = open_engine(str(db))
        ensure_schema(engine)  # a store built by an older kernel: its migrations fill it in
        engine.dispose()
        return db, orjson.loads(manifest.read_bytes())
    for stale in db.parent.glob("clew.db*"):  # an interrupted ingest: start again
        stale.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    clew = Path(sys.executable).with_name("clew")
    command = [str(clew), "ingest", str(folder), "--json", "--db", str(db)]
    print(f"building the store ({spans:,} spans): {' '.join(command)}", file=sys.stderr)
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True)
    result = orjson.loads(done.stdout)
    if result["inserted"] != spans or result["quarantined"]:
        sys.exit(f"the store holds {result['inserted']} spans, expected {spans}: {result}")
    report = {
        "spans": spans,
        "command": " ".join(command),
        "seconds": time.perf_counter() - started,
        "ingest": result,
    }
    manifest.write_bytes(orjson.dumps(report))  # last: a store without it is rebuilt
    return db, report


def parquet(db: Path) -> Path:
    """The spans' peer columns as Parquet beside the store, exported once (via CSV): the raw
    spans as a column store would hold them, for the peer to scan."""
    target = db.with_name("spans.parquet")
    if target.exists():
        return target
    csv_path = db.with_name("spans.csv")
    started = time.perf_counter()
    at = [Span._fields.index(name) for name in PEER_COLUMNS]
    with contextlib.closing(sqlite3.connect(db)) as conn, csv_path.open("w", newline="") as out:
        writer = csv.writer(out)
        cursor = conn.execute("SELECT spans FROM span_chunks")  # each a trace's span rows
        while chunks := cursor.fetchmany(10_000):
            writer.writerows(
                [row[i] for i in at] for (data,) in chunks for row in spans.decode(data)
            )
    con = duckdb().connect()
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in PEER_COLUMNS.items()) + "}"
    partial = target.with_suffix(".partial")
    con.execute(
        f"COPY (SELECT * FROM read_csv('{csv_path}', header = false, columns = {columns}))"
        f" TO '{partial}' (FORMAT parquet)"
    )
    con.close()
    partial.rename(target)
    csv_path.unlink()
    print(
        f"exported the spans to {target} in {time.perf_counter() - started:.1f} s", file=sys.stderr
    )
    return target


#: The peer: direct edges of the client spans that start in [since, until) (ns).
PEER_SQL = """
WITH c AS (
    SELECT trace_id, span_id, service, duration_ns, status, http_status
    FROM '{parquet}' WHERE kind = 3 AND start_ns >= $since AND start_ns < $until
), s AS (
    SELECT trace_id, parent_span_id, service, status, http_status
    FROM '{parquet}'
    WHERE parent_span_id IS NOT NULL
      AND (kind = 2 OR (kind = 5 AND messaging_system IS NULL
                        AND messaging_destination IS NULL))
)
SELECT c.service AS client, s.service AS server, count(*) AS count,
       count(*) FILTER (WHERE c.status = 2 OR s.status = 2
                        OR coalesce(s.http_status, c.http_status, 0) >= 500) AS errors,
       quantile_disc(c.duration_ns, 0.50) AS p50,
       quantile_disc(c.duration_ns, 0.95) AS p95,
       quantile_disc(c.duration_ns, 0.99) AS p99
FROM c JOIN s ON s.trace_id = c.trace_id AND s.parent_span_id = c.span_id
WHERE s.service <> c.service
GROUP BY ALL
ORDER BY client, server
"""


def windows(engine) -> dict[str, Window]:
    """The benchmark's windows, ending ``NOW_BEFORE_END`` minutes before the data does."""
    _, last = queries.data_range(engine)
    if last is None:
        sys.exit("the store has no rollups")
    end = last + 1 - NOW_BEFORE_END
    return {
        name: Window() if minutes is None else Window(end - minutes, end)
        for name, minutes in WINDOWS.items()
    }


def ns_bounds(window: Window) -> tuple[int, int]:
    since = window.since_minute * NS_PER_MINUTE if window.since_minute is not None else -(2**62)
    until = window.until_minute * NS_PER_MINUTE if window.until_minute is not None else 2**62
    return since, until


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def time_calls(call, runs: int) -> list[float]:
    """Seconds of each of ``runs`` calls, after one untimed call that warms the caches."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def busiest_direct_edge(view: dict) -> tuple[str, str]:
    direct = [e for e in view["edges"] if e["connection_type"] == "direct"]
    edge = max(direct, key=lambda e: (e["count"], e["client"], e["server"]))
    return edge["client"], edge["server"]


def agreement(clew_view: dict, peer_rows: list[tuple]) -> dict:
    """How Clew's direct edges compare with the peer's: exact counts and errors, percentiles
    within the tolerance."""
    clew = {
        (e["client"], e["server"]): e
        for e in clew_view["edges"]
        if e["connection_type"] == "direct"
    }
    peer = {(r[0], r[1]): r for r in peer_rows}
    problems = []
    if set(clew) != set(peer):
        only_clew, only_peer = sorted(set(clew) - set(peer)), sorted(set(peer) - set(clew))
        problems.append(f"edges only in Clew {only_clew}, only in DuckDB {only_peer}")
    worst = 0.0
    for key in sorted(set(clew) & set(peer)):
        edge, row = clew[key], peer[key]
        if edge["sources"] != ["trace"]:
            problems.append(f"{key}: sources {edge['sources']} (the peer pairs strictly)")
        if (edge["count"], edge["errors"]) != (row[2], row[3]):
            problems.append(
                f"{key}: Clew count/errors {edge['count']}/{edge['errors']},"
                f" DuckDB {row[2]}/{row[3]}"
            )
        for name, exact in zip(("p50_ms", "p95_ms", "p99_ms"), row[4:7], strict=True):
            error = abs(edge[name] * 1e6 - exact) / exact if exact else abs(edge[name])
            worst = max(worst, error)
            if error > PERCENTILE_TOLERANCE:
                problems.append(f"{key}: {name} Clew {edge[name]}, DuckDB {exact / 1e6:.3f}")
    return {"edges": len(peer), "worst_percentile_error": worst, "problems": problems}


def measure_clew(engine, spans_windows: dict[str, Window], runs: int) -> dict:
    """p50/p95 (ms) of the map and the edge panel per window, and the graph views."""
    out = {}
    for name, window in spans_windows.items():
        view = queries.graph(engine, window)
        client, server = busiest_direct_edge(view)

        def panel(window=window, client=client, server=server):
            queries.graph(engine, window)
            queries.edge_series(engine, window, client, server)
            queries.edge_endpoints(engine, window, client, server)

        map_times = time_calls(lambda window=window: queries.graph(engine, window), runs)
        panel_times = time_calls(panel, runs)
        out[name] = {
            "window": [window.since_minute, window.until_minute],
            "edges": len(view["edges"]),
            "panel_edge": [client, server],
            "map_ms": {
                "p50": percentile(map_times, 0.50) * 1e3,
                "p95": percentile(map_times, 0.95) * 1e3,
            },
            "panel_ms": {
                "p50": percentile(panel_times, 0.50) * 1e3,
                "p95": percentile(panel_times, 0.95) * 1e3,
            },
            "view": view,
        }
    return out


def measure_peer(con, path: Path, spans_windows: dict[str, Window], runs: int) -> dict:
    """DuckDB's time (ms, median and best of ``runs``) and rows per window."""
    sql = PEER_SQL.format(parquet=path)
    out = {}
    for name, window in spans_windows.items():
        since, until = ns_bounds(window)
        times, rows = [], []
        for _ in range(runs):
            started = time.perf_counter()
            rows = con.execute(sql, {"since": since, "until": until}).fetchall()
            times.append(time.perf_counter() - started)
        out[name] = {
            "median_ms": percentile(times, 0.50) * 1e3,
            "best_ms": min(times) * 1e3,
            "rows": rows,
        }
    return out


def rollup_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT count(*) FROM edge_rollups").fetchone()[0]


def run(spans: int, files: int, seed: int, runs: int, peer_runs: int, repeat: int) -> dict:
    """Build or reuse the store and the Parquet export, then measure Clew and DuckDB in turn,
    ``repeat`` times; each side keeps its best (lowest p95, lowest median) per window."""
    OUT.mkdir(exist_ok=True)
    db, built = store(spans, files, seed)
    path = parquet(db)
    duck = duckdb()
    engine = open_engine(str(db))
    spans_windows = windows(engine)
    con = duck.connect()
    load = os.getloadavg()[0]
    clew: dict = {}
    peer: dict = {}
    for _ in range(repeat):
        attempt = measure_clew(engine, spans_windows, runs)
        for name, figures in attempt.items():
            best = clew.get(name)
            if best is None:
                clew[name] = figures
                continue
            for query in ("map_ms", "panel_ms"):
                if figures[query]["p95"] < best[query]["p95"]:
                    best[query] = figures[query]
        attempt = measure_peer(con, path, spans_windows, peer_runs)
        for name, figures in attempt.items():
            if name not in peer or figures["median_ms"] < peer[name]["median_ms"]:
                peer[name] = figures
    engine.dispose()
    con.close()

    report_windows = {}
    for name in spans_windows:
        c, p = clew[name], peer[name]
        check = agreement(c["view"], p["rows"])
        report_windows[name] = {
            "window": c["window"],
            "edges": c["edges"],
            "direct_edges": check["edges"],
            "panel_edge": c["panel_edge"],
            "map_ms": c["map_ms"],
            "panel_ms": c["panel_ms"],
            "duckdb_ms": {"median": p["median_ms"], "best": p["best_ms"]},
            # How many times faster Clew's p95 is than DuckDB's median on the raw spans.
            "ratio_duckdb_to_map_p95": p["median_ms"] / c["map_ms"]["p95"],
            "ratio_duckdb_to_panel_p95": p["median_ms"] / c["panel_ms"]["p95"],
            "agreement": check,
        }
    correct = all(not w["agreement"]["problems"] for w in report_windows.values())
    return {
        "benchmark": "query_map",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "duckdb": duck.__version__,
            "load_1m_before": load,
            "load_1m_after": os.getloadavg()[0],
        },
        "spans": spans,
        "store": {
            "path": str(db),
            "mb": sum(p.stat().st_size for p in db.parent.glob("clew.db*")) / 2**20,
            "rollup_rows": rollup_rows(db),
            "built_by": built["command"],
            "ingest_s": built["seconds"],
        },
        "parquet_mb": path.stat().st_size / 2**20,
        "runs": runs,
        "peer_runs": peer_runs,
        "repeat": repeat,
        "windows": report_windows,
        "correct": correct,
        "targets": {
            f"{query}_p95_ms {name}": {
                "target": f"<= {TARGET_P95_MS:.0f}",
                "pass": w[f"{query}_ms"]["p95"] <= TARGET_P95_MS,
            }
            for name, w in report_windows.items()
            for query in ("map", "panel")
        },
    }


def table(report: dict) -> str:
    """The report as a Markdown table, as it goes into RESULTS.md."""
    machine, st = report["machine"], report["store"]
    lines = [
        f"{report['spans']:,} spans, store {st['mb']:,.0f} MB with {st['rollup_rows']:,} rollup"
        f" rows, Parquet {report['parquet_mb']:,.0f} MB; {machine['cpus']} cores;"
        f" {report['runs']} timed calls per query and window, DuckDB median of"
        f" {report['peer_runs']}; best of {report['repeat']};"
        f" load {machine['load_1m_before']:.2f} before and {machine['load_1m_after']:.2f} after",
        "",
        "| window | edges (direct) | map p50 / p95 ms | edge panel p50 / p95 ms"
        " | DuckDB direct edges ms | ratio DuckDB / map p95 | ratio DuckDB / panel p95"
        " | target p95 <= 100 ms | counts equal, percentiles within 2 % |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, w in report["windows"].items():
        passed = all(report["targets"][f"{q}_p95_ms {name}"]["pass"] for q in ("map", "panel"))
        check = w["agreement"]
        lines.append(
            f"| {name} | {w['edges']} ({w['direct_edges']})"
            f" | {w['map_ms']['p50']:.1f} / {w['map_ms']['p95']:.1f}"
            f" | {w['panel_ms']['p50']:.1f} / {w['panel_ms']['p95']:.1f}"
            f" | {w['duckdb_ms']['median']:,.0f}"
            f" | {w['ratio_duckdb_to_map_p95']:.1f}"
            f" | {w['ratio_duckdb_to_panel_p95']:.1f}"
            f" | {'PASS' if passed else 'FAIL'}"
            f" | {'PASS' if not check['problems'] else 'FAIL'}"
            f" (worst {check['worst_percentile_error'] * 100:.2f} %) |"
        )
    problems = [p for w in report["windows"].values() for p in w["agreement"]["problems"]]
    lines.extend(f"\n- {p}" for p in problems[:20])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans in the store")
    parser.add_argument("--files", type=int, default=100, help="files the spans are written to")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=30, help="timed calls per query and window")
    parser.add_argument("--peer-runs", type=int, default=3, help="DuckDB runs per window")
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate Clew and DuckDB N times, keep the best"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    report = run(args.spans, args.files, args.seed, args.runs, args.peer_runs, args.repeat)
    if args.json:
        for w in report["windows"].values():
            w["agreement"]["problems"] = w["agreement"]["problems"][:50]
    return finish(report, table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
