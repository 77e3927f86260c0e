"""The ingest pipeline: collectors' records into the store, in batches with their checkpoints.

Each batch (spans, links, services, quarantined input, the minutes its rollups touch and the
source's checkpoint) is written in one transaction. A crash at any point therefore loses nothing
and duplicates nothing: the next run resumes from the last committed checkpoint, and spans are
unique on (trace id, span id) besides.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import Connection

from clew.pipeline import rollups
from clew.records import (
    UNKNOWN_SERVICE,
    Checkpoint,
    Quarantined,
    Record,
    Resource,
    Span,
    SpanLink,
)
from clew.store import histogram, insert_ignoring_duplicates
from clew.store.models import utcnow
from collectors import Collector, CollectorError, Registry, Source

#: Spans per transaction.
BATCH_SPANS = 50_000
#: Bytes of a file's head that identify it across renames and rotations.
FINGERPRINT_BYTES = 1024

SPAN_COLUMNS = (*Span._fields, "minute", "latency_bucket")
LINK_COLUMNS = SpanLink._fields
_NS_PER_MINUTE = 60_000_000_000


@dataclass
class FileReport:
    """What happened to one file."""

    path: str
    collector: str | None
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unknown_service: int = 0  # spans whose resource had no service.name
    skipped: bool = False  # unchanged since its checkpoint
    error: str | None = None


@dataclass
class IngestResult:
    """Totals over an ingest run, in the shape ``clew ingest --json`` prints."""

    files: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unknown_service: int = 0
    rollup_rows: int = 0
    reports: list[FileReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        data = asdict(self)
        data["reports"] = [asdict(r) for r in self.reports]
        return data


@dataclass
class _FileIdentity:
    device: int
    inode: int
    size: int
    mtime_ns: int


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and the files below folders named, in a stable order; hidden files skipped."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


def _fingerprint(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(min(length, FINGERPRINT_BYTES))).hexdigest()


def _resume_offset(conn: Connection, path: Path, identity: _FileIdentity) -> int | None:
    """Where to resume reading ``path``: None when it is unchanged since its checkpoint."""
    row = conn.execute(
        text('SELECT fingerprint, "offset", size FROM ingest_checkpoints WHERE source = :s'),
        {"s": str(path)},
    ).first()
    if row is None:
        return 0
    fingerprint, offset, size = row
    if identity.size < offset or _fingerprint(path, size) != fingerprint:
        return 0  # truncated or replaced: a different file now
    if identity.size == size and offset >= size:
        return None
    return offset


def _save_checkpoint(
    conn: Connection,
    path: Path,
    collector: str,
    identity: _FileIdentity,
    fingerprint: str,
    offset: int,
) -> None:
    params = {
        "source": str(path),
        "collector": collector,
        "device": identity.device,
        "inode": identity.inode,
        "fingerprint": fingerprint,
        "offset": offset,
        "size": identity.size,
        "mtime_ns": identity.mtime_ns,
        "updated_at": utcnow(),
    }
    conn.execute(
        text(
            "INSERT INTO ingest_checkpoints (source, collector, device, inode, fingerprint,"
            ' "offset", size, mtime_ns, updated_at) VALUES (:source, :collector, :device, :inode,'
            " :fingerprint, :offset, :size, :mtime_ns, :updated_at)"
            " ON CONFLICT (source) DO UPDATE SET collector = excluded.collector,"
            " device = excluded.device, inode = excluded.inode,"
            ' fingerprint = excluded.fingerprint, "offset" = excluded."offset",'
            " size = excluded.size, mtime_ns = excluded.mtime_ns, updated_at = excluded.updated_at"
        ),
        params,
    )


def _save_quarantine(conn: Connection, source: str, items: list[Quarantined]) -> int:
    if not items:
        return 0
    now = utcnow()
    rows = [(source, q.position, q.reason, q.excerpt, now) for q in items]
    return insert_ignoring_duplicates(
        conn, "quarantine", ("source", "position", "reason", "excerpt", "created_at"), rows
    )


_UPSERT_SERVICE = text(
    "INSERT INTO services (name, kind, namespace, environment, version)"
    " VALUES (:name, 'service', :namespace, :environment, :version)"
    " ON CONFLICT (name) DO UPDATE SET kind = 'service',"
    " namespace = COALESCE(excluded.namespace, services.namespace),"
    " environment = COALESCE(excluded.environment, services.environment),"
    " version = COALESCE(excluded.version, services.version)"
)

_TRACE_MINUTES = text("SELECT DISTINCT minute FROM spans WHERE trace_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def _touched_minutes(conn: Connection, rows: list[tuple]) -> set[int]:
    """Minutes whose rollups this batch changes: its own, and those of traces already stored."""
    minutes = {row[-2] for row in rows}
    trace_ids = sorted({row[0] for row in rows})
    for start in range(0, len(trace_ids), 500):
        ids = trace_ids[start : start + 500]
        minutes.update(m for (m,) in conn.execute(_TRACE_MINUTES, {"ids": ids}))
    return minutes


class _Batch:
    """Records gathered between two commits of one file."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.links: list[SpanLink] = []
        self.resources: dict[str, Resource] = {}
        self.quarantined: list[Quarantined] = []
        self.records = 0
        self.unknown_service = 0

    def write(self, conn: Connection, source: str) -> tuple[int, int]:
        """Write the batch; returns (spans inserted, quarantine rows inserted)."""
        if self.resources:
            services = [r._asdict() | {"name": r.service} for r in self.resources.values()]
            conn.execute(_UPSERT_SERVICE, services)
        inserted = 0
        if self.rows:
            rollups.mark_dirty(conn, _touched_minutes(conn, self.rows))
            inserted = insert_ignoring_duplicates(conn, "spans", SPAN_COLUMNS, self.rows)
        insert_ignoring_duplicates(conn, "span_links", LINK_COLUMNS, self.links)
        return inserted, _save_quarantine(conn, source, self.quarantined)


def span_row(span: Span) -> tuple:
    """The ``spans`` table row of a span: its fields plus the minute and latency bucket."""
    return (*span, span.start_ns // _NS_PER_MINUTE, histogram.bucket_of(span.duration_ns))


def _rows(records: Iterable[Record]) -> Iterator:
    """Records with every span turned into its row (a plain tuple)."""
    for record in records:
        yield span_row(record) if type(record) is Span else record


class _Writer:
    """Writes batches in a background thread while the caller parses the next one.

    SQLite and the DBAPI release the GIL while they work, so decoding and writing overlap. At most
    one batch is being written while another is filled; batches commit in order.
    """

    def __init__(self, write: Callable[[_Batch, int], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clew-writer")
        self._pending: Future | None = None

    def submit(self, batch: _Batch, checkpoint: int) -> None:
        self.wait()
        self._pending = self._pool.submit(self._write, batch, checkpoint)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises the writer's error here, in the caller

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def ingest_file(
    engine: Engine,
    path: Path,
    collector: Collector,
    *,
    batch_spans: int = BATCH_SPANS,
    on_progress: Callable[[int], None] | None = None,
) -> FileReport:
    """Ingest one file from its checkpoint on; each batch commits with its checkpoint."""
    report = FileReport(str(path), collector.name)
    stat = path.stat()
    identity = _FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with engine.connect() as conn:
        offset = _resume_offset(conn, path, identity)
    if offset is None:
        report.skipped = True
        return report

    # The head that identifies the file is read once; every batch's checkpoint records it.
    fingerprint = _fingerprint(path, identity.size)

    def write(batch: _Batch, checkpoint: int) -> None:
        with engine.begin() as conn:
            inserted, _ = batch.write(conn, str(path))
            _save_checkpoint(conn, path, collector.name, identity, fingerprint, checkpoint)
        report.records += batch.records
        report.inserted += inserted
        report.duplicates += len(batch.rows) - inserted
        report.quarantined += len(batch.quarantined)
        report.unknown_service += batch.unknown_service

    writer = _Writer(write)
    batch = _Batch()

    def flush(checkpoint: int) -> None:
        nonlocal batch
        writer.submit(batch, checkpoint)
        batch = _Batch()

    last_checkpoint = offset
    try:
        for record in _rows(collector.collect(Source(path, offset))):
            kind = type(record)
            if kind is tuple:  # a span, as its row
                batch.rows.append(record)
                batch.records += 1
                if record[3] == UNKNOWN_SERVICE:
                    batch.unknown_service += 1
            elif kind is Checkpoint:
                if on_progress:
                    on_progress(record.offset - last_checkpoint)
                last_checkpoint = record.offset
                if len(batch.rows) >= batch_spans:
                    flush(last_checkpoint)
            elif kind is SpanLink:
                batch.links.append(record)
            elif kind is Resource:
                batch.resources[record.service] = record
            elif kind is Quarantined:
                batch.quarantined.append(record)
                batch.records += 1
        flush(last_checkpoint)
    finally:
        writer.close()
    return report


def _quarantine_file(engine: Engine, path: Path, reason: str) -> FileReport:
    """A file no collector can read: quarantined whole, checkpointed so it is reported once."""
    stat = path.stat()
    identity = _FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    report = FileReport(str(path), None, records=1, quarantined=1)
    with engine.connect() as conn:
        if _resume_offset(conn, path, identity) is None:
            return FileReport(str(path), None, skipped=True)
    with path.open("rb") as handle:
        head = handle.read(200)
    with engine.begin() as conn:
        _save_quarantine(
            conn,
            str(path),
            [Quarantined("byte 0", reason, head.decode("utf-8", errors="backslashreplace"))],
        )
        fingerprint = _fingerprint(path, identity.size)
        _save_checkpoint(conn, path, "-", identity, fingerprint, identity.size)
    return report


def ingest(
    engine: Engine,
    paths: Iterable[Path],
    registry: Registry,
    *,
    format_name: str | None = None,
    batch_spans: int = BATCH_SPANS,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestResult:
    """Ingest files and folders, then bring the rollups they touched up to date.

    ``progress(stage, done, total)`` is called as bytes are read and minutes rolled up.
    """
    result = IngestResult()
    files = expand(Path(os.path.abspath(p)) for p in paths)
    total_bytes = sum(p.stat().st_size for p in files if p.exists())
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("ingest", done, total_bytes)

    for path in files:
        result.files += 1
        if not path.is_file():
            result.problems.append(f"{path}: no such file")
            result.reports.append(FileReport(str(path), None, error="no such file"))
            continue
        collector = registry[format_name] if format_name else registry.detect(path)
        if collector is None:
            names = ", ".join(sorted(registry))
            report = _quarantine_file(engine, path, f"not in any known format (tried {names})")
        else:
            try:
                report = ingest_file(
                    engine, path, collector, batch_spans=batch_spans, on_progress=advance
                )
            except CollectorError as error:
                report = FileReport(str(path), collector.name, error=str(error))
                result.problems.append(str(error))
        result.reports.append(report)
        result.records += report.records
        result.inserted += report.inserted
        result.duplicates += report.duplicates
        result.quarantined += report.quarantined
        result.unknown_service += report.unknown_service
    result.rollup_rows = rollups.refresh(
        engine, (lambda d, t: progress("rollup", d, t)) if progress else None
    )
    return result
