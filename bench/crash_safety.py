"""Crash safety of ``clew ingest``: many trials of the real CLI killed with SIGKILL at random
moments and run again to completion, every table then compared with a clean run's
(``tests/crash_trials.py``, which ``tests/clew/test_crash_safety.py`` runs three times a backend).

The input is the sample landscape (``sample_data/generator.py``): contracts, the catalog, a Kong
and an NGINX log, and the traces in ``--pieces`` files, one line of them unreadable. By default
large enough (6,000 traces, some 38 MB) that ``clew ingest`` parses in its worker process and
commits each traces file in two batches, so kills land while the worker parses, while a batch is
written, between batches and files, and while rollups are computed; each trial kills one to
``--max-kills`` runs, the first within the clean run's duration after the CLI's start-up.

    .venv/bin/python bench/crash_safety.py [--trials 20] [--backend sqlite|postgres|both]
        [--traces 6000] [--pieces 2] [--max-kills 3] [--seeds N,N,...]

PostgreSQL is the server of ``CLEW_TEST_POSTGRES_URL`` (a database of its own, dropped after).
Prints per trial the kill moments, rows compared, rows lost and rows duplicated or changed;
exits 1 if any trial lost or added a row.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine

from clew import store
from tests import crash_trials
from tests.scratch_postgres import scratch_database


@contextmanager
def sqlite_store(folder: Path) -> Iterator[tuple[str, Engine, Callable[[], None]]]:
    """A SQLite database file in ``folder``, removed (WAL and all) to start a trial."""
    database = folder / "clew.db"
    engine = store.open_engine(str(database))
    try:
        yield str(database), engine, lambda: crash_trials.remove_sqlite(database)
    finally:
        engine.dispose()


@contextmanager
def postgres_store(_: Path) -> Iterator[tuple[str, Engine, Callable[[], None]]]:
    """A database of its own on the ``CLEW_TEST_POSTGRES_URL`` server, its tables dropped to
    start a trial, the database dropped at the end."""
    server = os.environ.get("CLEW_TEST_POSTGRES_URL")
    if not server:
        raise SystemExit("--backend postgres needs CLEW_TEST_POSTGRES_URL")
    with scratch_database(server, "clew_crash") as database:
        engine = store.open_engine(database)
        try:
            yield database, engine, lambda: crash_trials.drop_store(engine)
        finally:
            engine.dispose()


STORES = {"sqlite": sqlite_store, "postgres": postgres_store}


def run_backend(backend: str, paths: list[Path], seeds: list[int], max_kills: int) -> bool:
    """The clean run and the trials on one backend, printed as they go; whether all held."""
    with (
        tempfile.TemporaryDirectory(prefix="clew-crash-") as folder,
        STORES[backend](Path(folder)) as (database, engine, reset),
    ):
        command = crash_trials.ingest_command(database, paths)
        reset()
        duration = crash_trials.run_clean(command)
        clean = crash_trials.snapshot(engine)
        engine.dispose()
        startup = crash_trials.startup_time(command)
        rows = sum(sum(table.values()) for table in clean.values())
        print(f"\n{backend}: clean run {duration:.2f} s, {rows} rows in all;", flush=True)
        print(f"  per table: {crash_trials.summary(clean)}")
        print(f"  kill moments drawn from {startup:.2f} s (the CLI started) to {duration:.2f} s")
        held = True
        began = time.monotonic()
        window = (startup, duration)
        for number, seed in enumerate(seeds, 1):
            trial = crash_trials.run_trial(
                seed, command, window, engine, clean, reset, max_kills=max_kills
            )
            window = trial.window
            difference = trial.difference
            held = held and difference.lost == 0 and difference.extra == 0
            print(f"  trial {number:2}: {trial.describe()}", flush=True)
        landed = "all" if held else "NOT all"
        print(
            f"{backend}: {len(seeds)} trials in {time.monotonic() - began:.0f} s;"
            f" {landed} equal to the clean run"
        )
        return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--traces", type=int, default=6000)
    parser.add_argument("--pieces", type=int, default=2)
    parser.add_argument("--max-kills", type=int, default=3)
    parser.add_argument(
        "--seeds", default=None, help="Comma-separated seeds to replay (instead of --trials)."
    )
    args = parser.parse_args()
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = [random.SystemRandom().randrange(1 << 32) for _ in range(args.trials)]
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores,"
        f" load {os.getloadavg()[0]:.1f}; {args.traces} traces in {args.pieces} files"
    )
    with tempfile.TemporaryDirectory(prefix="clew-crash-input-") as folder:
        paths = crash_trials.make_input(Path(folder), traces=args.traces, pieces=args.pieces)
        size = sum(f.stat().st_size for p in paths for f in crash_trials.files_of(p))
        print(f"input: {size / 1e6:.1f} MB in {len(paths)} paths")
        held = [run_backend(backend, paths, seeds, args.max_kills) for backend in backends]
    sys.exit(0 if all(held) else 1)


if __name__ == "__main__":
    main()
