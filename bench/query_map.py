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

The same calls are timed on SQLite and, with ``--backend postgresql`` or ``both``, on
PostgreSQL (the server of ``--postgres-url``, else ``CLEW_TEST_POSTGRES_URL``, else the local
default), over the same windows, in turn; with both, the two stores' views of each window must be
equal, edge by edge.

    .venv/bin/python bench/query_map.py [--spans 10000000] [--runs 30] [--repeat 1] [--json]
        [--backend sqlite|postgresql|both] [--postgres-url URL] [--drop-postgres-store]

The stores (``clew ingest`` of the generated OTLP/JSON files) and the Parquet export are built
once and reused: the SQLite file and the Parquet file in ``bench/out/``; the PostgreSQL store in
a database of its own on the server, named for the spans (``clew_bench_otlp_json_…``), which
``bench/out/store-otlp_json-…-postgresql.json`` names once it is whole, with what its ingest
reported. A database without that marker (an interrupted build) or a marker naming another
server is built again; after the ingest the store gets the ``VACUUM ANALYZE`` autovacuum would
give it soon after, so that the plans do not depend on when the benchmark runs.
``--drop-postgres-store`` drops it. Target: the map's and the edge panel's p95 <= 100 ms in
every window, on each store.
"""

from __future__ import annotations

import argparse
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
import postgres_store
from ingest_otlp_json import BACKENDS, OUT, corpus, corpus_folder, finish
from sqlalchemy import text
from sqlalchemy.engine import make_url

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


def postgres_database_name(folder: Path) -> str:
    """The name of the database that holds the store of ``folder``'s spans on a server."""
    return "clew_bench_" + folder.name.replace("-", "_").lower()


def postgres_marker(folder: Path) -> Path:
    """The file that says which database on which server holds the PostgreSQL store of
    ``folder``'s spans, and what its ingest reported: written last, once the store is whole."""
    return OUT / f"store-{folder.name}-postgresql.json"


def postgres_store_of(spans: int, files: int, seed: int, server: str) -> tuple[str, dict]:
    """The PostgreSQL store of the generated spans on ``server``, ingested by ``clew ingest``
    into a database of its own unless the marker names a whole one there; returns its URL and
    what the ingest reported. The database is kept for the next run (``--drop-postgres-store``
    drops it)."""
    folder = corpus(spans, files, seed)[0].parent
    name, marker = postgres_database_name(folder), postgres_marker(folder)
    url = make_url(server).set(drivername="postgresql+psycopg", database=name)
    database = url.render_as_string(hide_password=False)
    admin = open_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            built = orjson.loads(marker.read_bytes()) if marker.exists() else None
            if exists and built and built["server"] == postgres_store.server_of(server):
                engine = open_engine(database)
                ensure_schema(engine)  # a store built by an older kernel: migrated
                engine.dispose()
                return database, built
            # None, or an interrupted build, or a marker naming another server: built afresh.
            marker.unlink(missing_ok=True)
            if exists:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    engine = open_engine(database)
    ensure_schema(engine)
    clew = Path(sys.executable).with_name("clew")
    command = [str(clew), "ingest", str(folder), "--json", "--db", database]
    shown_command = " ".join([*command[:-1], postgres_store.shown(database)])
    print(f"building the PostgreSQL store ({spans:,} spans): {shown_command}", file=sys.stderr)
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    result = orjson.loads(done.stdout)
    if result["inserted"] != spans or result["quarantined"]:
        sys.exit(f"the PostgreSQL store holds {result['inserted']} spans, expected {spans}")
    # What autovacuum does soon after a bulk load anyway, done now so that the planner's
    # statistics do not depend on when the benchmark runs.
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum_s = time.perf_counter() - started
    placed = postgres_store.day_partitions(engine)
    engine.dispose()
    if placed["problems"] or sum(p["spans"] for p in placed["partitions"]) != spans:
        sys.exit(f"the PostgreSQL store's span chunks are not in their days' partitions: {placed}")
    report = {
        "spans": spans,
        "server": postgres_store.server_of(server),
        "database": name,
        "command": shown_command,
        "seconds": seconds,
        "vacuum_analyze_s": vacuum_s,
        "partitions": placed["partitions"],
        "ingest": result,
    }
    marker.write_bytes(orjson.dumps(report))  # last: a database without it is built again
    return database, report


def drop_postgres_store(spans: int, files: int, seed: int, server: str) -> None:
    """Drop the PostgreSQL store of these spans from ``server``, and its marker."""
    folder = corpus_folder(spans, files, seed)
    name = postgres_database_name(folder)
    admin = open_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    postgres_marker(folder).unlink(missing_ok=True)
    print(f"no {name} left on {postgres_store.shown(server)}", file=sys.stderr)


def parquet(engine, folder: Path) -> Path:
    """The spans' peer columns as Parquet beside the SQLite store of ``folder``'s spans,
    exported once (via CSV) from the store ``engine`` opens: the raw spans as a column store
    would hold them, for the peer to scan."""
    target = OUT / f"store-{folder.name}" / "spans.parquet"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    csv_path = target.with_name("spans.csv")
    started = time.perf_counter()
    at = [Span._fields.index(name) for name in PEER_COLUMNS]
    with (
        engine.connect().execution_options(yield_per=10_000) as conn,
        csv_path.open("w", newline="") as out,
    ):
        writer = csv.writer(out)
        chunks = conn.execute(text("SELECT spans FROM span_chunks"))  # each a trace's span rows
        for part in chunks.partitions():
            writer.writerows([row[i] for i in at] for (data,) in part for row in spans.decode(data))
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


def rollup_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM edge_rollups")).scalar_one()


def store_mb(engine, db: Path | None) -> float:
    """The store's size: the SQLite file with its WAL, or the PostgreSQL database."""
    if db is not None:
        return sum(p.stat().st_size for p in db.parent.glob("clew.db*")) / 2**20
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar() / 2**20


def parity(views: dict[str, dict]) -> list[str]:
    """How the backends' views of one window differ, edge by edge (nothing when they agree)."""
    (first, view), *others = views.items()
    edges = {(e["client"], e["server"], e["connection_type"]): e for e in view["edges"]}
    problems = []
    for backend, other in others:
        theirs = {(e["client"], e["server"], e["connection_type"]): e for e in other["edges"]}
        if set(theirs) != set(edges):
            problems.append(f"{backend} and {first} differ in edges: {set(theirs) ^ set(edges)}")
        differing = [key for key in sorted(set(theirs) & set(edges)) if theirs[key] != edges[key]]
        problems.extend(
            f"{backend}: {key} {theirs[key]} against {first}'s {edges[key]}"
            for key in differing[:5]
        )
    return problems


def keep_best(best: dict, attempt: dict) -> None:
    """Keep, per window and query, the attempt with the lower p95."""
    for name, figures in attempt.items():
        kept = best.get(name)
        if kept is None:
            best[name] = figures
            continue
        for query in ("map_ms", "panel_ms"):
            if figures[query]["p95"] < kept[query]["p95"]:
                kept[query] = figures[query]


def run(
    spans: int,
    files: int,
    seed: int,
    runs: int,
    peer_runs: int,
    repeat: int,
    backends: tuple[str, ...] = ("sqlite",),
    server: str | None = None,
) -> dict:
    """Build or reuse the stores and the Parquet export, then measure Clew on each backend and
    DuckDB in turn, ``repeat`` times; each side keeps its best (lowest p95, lowest median) per
    window."""
    OUT.mkdir(exist_ok=True)
    server = postgres_store.server_url(server)
    engines, stores = {}, {}
    for backend in backends:
        if backend == "sqlite":
            db, built = store(spans, files, seed)
            engines[backend], stores[backend] = open_engine(str(db)), (db, built)
        else:
            url, built = postgres_store_of(spans, files, seed, server)
            engines[backend], stores[backend] = open_engine(url), (None, built)
    first = engines[backends[0]]
    path = parquet(first, corpus_folder(spans, files, seed))
    duck = duckdb()
    ranges = {backend: queries.data_range(engine) for backend, engine in engines.items()}
    if len(set(ranges.values())) != 1:
        sys.exit(f"the stores hold different minutes: {ranges}")
    spans_windows = windows(first)
    con = duck.connect()
    load = os.getloadavg()[0]
    clew: dict[str, dict] = {backend: {} for backend in backends}
    peer: dict = {}
    for _ in range(repeat):
        for backend, engine in engines.items():
            keep_best(clew[backend], measure_clew(engine, spans_windows, runs))
        attempt = measure_peer(con, path, spans_windows, peer_runs)
        for name, figures in attempt.items():
            if name not in peer or figures["median_ms"] < peer[name]["median_ms"]:
                peer[name] = figures
    con.close()

    report_backends = {}
    for backend, engine in engines.items():
        db, built = stores[backend]
        report_windows = {}
        for name in spans_windows:
            c, p = clew[backend][name], peer[name]
            check = agreement(c["view"], p["rows"])
            report_windows[name] = {
                "window": c["window"],
                "edges": c["edges"],
                "direct_edges": check["edges"],
                "panel_edge": c["panel_edge"],
                "map_ms": c["map_ms"],
                "panel_ms": c["panel_ms"],
                # How many times faster Clew's p95 is than DuckDB's median on the raw spans.
                "ratio_duckdb_to_map_p95": p["median_ms"] / c["map_ms"]["p95"],
                "ratio_duckdb_to_panel_p95": p["median_ms"] / c["panel_ms"]["p95"],
                "agreement": check,
            }
        report_backends[backend] = {
            "store": {
                "path": str(db) if db is not None else built["database"],
                "mb": store_mb(engine, db),
                "rollup_rows": rollup_rows(engine),
                "built_by": built["command"],
                "ingest_s": built["seconds"],
            },
            "windows": report_windows,
        }
        engine.dispose()
    parity_problems = {
        name: parity({backend: clew[backend][name]["view"] for backend in backends})
        for name in spans_windows
    }
    correct = all(
        not w["agreement"]["problems"]
        for b in report_backends.values()
        for w in b["windows"].values()
    ) and not any(parity_problems.values())
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": duck.__version__,
        "load_1m_before": load,
        "load_1m_after": os.getloadavg()[0],
    }
    if "postgresql" in backends:
        machine["postgresql"] = postgres_store.server_facts(server)
    return {
        "benchmark": "query_map",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "spans": spans,
        "parquet_mb": path.stat().st_size / 2**20,
        "runs": runs,
        "peer_runs": peer_runs,
        "repeat": repeat,
        "duckdb_ms": {
            name: {"median": p["median_ms"], "best": p["best_ms"]} for name, p in peer.items()
        },
        "backends": report_backends,
        "parity": parity_problems,
        "correct": correct,
        "targets": {
            f"{backend} {query}_p95_ms {name}": {
                "target": f"<= {TARGET_P95_MS:.0f}",
                "pass": w[f"{query}_ms"]["p95"] <= TARGET_P95_MS,
            }
            for backend, b in report_backends.items()
            for name, w in b["windows"].items()
            for query in ("map", "panel")
        },
    }


def table(report: dict) -> str:
    """The report as a Markdown table, as it goes into RESULTS.md."""
    machine = report["machine"]
    stores = "; ".join(
        f"{backend} store {b['store']['mb']:,.0f} MB with {b['store']['rollup_rows']:,} rollup rows"
        for backend, b in report["backends"].items()
    )
    lines = [
        f"{report['spans']:,} spans; {stores}; Parquet {report['parquet_mb']:,.0f} MB;"
        f" {machine['cpus']} cores; {report['runs']} timed calls per query and window, DuckDB"
        f" median of {report['peer_runs']}; best of {report['repeat']};"
        f" load {machine['load_1m_before']:.2f} before and {machine['load_1m_after']:.2f} after",
    ]
    if "postgresql" in machine:
        facts = machine["postgresql"]
        settings = ", ".join(f"{k} {v}" for k, v in facts["settings"].items())
        lines.append(f"PostgreSQL {facts['version']} on the same machine ({settings})")
    lines += [
        "",
        "| window | store | edges (direct) | map p50 / p95 ms | edge panel p50 / p95 ms"
        " | DuckDB direct edges ms | ratio DuckDB / map p95 | ratio DuckDB / panel p95"
        " | target p95 <= 100 ms | counts equal, percentiles within 2 % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    several = len(report["backends"]) > 1
    for name, duck in report["duckdb_ms"].items():
        for backend, b in report["backends"].items():
            w = b["windows"][name]
            passed = all(
                report["targets"][f"{backend} {q}_p95_ms {name}"]["pass"] for q in ("map", "panel")
            )
            check = w["agreement"]
            same = ""
            if several:
                same = "; views differ" if report["parity"][name] else "; views equal"
            lines.append(
                f"| {name} | {backend} | {w['edges']} ({w['direct_edges']})"
                f" | {w['map_ms']['p50']:.1f} / {w['map_ms']['p95']:.1f}"
                f" | {w['panel_ms']['p50']:.1f} / {w['panel_ms']['p95']:.1f}"
                f" | {duck['median']:,.0f}"
                f" | {w['ratio_duckdb_to_map_p95']:.1f}"
                f" | {w['ratio_duckdb_to_panel_p95']:.1f}"
                f" | {'PASS' if passed else 'FAIL'}"
                f" | {'PASS' if not check['problems'] else 'FAIL'}"
                f" (worst {check['worst_percentile_error'] * 100:.2f} %{same}) |"
            )
    problems = [
        p
        for b in report["backends"].values()
        for w in b["windows"].values()
        for p in w["agreement"]["problems"]
    ]
    problems += [p for found in report["parity"].values() for p in found]
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
    parser.add_argument(
        "--backend", choices=sorted(BACKENDS), default="sqlite", help="the store(s) to query"
    )
    parser.add_argument(
        "--postgres-url",
        help="the PostgreSQL server that keeps the store (in a database of its own);"
        f" default CLEW_TEST_POSTGRES_URL, else {postgres_store.DEFAULT_SERVER}",
    )
    parser.add_argument(
        "--drop-postgres-store",
        action="store_true",
        help="drop the PostgreSQL store of these spans (and its marker), and measure nothing",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    server = postgres_store.server_url(args.postgres_url)
    if args.drop_postgres_store:
        drop_postgres_store(args.spans, args.files, args.seed, server)
        return 0
    report = run(
        args.spans,
        args.files,
        args.seed,
        args.runs,
        args.peer_runs,
        args.repeat,
        BACKENDS[args.backend],
        server,
    )
    if args.json:
        for b in report["backends"].values():
            for w in b["windows"].values():
                w["agreement"]["problems"] = w["agreement"]["problems"][:50]
    return finish(report, table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
