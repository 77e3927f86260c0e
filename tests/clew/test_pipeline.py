"""The pipeline: batches with checkpoints, idempotent re-ingest, resume, quarantine."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import threading
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from clew import pipeline
from clew.pipeline import ingest, rollups
from collectors import CollectorError, Registry, Source
from tests import otlp
from tests.conftest import corpus
from tests.stored import span_count, stored_spans


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_corpus_spans_are_all_inserted_or_quarantined_and_a_rerun_inserts_nothing(engine, registry):
    first = ingest(engine, [corpus("otlp_json")], registry)
    assert first.files == 6
    assert first.inserted == 38  # 26 + 4 + 1 + 6 + 1 spans in the five OTLP files
    assert first.quarantined == 1  # the manifest, which is no OTLP document
    assert first.records == first.inserted + first.quarantined
    assert first.unknown_service == 1
    assert span_count(engine) == 38
    with engine.connect() as conn:
        (source, position, reason) = conn.execute(
            text("SELECT source, position, reason FROM quarantine")
        ).one()
    assert source.endswith("error_timeout_masked.manifest.json")
    assert position == "byte 0" and "not in any known format" in reason

    again = ingest(engine, [corpus("otlp_json")], registry)
    assert (again.inserted, again.quarantined, again.records) == (0, 0, 0)
    assert all(r.skipped for r in again.reports)
    assert span_count(engine) == 38
    assert count(engine, "SELECT count(*) FROM quarantine") == 1


def test_same_spans_from_another_file_are_counted_as_duplicates(engine, registry, tmp_path):
    copy = tmp_path / "copy.json"
    copy.write_bytes(corpus("otlp_json", "error_timeout_masked.json").read_bytes())
    ingest(engine, [corpus("otlp_json", "error_timeout_masked.json")], registry)
    result = ingest(engine, [copy], registry)
    assert (result.inserted, result.duplicates) == (0, 26)


def _line(trace: int, service: str = "svc") -> dict:
    return otlp.request({service: [otlp.span(trace, 1, kind=2, name="GET /x", start_ms=trace)]})


def test_a_grown_file_is_read_on_from_its_checkpoint(engine, registry, tmp_path: Path):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(1), _line(2)])
    assert ingest(engine, [path], registry).inserted == 2
    size = path.stat().st_size
    otlp.write_lines(path, [_line(3)], mode="ab")
    result = ingest(engine, [path], registry)
    assert (result.inserted, result.duplicates, result.records) == (1, 0, 1)
    with engine.connect() as conn:
        offset = conn.execute(text('SELECT "offset" FROM ingest_checkpoints')).scalar_one()
    assert offset == path.stat().st_size > size


def test_a_replaced_file_is_read_from_the_start(engine, registry, tmp_path: Path):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(1, "aaa"), _line(2)])
    ingest(engine, [path], registry)
    otlp.write_lines(path, [_line(5, "bbb"), _line(6), _line(7)])  # a new file, same name
    result = ingest(engine, [path], registry)
    assert result.inserted == 3


def test_unparseable_lines_are_quarantined_and_the_rest_ingested(engine, registry, tmp_path):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(1)])
    with path.open("ab") as handle:
        handle.write(b"this is not json\n")
    otlp.write_lines(path, [_line(2)], mode="ab")
    result = ingest(engine, [path], registry)
    assert (result.inserted, result.quarantined) == (2, 1)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT source, position, reason, excerpt FROM quarantine")).one()
    assert row.source == str(path) and row.position == "line 2"
    assert "invalid JSON" in row.reason and row.excerpt.startswith("this is not json")


def test_a_crash_between_batches_loses_nothing_and_duplicates_nothing(
    engine, registry, tmp_path, monkeypatch
):
    lines = [_line(t) for t in range(1, 41)]
    path = otlp.write_lines(tmp_path / "export.jsonl", lines)
    real_write = pipeline.Batch.write
    calls = {"n": 0}

    def crash_on_third_batch(self, conn, source, *hooks):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash inside the transaction")
        return real_write(self, conn, source, *hooks)

    monkeypatch.setattr(pipeline.Batch, "write", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        ingest(engine, [path], registry, batch_spans=10)
    stored = span_count(engine)
    assert stored == 20  # two whole batches committed with their checkpoint; the third rolled back
    monkeypatch.setattr(pipeline.Batch, "write", real_write)
    result = ingest(engine, [path], registry, batch_spans=10)
    assert (result.inserted, result.duplicates) == (20, 0)
    assert span_count(engine) == 40
    assert len({s.trace_id for s in stored_spans(engine)}) == 40
    assert count(engine, "SELECT sum(count) FROM edge_rollups") == 40


def test_a_file_in_no_known_format_is_quarantined_once(engine, registry, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert ingest(engine, [path], registry).quarantined == 1
    assert ingest(engine, [path], registry).quarantined == 0
    assert count(engine, "SELECT count(*) FROM quarantine") == 1


def test_a_missing_path_is_reported_as_a_problem(engine, registry, tmp_path):
    result = ingest(engine, [tmp_path / "nope.json"], registry)
    assert result.problems == [f"{tmp_path / 'nope.json'}: no such file"]


class GivesUpAfterTwenty:
    """OTLP/JSON, read by Clew's collector, until line 21: there it gives up on the file, with
    ``CollectorError`` or, as a collector never should, with some other error. At module level
    so a parse worker process can import it."""

    name = "gives_up"
    description = "test collector"

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def detect(self, head: bytes) -> bool:
        return True

    def collect(self, source):
        from collectors.otlp_json import OtlpJsonCollector

        lines = 0
        for record in OtlpJsonCollector().collect(source):
            yield record
            if type(record).__name__ == "Checkpoint":
                lines += 1
                if lines == 20:
                    raise self.error(f"{source.path}: line 21: the reader gave up")


@pytest.mark.parametrize("worker", [False, True], ids=["here", "worker"])
def test_a_collector_that_gives_up_keeps_what_was_committed(engine, tmp_path, worker):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 41)])
    registry = Registry([GivesUpAfterTwenty(CollectorError)])
    result = ingest(engine, [path], registry, batch_spans=10, worker=worker)
    assert result.problems == [f"{path}: line 21: the reader gave up"]
    assert (result.reports[0].error, result.inserted) == (result.problems[0], 20)
    assert span_count(engine) == 20
    assert count(engine, 'SELECT "offset" FROM ingest_checkpoints') > 0


def test_an_unexpected_error_in_the_parse_worker_reaches_the_caller(engine, tmp_path):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 41)])
    registry = Registry([GivesUpAfterTwenty(ZeroDivisionError)])
    with pytest.raises(RuntimeError, match=r"(?s)parse worker failed.*ZeroDivisionError"):
        ingest(engine, [path], registry, batch_spans=10, worker=True)
    assert span_count(engine) == 20  # the batches before it stay


@pytest.mark.parametrize("fork", [False, True], ids=["own process", "forked"])
def test_a_worker_started_ahead_parses_large_input_and_is_let_go_for_small(
    engine, tmp_path, registry, monkeypatch, fork
):
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 41)])
    ahead = pipeline.ParseWorker(fork=fork)
    result = ingest(engine, [path], registry, batch_spans=10, worker=ahead)  # small: parsed here
    assert (result.inserted, result.problems) == (40, [])
    assert ahead.process.wait(timeout=30) == 0 and not ahead.given

    again = tmp_path / "again.jsonl"
    again.write_bytes(path.read_bytes().replace(b'"service.name"', b'"service.namespace"'))
    monkeypatch.setattr(pipeline, "WORKER_BYTES", 0)  # everything counts as large now
    ahead = pipeline.ParseWorker(fork=fork)
    assert isinstance(ahead.process, pipeline._Forked) == fork
    result = ingest(engine, [again], registry, batch_spans=10, worker=ahead)
    assert ahead.given and ahead.process.wait(timeout=30) == 0
    assert (result.records, result.duplicates, result.problems) == (40, 40, [])


def test_a_worker_is_not_forked_while_other_threads_run(engine, tmp_path, registry, monkeypatch):
    """A fork copies only the thread that forks: with another thread running (holding who knows
    which lock), the worker starts as a process of its own instead, and parses the same."""
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 41)])
    monkeypatch.setattr(pipeline, "WORKER_BYTES", 0)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        ahead = pipeline.ParseWorker(fork=True)
    finally:
        release.set()
        other.join()
    assert isinstance(ahead.process, subprocess.Popen)
    result = ingest(engine, [path], registry, batch_spans=10, worker=ahead)
    assert (result.inserted, result.problems) == (40, [])
    assert ahead.process.wait(timeout=30) == 0


def test_the_wal_is_checkpointed_beside_the_writer_on_large_input(
    engine, tmp_path, registry, monkeypatch
):
    """On large input, a thread of the writer's copies the WAL back after every batch, on a
    connection of its own; the spans are all there, and the database is whole."""
    statements: list[tuple[str, str]] = []

    def traced(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(
            lambda sql: statements.append((threading.current_thread().name, sql))
        )

    event.listen(engine, "connect", traced)
    engine.dispose()  # connections from now on are traced
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 41)])
    monkeypatch.setattr(pipeline, "WORKER_BYTES", 0)
    result = ingest(engine, [path], registry, batch_spans=10)
    assert (result.inserted, result.problems) == (40, [])
    checkpoints = [name for name, sql in statements if "wal_checkpoint" in sql]
    assert checkpoints and set(checkpoints) == {"clew-checkpointer"}
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    assert span_count(engine) == 40

    statements.clear()  # large, parsed here (one core): the thread copies it as well
    again = tmp_path / "again.jsonl"
    again.write_bytes(path.read_bytes().replace(b'"service.name"', b'"service.namespace"'))
    assert ingest(engine, [again], registry, batch_spans=10, worker=False).problems == []
    assert {name for name, sql in statements if "wal_checkpoint" in sql} == {"clew-checkpointer"}

    statements.clear()  # small: the writer checkpoints alone, as it always did
    small = tmp_path / "small.jsonl"
    small.write_bytes(path.read_bytes().replace(b'"service.name"', b'"service.version"'))
    monkeypatch.setattr(pipeline, "WORKER_BYTES", 1 << 40)
    assert ingest(engine, [small], registry, batch_spans=10).problems == []
    assert not [sql for _, sql in statements if "wal_checkpoint" in sql]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_the_worker_leaves_contributions_to_the_writer_only_when_they_are_python(
    engine, tmp_path, registry, monkeypatch, compiled
):
    """Compiled contributions cost the worker less than the writer's decoding of the rows they
    need: the worker computes them all. In Python it leaves the writer a share (0.4 at first)."""
    if compiled and not rollups.compiled():
        pytest.skip("clew.pipeline._contributions is not built")
    if not compiled:
        monkeypatch.setattr(rollups, "_native", None)  # the forked worker inherits it
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 201)])
    deferred = []
    items = pipeline.ParseWorker.items

    def watched(self, jobs):
        for index, item in items(self, jobs):
            if isinstance(item, pipeline.Batch):
                deferred.append(len(item.deferred))
            yield index, item

    monkeypatch.setattr(pipeline.ParseWorker, "items", watched)
    monkeypatch.setattr(pipeline, "WORKER_BYTES", 0)
    result = ingest(
        engine, [path], registry, batch_spans=20, worker=pipeline.ParseWorker(fork=True)
    )
    assert (result.inserted, result.problems) == (200, [])
    assert len(deferred) > 3 and (sum(deferred) == 0) == compiled


def test_a_batch_crosses_the_pipe_with_its_chunks_out_of_band(tmp_path, registry):
    """The worker sends a batch's chunks as one buffer beside its pickle, and the writer's chunks
    are views into the buffer it read: the spans are copied into no pickle on either side. Any
    pickle protocol gives the same batch back (protocol 5 in band, 4 as bytes)."""
    path = otlp.write_lines(tmp_path / "export.jsonl", [_line(t) for t in range(1, 31)])
    batch = next(
        item
        for item in pipeline.batches(registry["otlp_json"], Source(path), 1000)
        if isinstance(item, pipeline.Batch)
    )
    rows = sorted(tuple(row) for row in batch.rows)
    parts = pipeline._framed((3, batch))
    assert len(parts) == 2 and bytes(parts[1]) not in bytes(parts[0])
    read, write = os.pipe()  # a few kB: the pipe holds them all before they are read
    sending = PipeEnd(write, readable=False)
    for part in parts:
        sending.send_bytes(part)
    sending.close()
    with io.FileIO(read, "rb") as receiving:
        index, received = pipeline._unframed(receiving)
    assert index == 3 and received.rows is None and received.span_count == 30
    buffers = {id(chunk.data.obj): chunk.data.obj for chunk in received.chunks.values()}
    (buffer,) = buffers.values()
    assert type(buffer) is bytearray and len(buffer) == len(parts[1])
    assert sorted(received.span_rows()) == rows
    for protocol in (4, 5):  # a received batch pickles again, from its chunks
        again = pickle.loads(pickle.dumps(received, protocol=protocol))
        assert sorted(again.span_rows()) == rows
        assert again.contributions.cells.keys() == batch.contributions.cells.keys()
