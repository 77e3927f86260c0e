"""Reading files that are still being written: ``ingest(growing=True)`` and ``clew ingest
--follow``: a half-written last line waits for the next read, rotated files are drained before
the new one, and nothing is lost or stored twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from clew import store
from clew.pipeline import ingest
from clew.store import gateway_requests
from tests import otlp
from tests.conftest import corpus

SETTLED = time.time() - 3600  # an hour ago: long settled


def line(n: int) -> str:
    """An NGINX combined line for request ``n``."""
    return (
        f"203.0.113.{n % 250} - - [06/Dec/2026:10:{n // 60 % 60:02d}:{n % 60:02d} +0000]"
        f' "GET /api/v1/orders/{n} HTTP/1.1" 200 {100 + n} "-" "curl/8.5.0"\n'
    )


def stored_requests(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT COALESCE(SUM(request_count), 0) FROM gateway_request_chunks")
        ).scalar_one()


def quarantined(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT source, position, reason FROM quarantine")).all()


def test_a_half_written_last_line_waits_for_the_next_read(engine, registry, tmp_path: Path):
    log = tmp_path / "access.log"
    whole = line(4)
    log.write_text(line(1) + line(2) + line(3) + whole[:30])
    first = ingest(engine, [log], registry, growing=True, worker=False)
    assert (first.records, first.quarantined) == (3, 0)
    with log.open("a") as handle:
        handle.write(whole[30:] + line(5))
    second = ingest(engine, [log], registry, growing=True, worker=False)
    assert (second.records, second.inserted, second.quarantined) == (2, 2, 0)
    assert stored_requests(engine) == 5 and quarantined(engine) == []
    # Read once (not growing), a last line without its newline is a line.
    with log.open("a") as handle:
        handle.write(line(6).rstrip("\n"))
    assert ingest(engine, [log], registry, worker=False).inserted == 1


def test_a_half_written_otlp_request_waits_too(engine, registry, tmp_path: Path):
    requests = [
        otlp.request({"shop": [otlp.span(t, 1, kind=2, name="GET /cart")]}) for t in (1, 2, 3)
    ]
    lines = [orjson.dumps(r) + b"\n" for r in requests]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(lines[0] + lines[1] + lines[2][:25])
    first = ingest(engine, [path], registry, growing=True, worker=False)
    assert (first.inserted, first.quarantined) == (2, 0)
    with path.open("ab") as handle:
        handle.write(lines[2][25:])
    second = ingest(engine, [path], registry, growing=True, worker=False)
    assert (second.inserted, second.quarantined) == (1, 0)
    assert quarantined(engine) == []


def test_empty_and_unsettled_files_are_left_for_a_later_read(engine, registry, tmp_path: Path):
    empty = tmp_path / "new.log"
    empty.touch()
    # A document is read whole: half written, it is no broken input but one to read later.
    document = tmp_path / "export.json"
    data = orjson.dumps(
        otlp.request({"shop": [otlp.span(9, 1, kind=2)]}), option=orjson.OPT_INDENT_2
    )
    document.write_bytes(data[: len(data) // 2])
    # A format read only whole (Jaeger's JSON) waits until the file has settled.
    jaeger = tmp_path / "jaeger.json"
    shutil.copy(sorted((corpus() / "jaeger_json").glob("*.json"))[0], jaeger)
    result = ingest(engine, [empty, document, jaeger], registry, growing=True, worker=False)
    assert result.records == 0
    assert quarantined(engine) == []  # the empty file is not "in no known format", nor the rest
    document.write_bytes(data)
    os.utime(jaeger, (SETTLED, SETTLED))
    again = ingest(engine, [empty, document, jaeger], registry, growing=True, worker=False)
    by_file = {Path(r.path).name: r for r in again.reports}
    assert by_file["export.json"].inserted == 1
    assert by_file["jaeger.json"].records > 0
    assert by_file["new.log"].skipped and quarantined(engine) == []


def _requests_once_made(engine) -> int:
    """``stored_requests``, 0 while the process is still making the schema."""
    try:
        return stored_requests(engine)
    except OperationalError:
        return 0


def _wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_clew_ingest_follow_reads_growth_and_rotation_until_stopped(tmp_path: Path):
    log = tmp_path / "access.log"
    log.write_text(line(1) + line(2))
    db = tmp_path / "clew.db"
    clew = Path(sys.executable).with_name("clew")
    command = [str(clew), "ingest", str(log), "--follow", "--interval", "0.3", "--json"]
    process = subprocess.Popen(
        [*command, "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(db.exists, "the database")
        engine = store.open_engine(str(db))
        _wait_for(lambda: _requests_once_made(engine) == 2, "the schema and the first two lines")
        with log.open("a") as handle:
            handle.write(line(3) + line(4)[:20])  # the writer stopped mid-line
        _wait_for(lambda: stored_requests(engine) == 3, "the third line")
        with log.open("a") as handle:
            handle.write(line(4)[20:] + line(5))
        _wait_for(lambda: stored_requests(engine) == 5, "the line finished, and the fifth")
        # Rotation right after a read: the old file gains a line, is renamed, a new one begins.
        with log.open("a") as handle:
            handle.write(line(6))
        log.rename(tmp_path / "access.log.1")
        log.write_text(line(7) + line(8))
        _wait_for(lambda: stored_requests(engine) == 8, "the rotated file's last line and the new")
        time.sleep(0.7)  # two more reads: nothing more
        assert stored_requests(engine) == 8
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    reads = [orjson.loads(row) for row in out.splitlines()]
    assert reads[-1] == {
        "stopped": True,
        "reads": reads[-1]["reads"],
        "records": 8,
        "inserted": 8,
        "duplicates": 0,
        "quarantined": 0,
    }
    assert sum(r["inserted"] for r in reads[:-1]) == 8 and all("at" in r for r in reads[:-1])
    assert quarantined(engine) == []
    with engine.connect() as conn:
        paths = sorted(r.path for r in gateway_requests.in_window(conn, 0, 2**62))
    assert paths == sorted(f"/api/v1/orders/{n}" for n in range(1, 9))  # each once
    engine.dispose()
