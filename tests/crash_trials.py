"""Crash trials of ``clew ingest``: the real CLI killed with SIGKILL at random moments, run again
to completion, and every table compared with a clean run's. Shared by
``tests/clew/test_crash_safety.py`` (a few trials) and ``bench/crash_safety.py`` (many).

A table is compared as a multiset of normalised rows, so a row the crashed store lacks counts as
lost and a row it holds more often than the clean store (or holds changed) counts as extra.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from sqlalchemy import Engine, text

from clew.store import spans
from clew.store.models import metadata

#: Columns left out of the comparison, each because two correct runs may differ in it.
EXCLUDED: dict[str, dict[str, str]] = {
    "*": {
        # Autoincrement keys count attempts: a rolled-back insert still uses up its sequence
        # value on PostgreSQL, and rows are numbered in the order runs happened to write them.
        # References to them are compared by what they point at instead (``REFERENCES``).
        "id": "autoincrement key",
    },
    "contract_versions": {"first_seen_at": "wall-clock time of the write"},
    "catalog_entities": {"updated_at": "wall-clock time of the write"},
    "quarantine": {"created_at": "wall-clock time of the write"},
    "ingest_checkpoints": {
        "updated_at": "wall-clock time of the write",
        "run_started_at": "wall-clock start of the run that last read the file",
        # What the last run read: after a crash, only what remained. ``records`` (all runs
        # together) is compared: a batch rolled back must not be counted.
        "run_records": "statistics of the last run only",
    },
}

#: Foreign keys to autoincrement ids, compared as the natural key of the row they point at.
REFERENCES: dict[tuple[str, str], str] = {
    ("contract_versions", "contract_id"): "SELECT id, kind || ':' || title FROM contracts",
    ("operations", "version_id"): "SELECT id, content_hash FROM contract_versions",
}

#: Tables that hold stored data in chunks: a chunk is a unit of storage, how a write grouped its
#: rows, so the rows inside are what is compared (a span, a gateway request), each once.
CHUNKED: dict[str, str] = {"span_chunks": "spans", "gateway_request_chunks": "requests"}


def _decode_requests(data: bytes) -> list:
    return msgspec.msgpack.decode(data)


_CHUNK_DECODERS: dict[str, Callable[[bytes], list]] = {
    "spans": spans.decode,
    "requests": _decode_requests,
}


def _frozen(value: object) -> object:
    """A hashable, comparable form of a decoded value (lists and maps from MessagePack)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, memoryview):
        return bytes(value)
    return value


Snapshot = dict[str, Counter]


def compared_columns(name: str) -> list[str]:
    """The columns of a table that are compared (a chunked table's rows are decoded instead)."""
    skipped = EXCLUDED["*"] | EXCLUDED.get(name, {})
    return [c.name for c in metadata.tables[name].columns if c.name not in skipped]


def snapshot(engine: Engine) -> Snapshot:
    """Every table of ``clew.store.models.metadata`` as a multiset of normalised rows."""
    tables: Snapshot = {}
    with engine.connect() as conn:
        names = {ref: dict(conn.execute(text(sql)).all()) for ref, sql in REFERENCES.items()}
        for table in metadata.sorted_tables:
            if table.name in CHUNKED:
                column = CHUNKED[table.name]
                decode = _CHUNK_DECODERS[column]
                data = conn.execute(text(f"SELECT {column} FROM {table.name}")).scalars()
                tables[table.name] = Counter(
                    _frozen(row) for chunk in data for row in decode(chunk)
                )
                continue
            columns = compared_columns(table.name)
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = Counter()
            for row in conn.execute(text(f"SELECT {quoted} FROM {table.name}")):
                values = [
                    names[(table.name, c)][v] if (table.name, c) in names else v
                    for c, v in zip(columns, row, strict=True)
                ]
                rows[_frozen(values)] += 1
            tables[table.name] = rows
    return tables


@dataclass
class Difference:
    """How a crashed store differs from the clean one."""

    compared: int = 0  # rows of the clean store
    lost: int = 0  # rows of the clean store missing from the crashed one
    extra: int = 0  # rows the crashed store holds beyond the clean one (duplicated or changed)
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (lost, extra)
    #: Where as many rows are lost as are extra: the columns in which they differ, each lost
    #: row paired with an extra one in sorted order (a key's row changed, not lost or doubled).
    changed: dict[str, list[str]] = field(default_factory=dict)


def compare(clean: Snapshot, crashed: Snapshot) -> Difference:
    """Rows lost and rows extra, table by table (each a multiset difference)."""
    difference = Difference()
    for name, rows in clean.items():
        other = crashed[name]
        lost, extra = sum((rows - other).values()), sum((other - rows).values())
        difference.compared += sum(rows.values())
        difference.lost += lost
        difference.extra += extra
        if lost or extra:
            difference.tables[name] = (lost, extra)
        if lost and lost == extra and name not in CHUNKED:
            gone, came = sorted((rows - other).elements()), sorted((other - rows).elements())
            columns = compared_columns(name)
            differing = {
                c
                for a, b in zip(gone, came, strict=True)
                for c, x, y in zip(columns, a, b, strict=True)
                if x != y
            }
            difference.changed[name] = sorted(differing)
    return difference


def make_input(folder: Path, *, traces: int, pieces: int) -> list[Path]:
    """The sample landscape (``sample_data/generator.py``) laid out for one ``clew ingest``:
    contracts, the catalog, a Kong and an NGINX log, and the traces in ``pieces`` files (one
    commit each at least: more moments between batches, and traces continued across files),
    one line of them unreadable (a quarantined row). Returns the paths in the order given."""
    from clew.demo import generator

    sample = folder / "sample"
    end_ns = 1_795_000_000_000_000_000 // 60_000_000_000 * 60_000_000_000
    generator().generate(sample, end_ns=end_ns, traces=traces)
    lines = (sample / "traces.otlp.jsonl").read_bytes().splitlines(keepends=True)
    (sample / "traces.otlp.jsonl").unlink()
    per_piece = -(-len(lines) // pieces)
    pieces_out = []
    for number in range(pieces):
        piece = lines[number * per_piece : (number + 1) * per_piece]
        if number == 1:
            piece.insert(len(piece) // 2, b'{"resourceSpans": [truncated\n')
        path = sample / f"traces-{number:02}.otlp.jsonl"
        path.write_bytes(b"".join(piece))
        pieces_out.append(path)
    return [
        sample / "contracts",
        sample / "catalog",
        sample / "kong-access.log",
        sample / "nginx-access.log",
        *pieces_out,
    ]


def files_of(path: Path) -> list[Path]:
    """The file, or the files below the folder."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def ingest_command(database: str, paths: list[Path]) -> list[str]:
    """``clew ingest`` as a user runs it: the installed script, in this interpreter's venv."""
    script = Path(sys.executable).with_name("clew")
    return [str(script), "ingest", "--db", database, *map(str, paths)]


def startup_time(command: list[str]) -> float:
    """Seconds ``clew ingest --help`` takes: the interpreter's start and the CLI's imports, a
    span in which a kill finds nothing written yet, so kill moments are drawn after it."""
    began = time.monotonic()
    subprocess.run([*command[:2], "--help"], capture_output=True, check=True)
    return time.monotonic() - began


def run_clean(command: list[str]) -> float:
    """Run ``command`` to completion; seconds it took."""
    began = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{completed.stderr}")
    return time.monotonic() - began


#: Times a trial begins again when its first run finished before its kill.
MAX_REDRAWS = 8


@dataclass
class Trial:
    """One trial: the kill moments (seconds after the start of each killed run; None where the
    run finished first), how often its first run finished before the kill and the trial began
    again, and how the store then differed from the clean one."""

    seed: int
    kills: list[float | None]
    redraws: int
    #: The window its last kill moment was drawn from: the next trial's (see ``run_trial``).
    window: tuple[float, float]
    difference: Difference

    def describe(self) -> str:
        moments = ", ".join("finished first" if k is None else f"{k:.3f}s" for k in self.kills)
        d = self.difference
        where = f" in {d.tables}" if d.tables else ""
        if d.changed:
            where += f", paired rows differing in {d.changed}"
        again = f" (began again {self.redraws}x)" if self.redraws else ""
        return (
            f"seed {self.seed}: killed at [{moments}]{again}; {d.compared} rows compared,"
            f" {d.lost} lost, {d.extra} duplicated or changed{where}"
        )


def run_trial(
    seed: int,
    command: list[str],
    window: tuple[float, float],
    engine: Engine,
    clean: Snapshot,
    reset: Callable[[], None],
    *,
    max_kills: int = 3,
) -> Trial:
    """From an empty store (``reset``): runs of ``command`` SIGKILLed after seeded random delays
    within ``window`` (from ``startup_time`` to the clean run's duration), one to ``max_kills``
    of them, then a run to completion; the store compared with ``clean``.

    Should the first run finish before its kill, the trial begins again (at most
    ``MAX_REDRAWS`` times), its window ending where that run did; ``Trial.window`` is the
    window it ended with, for the next trial."""
    rng = random.Random(seed)
    reset()
    start, end = window
    kills: list[float | None] = []
    redraws = 0
    planned = rng.randint(1, max_kills)
    while len(kills) < planned:
        delay = rng.uniform(start, end)
        finished = _finished_within(command, delay)
        if finished is None:
            kills.append(delay)
        elif kills or redraws >= MAX_REDRAWS:
            kills.append(None)  # a resumed run is shorter: it may finish before its kill
        else:
            # The first run finished before its kill: the clean run (the first, on a cold
            # cache) measured slower. Start again from empty, drawing before this run's end.
            redraws += 1
            end = max(start, min(end, finished))
            reset()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise AssertionError(
            f"seed {seed}: the run after kills at {kills} failed:\n{completed.stderr}"
        )
    engine.dispose()  # the CLI wrote through its own connections; read afresh
    return Trial(seed, kills, redraws, (start, end), compare(clean, snapshot(engine)))


def _finished_within(command: list[str], delay: float) -> float | None:
    """Run ``command`` and SIGKILL it after ``delay`` seconds: None if it was killed, else the
    seconds it took to finish."""
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay)
        return time.monotonic() - began
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None


def drop_store(engine: Engine) -> None:
    """Drop every table, Alembic's too: the next run starts from an empty database and creates
    the schema itself (a moment a kill may land in as well)."""
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def remove_sqlite(path: Path) -> None:
    """Remove a SQLite database and its WAL files: the next run starts from no file at all."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def summary(clean: Snapshot) -> str:
    """Rows per table of the clean run, for the record."""
    return json.dumps({name: sum(rows.values()) for name, rows in clean.items()})
