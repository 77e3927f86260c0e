"""Gateway requests through the pipeline: stored once with their checkpoint, joined by trace id,
and rolled up as consumer → gateway → upstream edges with the source ``gateway``."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from clew.pipeline import ingest
from clew.records import Checkpoint, GatewayRequest, Quarantined, Record
from clew.store import gateway_requests
from collectors import Registry, Source
from tests.clew.test_rollups import kinds_of, rollup_table
from tests.conftest import corpus

MINUTE = 60_000_000_000
T0 = 1_790_000_000 * 1_000_000_000 // MINUTE * MINUTE  # a minute's start


def request(n: int, **fields) -> GatewayRequest:
    values = {
        "start_ns": T0 + n * 1_000_000,
        "gateway": "edge",
        "consumer": "partner-a",
        "client": "203.0.113.7",
        "method": "GET",
        "host": "api.example.com",
        "path": f"/v1/payments/{8800 + n}",
        "route": None,
        "status": 200,
        "duration_ns": 30_000_000,
        "upstream_duration_ns": 20_000_000,
        "upstream": "payments-api",
        "bytes_sent": 512,
        "bytes_received": None,
        "trace_id": None,
        "attributes": None,
    }
    return GatewayRequest(**(values | fields))


class LinesOfRequests:
    """A collector of test files: each line names a request number (or ``bad``)."""

    name = "test_gateway"
    description = "requests by number, one a line"

    def __init__(self, made: dict[int, GatewayRequest]) -> None:
        self.made = made

    def detect(self, head: bytes) -> bool:
        return True

    def collect(self, source: Source) -> Iterator[Record]:
        with source.open() as handle:
            data = handle.read()
        position = 0
        for number, line in enumerate(data.splitlines(keepends=True), 1):
            position += len(line)
            if position <= source.offset:
                continue
            word = line.strip().decode()
            if word == "bad":
                yield Quarantined(f"line {number}", "not a request number", word)
            else:
                yield self.made[int(word)]
            yield Checkpoint(position)


def test_requests_are_stored_once_rolled_up_and_found_by_trace(engine, tmp_path: Path):
    made = {
        1: request(1),
        2: request(2, status=503, duration_ns=90_000_000, upstream_duration_ns=85_000_000),
        3: request(3, consumer=None, status=404, trace_id="ab" * 16),
        4: request(4, route="/v1/payments/{payment}", method="POST", upstream=None),
    }
    registry = Registry([LinesOfRequests(made)])
    path = tmp_path / "access.log"
    path.write_text("1\n2\nbad\n3\n4\n")
    first = ingest(engine, [path], registry, batch_spans=2)
    assert (first.records, first.inserted, first.quarantined) == (5, 4, 1)
    again = ingest(engine, [path], registry)
    assert (again.records, again.inserted) == (0, 0)  # the checkpoint: nothing twice

    with engine.connect() as conn:
        stored = list(gateway_requests.in_window(conn, T0, T0 + MINUTE))
        traced = gateway_requests.by_trace_ids(conn, ["ab" * 16, "cd" * 16])
        endpoints = conn.execute(
            text("SELECT service, protocol, method, route FROM endpoints ORDER BY route")
        ).all()
    assert sorted(stored) == sorted(made.values())
    assert traced == {
        "ab" * 16: [("ab" * 16, T0 + 3_000_000, "edge", None, "GET", "/v1/payments/8803", 404)]
    }
    assert [tuple(e) for e in endpoints] == [("payments-api", "http", "GET", "/v1/payments/{id}")]

    cells = rollup_table(engine)
    minute = T0 // MINUTE
    get = "GET /v1/payments/{id}"
    assert cells[(minute, "partner-a", "edge", "virtual_node", get, "gateway")]["sums"] == (
        2,
        1,
        0,
        120_000_000,
    )
    assert cells[(minute, "edge", "payments-api", "direct", get, "gateway")]["sums"] == (
        3,
        1,
        1,
        125_000_000,
    )
    # No consumer named: the virtual caller; no upstream: only the first hop.
    assert cells[(minute, "client", "edge", "virtual_node", get, "gateway")]["sums"][:3] == (
        1,
        0,
        1,
    )
    post = "POST /v1/payments/{payment}"
    assert (minute, "partner-a", "edge", "virtual_node", post, "gateway") in cells
    assert not [key for key in cells if key[4] == post and key[1] == "edge"]
    kinds = kinds_of(engine)
    assert (kinds["edge"], kinds["partner-a"], kinds["client"]) == ("gateway", "client", "client")
    assert kinds["payments-api"] == "service"


def _numbers(engine) -> list[int]:
    with engine.connect() as conn:
        stored = gateway_requests.in_window(conn, T0, T0 + MINUTE)
        return sorted((row.start_ns - T0) // 1_000_000 for row in stored)


def _append(path: Path, *numbers: int) -> None:
    with path.open("a") as handle:
        handle.writelines(f"{n}\n" for n in numbers)


@pytest.mark.parametrize("rotation", ["rename", "copytruncate", "rename then gzip"])
def test_a_rotated_log_loses_no_line_and_repeats_none(engine, tmp_path: Path, rotation: str):
    """Lines written before the rotation and not read yet are read from the rotated file, from
    where reading stopped; the new file is read from its start; nothing is read twice, also
    once the rotated file is compressed."""
    registry = Registry([LinesOfRequests({n: request(n) for n in range(1, 10)})])
    logs = tmp_path / "logs"
    logs.mkdir()
    live, rotated = logs / "access.log", logs / "access.log.1"
    _append(live, 1, 2, 3)
    assert ingest(engine, [logs], registry).inserted == 3
    _append(live, 4)  # written, not read yet, when the log rotates
    if rotation == "copytruncate":
        shutil.copyfile(live, rotated)
        with live.open("r+") as handle:
            handle.truncate(0)
    else:
        os.rename(live, rotated)
    _append(live, 5, 6)
    second = ingest(engine, [logs], registry)
    assert (second.inserted, second.duplicates) == (3, 0)
    assert _numbers(engine) == [1, 2, 3, 4, 5, 6]
    if rotation == "rename then gzip":
        with rotated.open("rb") as plain, gzip.open(f"{rotated}.gz", "wb") as packed:
            shutil.copyfileobj(plain, packed)
        rotated.unlink()
    _append(live, 7)
    third = ingest(engine, [logs], registry)
    assert (third.inserted, third.duplicates, third.problems) == (1, 0, [])
    assert _numbers(engine) == [1, 2, 3, 4, 5, 6, 7]
    assert ingest(engine, [logs], registry).inserted == 0
    if rotation == "rename then gzip":  # rotated on: the compressed file renamed again
        os.rename(f"{rotated}.gz", logs / "access.log.2.gz")
        assert ingest(engine, [logs], registry).inserted == 0
        assert _numbers(engine) == [1, 2, 3, 4, 5, 6, 7]


def test_every_access_log_of_the_corpus_goes_to_its_own_collector(engine, registry):
    """Through the registry, as ``clew ingest`` reads a folder: each file is detected as its
    product's, every line is a request or quarantined, the NGINX error log is refused as what it
    is, and a second run reads nothing."""
    folders = ("nginx", "envoy", "haproxy", "traefik")
    result = ingest(engine, [corpus(folder) for folder in folders], registry)
    by_file = {Path(report.path).name: report for report in result.reports}
    for folder in folders:
        for path in corpus(folder).iterdir():
            report = by_file[path.name]
            assert report.collector == folder, path
            if path.name == "nginx-http-generic-bf.log":
                assert "an NGINX error log, not an access log" in (report.error or "")
                continue
            assert report.error is None, path
            lines = [line for line in path.read_bytes().splitlines() if line.strip()]
            assert report.records == len(lines) and report.inserted > 0, path
    assert result.inserted + result.quarantined == result.records
    again = ingest(engine, [corpus(folder) for folder in folders], registry)
    assert (again.records, again.inserted) == (0, 0)


def test_a_source_counts_what_it_read_in_all_and_in_its_latest_run(engine, tmp_path: Path):
    from clew.store import queries

    registry = Registry([LinesOfRequests({n: request(n) for n in range(1, 10)})])
    log = tmp_path / "access.log"
    _append(log, 1, 2, 3)
    ingest(engine, [log], registry, batch_spans=2)
    _append(log, 4)
    log.write_text(log.read_text() + "bad\n")
    ingest(engine, [log], registry)
    with engine.connect() as conn:
        (source,) = queries.sources(conn)
    assert (source["collector"], source["records"], source["run_records"]) == (
        "test_gateway",
        5,
        2,
    )
    assert source["offset"] == source["size"] == log.stat().st_size
    assert source["quarantined"] == 1
    assert source["rate"] is None or source["rate"] > 0  # None when the run took no time
