"""Does ingest keep its rate as the store grows? ``clew ingest`` of the same landscape, a tranche
of files at a time, into one store that holds every tranche before it.

The landscape is ``query_map``'s 10M spans (generated once in ``bench/out/``): ``--tranches`` of
a million spans each (ten of its files), in time order, so that each tranche adds new traces to
the same day. Each tranche is one ``clew ingest`` process into the same database, timed from the
outside. The peer is the first tranche, measured in the same run: the same command into an empty
store. Each later tranche prints its rate and its ratio to the first; the target is a ratio of at
least 0.8 for the last one (an ingest whose cost grows with what is stored fails it).

    .venv/bin/python bench/ingest_growth.py [--backend postgresql|sqlite|both]
        [--tranches 6] [--postgres-url URL] [--json]

PostgreSQL's store is a scratch database on the server (``CLEW_TEST_POSTGRES_URL`` or
``--postgres-url``, default ``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards;
SQLite's a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for bench/, tests/

from bench import ingest_otlp_json, postgres_store

TARGET_RATIO = 0.8
CLEW = str(Path(sys.executable).with_name("clew"))


@contextlib.contextmanager
def _store(backend: str, server: str) -> Iterator[str]:
    if backend == "postgresql":
        with postgres_store.scratch(server, "clew_bench_growth") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="clew-growth-") as folder:
            yield str(Path(folder) / "clew.db")


def run(backend: str, tranches: list[list[Path]], server: str) -> dict:
    """Each tranche's spans/s into the growing store, and its ratio to the first's."""
    rows = []
    with _store(backend, server) as db:
        subprocess.run([CLEW, "db", "upgrade", "--db", db], check=True, capture_output=True)
        for number, files in enumerate(tranches):
            started = time.perf_counter()
            done = subprocess.run(
                [CLEW, "ingest", "--db", db, "--json", *map(str, files)],
                check=True,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            inserted = json.loads(done.stdout)["inserted"]
            rate = inserted / seconds
            rows.append(
                {
                    "tranche": number,
                    "stored_before": sum(r["inserted"] for r in rows),
                    "inserted": inserted,
                    "seconds": round(seconds, 2),
                    "spans_per_s": round(rate),
                    "ratio_to_first": round(rate / rows[0]["spans_per_s"], 3) if rows else 1.0,
                }
            )
            print(
                f"{backend:10} tranche {number}: {rows[-1]['stored_before']:>10,} stored before,"
                f" {inserted:,} spans in {seconds:5.1f} s = {rate:>9,.0f} spans/s"
                f" ({rows[-1]['ratio_to_first']:.3f} of the first)",
                file=sys.stderr,
            )
    last = rows[-1]["ratio_to_first"]
    return {
        "backend": backend,
        "tranches": rows,
        "last_ratio_to_first": last,
        "target": TARGET_RATIO,
        "pass": last >= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--tranches", type=int, choices=range(2, 11), default=6)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    # query_map.py's 10M-span landscape (100 files of 100,000 spans): a tranche is ten files.
    files_per_tranche = 10
    spans = args.tranches * 1_000_000
    paths = ingest_otlp_json.corpus(10_000_000, 100, seed=42)
    tranches = [
        paths[n * files_per_tranche : (n + 1) * files_per_tranche] for n in range(args.tranches)
    ]
    server = postgres_store.server_url(args.postgres_url)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    load = os.getloadavg()[0]
    results = [run(backend, tranches, server) for backend in backends]
    report = {"spans": spans, "load_before": round(load, 2), "runs": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for result in results:
            verdict = "PASS" if result["pass"] else "FAIL"
            print(
                f"{result['backend']}: last tranche {result['last_ratio_to_first']:.3f} of the"
                f" first (target >= {TARGET_RATIO}) {verdict}"
            )
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
