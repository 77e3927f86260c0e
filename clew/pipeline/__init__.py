"""The ingest pipeline: collectors' records into the store, in batches with their checkpoints.

Each batch (spans, links, services, quarantined input, the changes it makes to the rollups and
the source's checkpoint) is written in one transaction. A crash at any point therefore loses
nothing and duplicates nothing: the next run resumes from the last committed checkpoint, and spans
are unique on (trace id, span id) besides.

Large inputs are parsed in a worker process while this one writes: parsing and SQLite's work
each take about one core, and the worker stays at most one batch ahead.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import io
import os
import pickle
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import BinaryIO, NamedTuple, SupportsIndex

import orjson
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from clew import routes
from clew.pipeline import contract_routes, joins, metric_points, rollups
from clew.records import (
    UNKNOWN_SERVICE,
    ApiDefinition,
    CatalogEntity,
    CatalogRecord,
    Checkpoint,
    Contract,
    DeclaredDependency,
    GatewayRequest,
    MetricPoint,
    Operation,
    Quarantined,
    Record,
    Resource,
    Span,
    SpanLink,
    UnreadMetric,
)
from clew.store import catalog as stored_catalog
from clew.store import contracts as stored_contracts
from clew.store import (
    gateway_requests,
    insert_ignoring_duplicates,
    partitions,
    route_parameters,
    statistics,
    utcnow,
)
from clew.store import spans as stored_spans
from collectors import (
    SETTLE_S,
    Collector,
    CollectorError,
    Registry,
    Source,
    is_compressed,
    open_file,
)
from collectors.access_logs import VERSION_HEADER

#: The record types of a service catalog.
_CATALOG = frozenset((CatalogEntity, DeclaredDependency, ApiDefinition))

#: Spans per transaction.
BATCH_SPANS = 25_000
#: Bytes of a file's head that identify it across renames and rotations.
FINGERPRINT_BYTES = 1024

LINK_COLUMNS = SpanLink._fields


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
    #: Data points of metrics Clew does not read, by metric (connector metrics files).
    unread_metrics: dict[str, int] = field(default_factory=dict)


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
    #: Data points of metrics Clew does not read, by metric, over every file.
    unread_metrics: dict[str, int] = field(default_factory=dict)

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


def expand(paths: Iterable[Path], refused: list[str] | None = None) -> list[Path]:
    """Files named, and the files below folders named, in a stable order; hidden files skipped.

    A folder confines what is read from it: a link below it that leads out of it is not read,
    and why is added to ``refused``. (Links to folders are not followed at all; a file named
    itself is read wherever it leads, since the operator named it.)"""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        root = path.resolve()
        for p in sorted(path.rglob("*")):
            if any(part.startswith(".") for part in p.relative_to(path).parts) or not p.is_file():
                continue
            if p.is_symlink() and not (target := p.resolve()).is_relative_to(root):
                if refused is not None:
                    refused.append(f"{p}: a link to {target}, outside {path}: not read")
                continue
            files.append(p)
    return files


def _fingerprint(path: Path, length: int) -> str:
    """A digest of the file's first ``length`` bytes (at most ``FINGERPRINT_BYTES``); of a gzip
    file, of its content's."""
    if is_compressed(path):
        length = FINGERPRINT_BYTES  # its content's length is not known without reading it all
    with open_file(path) as handle:
        return hashlib.sha256(handle.read(min(length, FINGERPRINT_BYTES))).hexdigest()


def _resume_offset(conn: Connection, path: Path, identity: _FileIdentity) -> int | None:
    """Where to resume reading ``path``: None when it is unchanged since its checkpoint.

    A file keeps its place through rotation. Under its own name it resumes where it was; a
    file that is no longer the one checkpointed under its name (rotated away, truncated,
    replaced) or that has no checkpoint may be one read before under another name: renamed
    (``access.log`` → ``access.log.1``: the same device and inode), or copied (copytruncate,
    or compressed by gzip: the same head). It resumes where that one was left.
    """
    row = conn.execute(
        text(
            'SELECT fingerprint, "offset", size, device, inode FROM ingest_checkpoints'
            " WHERE source = :s"
        ),
        {"s": str(path)},
    ).first()
    if row is not None:
        fingerprint, offset, size, device, inode = row
        if is_compressed(path):
            # A compressed file is written once: read whole, it is done.
            if (device, inode, size) == (identity.device, identity.inode, identity.size):
                return None
        elif identity.size >= offset and _fingerprint(path, size) == fingerprint:
            return None if identity.size == size and offset >= size else offset
    return _offset_read_elsewhere(conn, path, identity)


def _offset_read_elsewhere(conn: Connection, path: Path, identity: _FileIdentity) -> int:
    """Where reading stopped in the file at ``path`` when it had another name; 0 if it never
    had one (see ``_resume_offset``).

    A checkpoint's fingerprint covers the head of its file as it was then (up to
    ``FINGERPRINT_BYTES``): this file is that one, copied, if its head is the same over that
    length. A log's first line carries a time and a client, so two logs with the same head are
    the same log.
    """
    with open_file(path) as handle:
        head = handle.read(FINGERPRINT_BYTES)
    short = conn.scalars(
        text("SELECT DISTINCT size FROM ingest_checkpoints WHERE size < :n"),
        {"n": FINGERPRINT_BYTES},
    ).all()
    lengths = {FINGERPRINT_BYTES, *short}
    digests = {length: hashlib.sha256(head[:length]).hexdigest() for length in lengths}
    candidates = conn.execute(
        text(
            'SELECT source, fingerprint, "offset", size FROM ingest_checkpoints'
            " WHERE source <> :s AND ((device = :d AND inode = :i) OR fingerprint IN :f)"
            " ORDER BY updated_at DESC"
        ).bindparams(bindparam("f", expanding=True)),
        {
            "s": str(path),
            "d": identity.device,
            "i": identity.inode,
            "f": sorted(set(digests.values())),
        },
    ).all()
    for source, fingerprint, offset, size in candidates:
        if not is_compressed(path) and identity.size < offset:
            continue  # shorter than what was read of it: not that file
        # A compressed file's fingerprint covers its content's head (see ``_fingerprint``).
        length = FINGERPRINT_BYTES if is_compressed(Path(source)) else min(size, FINGERPRINT_BYTES)
        if len(head) >= length and hashlib.sha256(head[:length]).hexdigest() == fingerprint:
            return offset
    return 0


def _save_checkpoint(
    conn: Connection,
    path: Path,
    collector: str,
    identity: _FileIdentity,
    fingerprint: str,
    offset: int,
    run: _Run,
) -> None:
    """Where ``path`` has been read to, and what this run has read of it so far."""
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
        "records": run.last,
        "run_started_at": run.started_at,
        "run_records": run.records,
    }
    conn.execute(
        text(
            "INSERT INTO ingest_checkpoints (source, collector, device, inode, fingerprint,"
            ' "offset", size, mtime_ns, updated_at, records, run_started_at, run_records)'
            " VALUES (:source, :collector, :device, :inode, :fingerprint, :offset, :size,"
            " :mtime_ns, :updated_at, :records, :run_started_at, :run_records)"
            " ON CONFLICT (source) DO UPDATE SET collector = excluded.collector,"
            " device = excluded.device, inode = excluded.inode,"
            ' fingerprint = excluded.fingerprint, "offset" = excluded."offset",'
            " size = excluded.size, mtime_ns = excluded.mtime_ns, updated_at = excluded.updated_at,"
            " records = ingest_checkpoints.records + excluded.records,"
            " run_started_at = excluded.run_started_at, run_records = excluded.run_records"
        ),
        params,
    )


@dataclass
class _Run:
    """One run's reading of a file, for its checkpoint: when it began, the records read in it,
    and the records of the batch being saved."""

    started_at: datetime
    records: int = 0
    last: int = 0

    def add(self, records: int) -> _Run:
        self.records += records
        self.last = records
        return self


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


@dataclass
class Batch:
    """Records gathered between two commits of one file, with the rollup contributions of its
    spans computed where it was gathered (the parse worker, on large inputs), except those of the
    traces in ``deferred``, which the writer computes (the worker leaves it a share of that work
    when it runs ahead).

    Between processes the spans travel in the form the store keeps them, one encoded chunk per
    trace (``chunks``), beside the few rows queue lags are measured from (``lag_rows``): the
    writer stores a new trace's chunk as it came and decodes rows only where it needs them (a
    trace that continues stored spans, contributions left to it). ``rows`` is then None until
    ``span_rows`` decodes them.
    """

    checkpoint: int = 0
    rows: list[tuple] | None = field(default_factory=list)
    links: list[SpanLink] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)
    records: int = 0
    unknown_service: int = 0
    contributions: rollups.Contributions = field(default_factory=rollups.Contributions)
    #: Traces whose contributions are not in ``contributions``: the writer computes them.
    deferred: list[str] = field(default_factory=list)
    chunks: dict[str, stored_spans.Chunk] | None = None
    lag_rows: list[tuple] | None = None
    #: Requests gateways logged; their contributions are in ``contributions``. Between
    #: processes they travel as the store keeps them (``packed_requests``), and the writer
    #: decodes them only to join them with stored spans (``request_rows``).
    requests: list[tuple] = field(default_factory=list)
    packed_requests: gateway_requests.Packed | None = None
    #: Contract versions read, and their operations (stored by content: once).
    contracts: list[Contract] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    #: (gateway, service, method, route, header): a header clients pinned a version with, per
    #: route, seen in the batch's requests (``version_headers``).
    version_headers: list[tuple] = field(default_factory=list)
    #: Catalog records read (entities, declared relations, API definitions): a catalog file's
    #: records replace what it declared before.
    catalog: list[CatalogRecord] | None = None
    #: Points of the Collector's servicegraph and spanmetrics connectors read from a file,
    #: counted as the receiver counts them (``clew.pipeline.metric_points``).
    metrics: list[MetricPoint] = field(default_factory=list)
    #: Data points of metrics Clew does not read, by metric (``UnreadMetric``).
    unread_metrics: dict[str, int] = field(default_factory=dict)

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple:
        # The chunks are packed into one buffer, which pickle protocol 5 can hand over out of
        # band (``parse_worker`` sends it as it is, with no copy into the pickle). Plain tuples
        # pickle in C; named ones call back into Python for every row.
        state = dict(self.__dict__)
        if self.chunks is None:
            assert self.rows is not None
            index, data = stored_spans.pack(self.rows)
            state["lag_rows"] = [tuple(row) for row in rollups.lag_rows(self.rows, self.links)]
        else:
            index, data = _repacked(self.chunks)
        packed = pickle.PickleBuffer(data) if int(protocol) >= 5 else bytes(data)
        state.update(rows=None, chunks=None, packed=(index, packed))
        # Requests cross as the chunks the store keeps (MessagePack: a fifth of a microsecond
        # a request, against five for pickling and unpickling named tuples).
        if self.requests:
            state["packed_requests"] = gateway_requests.pack(self.requests)
            state["requests"] = []
        return _restored_batch, (state,)

    def take(self, record: Record) -> None:
        """Keep a record other than a span or a checkpoint where the batch holds its kind (a
        quarantined one counted among the records read: the rest are counted as batches end)."""
        kind = type(record)
        if kind is GatewayRequest:
            self.requests.append(record)
        elif kind is Operation:
            self.operations.append(record)
        elif kind is Contract:
            self.contracts.append(record)
        elif kind in _CATALOG:
            if self.catalog is None:
                self.catalog = []
            self.catalog.append(record)
        elif kind is SpanLink:
            self.links.append(record)
        elif kind is Resource:
            self.resources[record.service] = record
        elif kind is Quarantined:
            self.quarantined.append(record)
            self.records += 1
        elif kind is MetricPoint:
            self.metrics.append(record)
        elif kind is UnreadMetric:
            self.unread_metrics[record.name] = (
                self.unread_metrics.get(record.name, 0) + record.points
            )

    @property
    def request_count(self) -> int:
        """How many gateway requests the batch holds."""
        if self.packed_requests is not None:
            return sum(chunk[3] for chunk in self.packed_requests[0])
        return len(self.requests)

    def request_rows(self) -> list[tuple]:
        """The batch's request rows, decoded from their chunks the first time they are asked
        for."""
        if self.packed_requests is not None and not self.requests:
            self.requests = gateway_requests.unpack(self.packed_requests)
        return self.requests

    @property
    def span_count(self) -> int:
        """How many spans the batch holds (each kept once)."""
        if self.rows is not None:
            return len(self.rows)
        return sum(chunk.span_count for chunk in (self.chunks or {}).values())

    def span_rows(self) -> list[tuple]:
        """The batch's span rows, decoded from its chunks the first time they are asked for."""
        if self.rows is None:
            decode = stored_spans.decode
            self.rows = [
                row for chunk in (self.chunks or {}).values() for row in decode(chunk.data)
            ]
        return self.rows

    def write(
        self,
        conn: Connection,
        source: str,
        root_callers: RootCallers | None = None,
        cardinality: Routes | None = None,
    ) -> tuple[int, int]:
        """Write the batch; returns (records inserted: spans, requests, contract and catalog
        records, and metric points not counted before; rollup cells written).

        Spans of traces that already have spans stored are looked up first, so the rollups of
        those traces are corrected for the new arrivals and spans stored before are not counted
        again. Root spans whose requests a gateway logged get the gateway as their caller instead
        of ``client`` (``clew.pipeline.joins``; ``root_callers`` replaces that join), and the
        batch's rollups are then computed here with them; stored traces whose requests this
        batch's gateway requests are move their cells to the gateway. With ``cardinality``, the
        routes of gateway requests are templated further by it (and its decisions kept).
        """
        # One writer at a time: the lookups below and the writes must see the same spans.
        partitions.take_writer_lock(conn)
        statistics.WRITERS.after_batch(conn)  # the lookups' plans need the tables' statistics
        if self.resources:
            services = [r._asdict() | {"name": r.service} for r in self.resources.values()]
            conn.execute(_UPSERT_SERVICE, services)
        inserted = 0
        # A new object: the batch stays as it came, should its write be tried again.
        contributions = rollups.Contributions()
        names: dict[tuple[str, str], tuple[str, str]] = {}
        if self.span_count:
            # Rows made here are grouped and encoded now, as the worker does with its batches.
            chunks = self.chunks
            if chunks is None:
                chunks = stored_spans.chunks_of(self.span_rows())
            lag_rows = self.lag_rows
            if lag_rows is None:
                lag_rows = rollups.lag_rows(self.span_rows(), self.links)
            old = stored_spans.of_traces(conn, chunks)
            # Spans stay encoded unless some root may be named: with no request stored, the
            # contributions made with the batch (in the parse worker) are the batch's.
            if root_callers is not None or joins.any_requests(conn):
                served = [row for row in (*old, *self.span_rows()) if row[5] in _MAY_BE_ROOTS]
                names = (root_callers or joins.callers)(conn, served)
            if names:
                contributions = rollups.Contributions(names)
                contributions.add(self.span_rows())
        if not names:
            contributions.merge(self.contributions)
            if self.deferred:
                contributions.add(self._rows_of(set(self.deferred)))
        if self.span_count:
            fresh: dict[str, stored_spans.Chunk] = chunks
            joining_new: list[tuple] = []
            if old:
                # Traces that continue stored spans: their rollups are corrected, and only
                # their spans not stored yet are added (in chunks of their own).
                continued = {row[0] for row in old}
                known = {(row[0], row[1]) for row in old}
                joining = self._rows_of(continued)
                contributions.correct(old, joining)
                joining_new = [row for row in joining if (row[0], row[1]) not in known]
                lag_rows = [row for row in lag_rows if (row[0], row[1]) not in known]
                fresh = {t: chunk for t, chunk in chunks.items() if t not in continued}
            rollups.add_link_lags(conn, contributions, lag_rows, self.links)
            inserted = stored_spans.write_chunks(conn, fresh)
            inserted += stored_spans.write(conn, joining_new)
        if self.contracts:
            inserted += stored_contracts.write(conn, self.contracts, self.operations, source)
        if self.catalog is not None:
            inserted += stored_catalog.write(
                conn,
                source,
                [r for r in self.catalog if type(r) is CatalogEntity],
                [r for r in self.catalog if type(r) is DeclaredDependency],
                [r for r in self.catalog if type(r) is ApiDefinition],
            )
        if self.request_count:
            if cardinality is not None:
                contributions.collapse_gateway_routes(cardinality.learner)
                cardinality.save(conn)
            # Requests stored before are joined with the spans stored already, if any.
            if root_callers is None and joins.any_spans(conn):
                joins.rename(conn, contributions, self.request_rows())
            insert_ignoring_duplicates(
                conn,
                "observed_version_headers",
                ("gateway", "service", "method", "route", "header"),
                self.version_headers,
            )
            if self.packed_requests is not None:
                inserted += gateway_requests.write_packed(conn, self.packed_requests)
            else:
                inserted += gateway_requests.write(conn, self.requests)
        insert_ignoring_duplicates(conn, "span_links", LINK_COLUMNS, self.links)
        _save_quarantine(conn, source, self.quarantined)
        cells = rollups.apply(conn, contributions, root_callers or joins.callers)
        if self.contracts or self.catalog is not None or self.request_count:
            contract_routes.learn(conn)  # gateway endpoints named by their services' contracts
        if self.metrics:
            counted, metric_cells = metric_points.write_points(conn, self.metrics)
            inserted += counted
            cells += metric_cells
        return inserted, cells

    def _rows_of(self, trace_ids: set[str]) -> list[tuple]:
        """The batch's rows of these traces (decoding only their chunks when rows are not here)."""
        if not trace_ids:
            return []
        if self.rows is not None:
            return [row for row in self.rows if row[0] in trace_ids]
        decode = stored_spans.decode
        chunks = self.chunks or {}
        return [row for t in trace_ids if t in chunks for row in decode(chunks[t].data)]


def version_headers(requests: Iterable[Sequence]) -> list[tuple]:
    """(gateway, service, method, route template, header) for the requests whose attributes name
    a header that pins a version: the collector's ``version_header``, or an NGINX ``$http_*``
    variable kept by name (``http_api_version``). Only attributes that mention a version are
    parsed, so a log without such headers costs a substring test a request."""
    found: dict[tuple, str] = {}
    for r in requests:
        attributes = r[15]
        if not attributes or "version" not in attributes:
            continue
        values = orjson.loads(attributes)
        header = values.get("version_header")
        captured = values.get("request_headers")  # HAProxy's captures, by name
        if not isinstance(header, str) and isinstance(captured, dict):
            header = next((k for k in sorted(captured) if VERSION_HEADER.search(k)), None)
        if not isinstance(header, str):
            header = next(
                (
                    key[5:].replace("_", "-")
                    for key in sorted(values)
                    if key.startswith("http_") and VERSION_HEADER.search(key[5:])
                ),
                None,
            )
        if header is None or r[4] is None:
            continue
        route = r[7] or routes.template_of(r[6] or "/")
        found.setdefault((r[1], r[11] or r[1], r[4], route), header)
    return [(*key, header) for key, header in found.items()]


def _repacked(chunks: dict[str, stored_spans.Chunk]) -> tuple[stored_spans.ChunkIndex, bytes]:
    """Chunks already encoded, as ``stored_spans.pack`` gives them."""
    index: stored_spans.ChunkIndex = []
    end = 0
    for trace_id, chunk in chunks.items():
        end += len(chunk.data)
        index.append((trace_id, chunk.start_ns, chunk.last_start_ns, chunk.span_count, end))
    return index, b"".join(chunk.data for chunk in chunks.values())


def _restored_batch(state: dict) -> Batch:
    """A batch from its pickled state (``Batch.__reduce_ex__``)."""
    batch = Batch.__new__(Batch)
    index, data = state.pop("packed")
    batch.__dict__.update(state)
    batch.chunks = stored_spans.unpack(index, data)
    return batch


class Routes:
    """What an ingest learns about gateway routes (``clew.routes.Cardinality``): its decisions
    and what it is still counting, read from the store when it starts and kept there with each
    batch that changes them, so a run resumed after a crash learns on as the killed one would
    have from its last committed batch."""

    def __init__(self, conn: Connection) -> None:
        kept = route_parameters.load(conn)
        counting = route_parameters.load_counting(conn)
        state = {
            "decisions": [list(p) for p in kept],
            "counting": [[*p, seen, [d.hex() for d in digests]] for p, seen, digests in counting],
        }
        self.learner = routes.Cardinality.from_state(state)
        self._saved = set(self.learner.decisions())

    def save(self, conn: Connection) -> None:
        """Keep the decisions made and the values counted since the last save (in the caller's
        transaction: the batch's)."""
        new = self.learner.decisions() - self._saved
        if new:
            route_parameters.save(conn, sorted(new, key=lambda p: (p[0], p[1] or "", p[2])))
            self._saved |= new
        counted, ended = self.learner.changes()
        if counted or ended:
            route_parameters.save_counting(conn, counted, ended)


#: Names the callers of root spans from other evidence: given the stored and new spans that may
#: be roots (SERVER or kind-less), returns (trace id, span id) → (caller node, its kind) for those
#: it knows. The gateway-log join plugs in here; a caller it names later must move the stored
#: cells itself. Called inside the batch's transaction.
RootCallers = Callable[[Connection, list[tuple]], dict[tuple[str, str], tuple[str, str]]]
_MAY_BE_ROOTS = frozenset((0, 2))  # SpanKind UNSPECIFIED, SERVER


#: Bytes read between two progress reports from the parser.
PROGRESS_BYTES = 1 << 20
#: Batches between two collections of cyclic garbage while ingesting.
GC_EVERY_BATCHES = 8


@contextmanager
def _collecting_per_batches() -> Iterator[Callable[[], None]]:
    """Python's automatic garbage collection paused; the function yielded is called after each
    batch and collects every ``GC_EVERY_BATCHES`` batches.

    A batch holds tens of thousands of new tuples alive, and the automatic collector walks them
    again and again as they age (about a tenth of the parsing time). Parsing and writing make no
    reference cycles worth collecting sooner: reference counting frees a batch's objects.
    """
    enabled = gc.isenabled()
    gc.disable()
    done = 0

    def batch_done() -> None:
        nonlocal done
        done += 1
        if done % GC_EVERY_BATCHES == 0:
            gc.collect(1)

    try:
        yield batch_done
    finally:
        if enabled:
            gc.enable()


def batches(
    collector: Collector,
    source: Source,
    batch_spans: int,
    defer: Callable[[], float] | None = None,
    size: Callable[[int], int] | None = None,
) -> Iterator[Batch | int]:
    """A source's records gathered into batches that end at checkpoints.

    Between batches come progress reports: the number of bytes read since the last report.
    Spans repeated within a batch are kept once (the first), as the store would keep them.
    ``defer()`` gives the share (0 to 1) of a batch's traces whose rollup contributions are left
    to the writer; ``size(batch_spans)``, asked as each batch starts, how many spans it holds.
    """
    batch = Batch(checkpoint=source.offset)
    # Rows by (trace id, span id): the first copy is kept, and the rollups pair from this dict.
    by_id: dict[tuple[str, str], Span] = {}
    spans = unknown = 0
    last = reported = source.offset
    limit = size(batch_spans) if size is not None else batch_spans

    def finish(batch: Batch) -> Batch:
        batch.rows = list(by_id.values())
        batch.records += spans + len(batch.requests) + len(batch.contracts) + len(batch.operations)
        batch.records += len(batch.catalog or ()) + len(batch.metrics)
        batch.unknown_service += unknown
        if batch.requests:  # templated and rolled up where they are parsed, compiled
            batch.contributions.add_gateway(batch.requests)
            batch.version_headers = version_headers(batch.requests)
        share = defer() if defer is not None else 0.0
        if share <= 0:
            batch.contributions.add_by_id(by_id)
            return batch
        # Pairing never crosses traces, so the traces split cleanly between the two sides.
        traces = list(dict.fromkeys(row[0] for row in batch.rows))
        kept = len(traces) - round(share * len(traces))
        batch.deferred = traces[kept:]
        if kept:
            mine = set(traces[:kept])
            batch.contributions.add_by_id({k: r for k, r in by_id.items() if k[0] in mine})
        return batch

    for record in collector.collect(source):
        kind = type(record)
        if kind is Span:
            spans += 1
            key = record[:2]  # (trace id, span id) in one C call
            if key in by_id:
                continue
            by_id[key] = record
            if record[3] == UNKNOWN_SERVICE:
                unknown += 1
        elif kind is Checkpoint:
            last = record.offset
            if last - reported >= PROGRESS_BYTES:
                yield last - reported
                reported = last
            if len(by_id) + len(batch.requests) + len(batch.metrics) >= limit:
                batch.checkpoint = last
                yield finish(batch)
                batch, by_id, spans, unknown = Batch(checkpoint=last), {}, 0, 0
                limit = size(batch_spans) if size is not None else batch_spans
        else:
            batch.take(record)
    if last > reported:
        yield last - reported
    batch.checkpoint = last
    yield finish(batch)


def gather(records: Iterable[Record]) -> Batch:
    """Records from memory (a request to the OTLP receiver) as one batch, contributions and all.

    Spans repeated within it are kept once (the first), as the store would keep them.
    """
    batch = Batch()
    seen: set[tuple[str, str]] = set()
    for record in records:
        kind = type(record)
        if kind is Span:
            batch.records += 1
            key = (record[0], record[1])
            if key not in seen:
                seen.add(key)
                batch.rows.append(record)
                if record[3] == UNKNOWN_SERVICE:
                    batch.unknown_service += 1
        else:
            batch.take(record)
    batch.contributions.add(batch.rows)
    return batch


def write(
    engine: Engine, batch: Batch, source: str, root_callers: RootCallers | None = None
) -> tuple[int, int]:
    """Write a batch with no checkpoint (from memory) in a transaction of its own; returns
    (spans inserted, rollup cells written). ``source`` names it in the quarantine."""
    with engine.begin() as conn:
        return batch.write(conn, source, root_callers)


class _Job(NamedTuple):
    """One file to read: from ``offset``, with ``collector``, in batches of ``batch_spans``;
    ``growing`` when it may still be written (``Source.growing``)."""

    path: Path
    collector: Collector
    offset: int
    batch_spans: int
    growing: bool = False


class _End(NamedTuple):
    """The end of a job's batches; ``error`` when the collector gave up on the file."""

    error: str | None = None


def _produce(
    jobs: list[_Job],
    defer: Callable[[], float] | None = None,
    size: Callable[[int], int] | None = None,
) -> Iterator[tuple[int, Batch | int | _End]]:
    """Every job's batches and progress reports, tagged with the job's index, then its end."""
    for index, job in enumerate(jobs):
        try:
            source = Source(job.path, job.offset, job.growing)
            for item in batches(job.collector, source, job.batch_spans, defer, size):
                yield index, item
                del item  # let the batch go before the next one is gathered
        except CollectorError as error:
            yield index, _End(str(error))
        else:
            yield index, _End()


#: Batches the parse worker may have ready, besides the one in the pipe, before the writer takes
#: them (each some 8 MB pickled): a slow write does not stop the parsing at once.
SEND_AHEAD = 2
#: Spans in the first batch a parse worker sends: the writer, idle until it comes, starts sooner.
FIRST_BATCH_SPANS = 2_500
#: How many times smaller than the others the last few batches a parse worker sends are.
LAST_BATCHES_SMALLER = 5
#: The share of a batch's traces whose contributions the worker leaves to the writer, at first,
#: and how far one batch moves it.
DEFERRED_SHARE_START = 0.4
DEFERRED_SHARE_STEP = 0.05


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def parse_worker(connection: PipeEnd, jobs: list[_Job]) -> None:
    """The parse worker: sends every item of ``_produce(jobs)`` down ``connection``.

    Items are pickled here and written by a sender thread, whose blocking write of a whole
    message releases the GIL: parsing goes on while a batch waits for the writer, up to
    ``SEND_AHEAD`` batches ahead. Where the rollup contributions are computed in Python (the
    compiled ``add_by_id`` is not built), the two processes share them by the speed each has: a
    batch leaves a share of its traces' contributions to the writer, and that share grows while
    no batch is waiting (the writer is catching up and would soon be idle) and shrinks while the
    batches ahead are all taken (the worker would soon wait); the last few batches leave it none.
    Compiled, they cost the worker less (0.3 µs a span) than the writer would spend decoding the
    rows they need (0.8), and the worker computes them all. An unexpected error is sent as its
    traceback; the writer raises it.
    """
    pending: queue.SimpleQueue[tuple[list, bool] | None] = queue.SimpleQueue()
    slots = threading.Semaphore(SEND_AHEAD)
    broken = threading.Event()
    waiting = [0]  # batches pickled and not yet taken by the writer
    counting = threading.Lock()  # ``+=`` is no atomic step between the two threads

    def send() -> None:
        while (message := pending.get()) is not None:
            parts, is_batch = message
            if not broken.is_set():
                try:
                    for part in parts:
                        connection.send_bytes(part)
                except OSError:  # the writer has gone: nothing more is read
                    broken.set()
            if is_batch:
                with counting:
                    waiting[0] -= 1
                slots.release()

    sender = threading.Thread(target=send, name="clew-worker-sender", daemon=True)
    sender.start()

    def put(item: tuple, is_batch: bool = False) -> None:
        parts = _framed(item)
        if is_batch:
            with counting:
                waiting[0] += 1
            slots.acquire()
        pending.put((parts, is_batch))

    share = [DEFERRED_SHARE_START]
    to_read = sum(max(0, _size(job.path) - job.offset) for job in jobs)
    read = sent = 0

    def defer() -> float:
        if waiting[0] == 0:
            share[0] = min(1.0, share[0] + DEFERRED_SHARE_STEP)
        elif waiting[0] >= SEND_AHEAD:
            share[0] = max(0.0, share[0] - DEFERRED_SHARE_STEP)
        return 0.0 if ending() else share[0]

    def ending() -> bool:
        """Whether the batches still to come are few: whatever the writer is left with at the
        end, it writes alone after this process has finished, so they are small and carry all
        their contributions."""
        return sent > 0 and to_read - read < (SEND_AHEAD + 1) * read / sent

    def size(batch_spans: int) -> int:
        if sent == 0:
            return min(FIRST_BATCH_SPANS, batch_spans)  # the writer waits for it to start
        return max(1, batch_spans // LAST_BATCHES_SMALLER) if ending() else batch_spans

    try:
        with _collecting_per_batches() as batch_done:
            for item in _produce(jobs, defer if not rollups.compiled() else None, size):
                if broken.is_set():
                    break
                is_batch = type(item[1]) is Batch
                if type(item[1]) is int:
                    read += item[1]
                put(item, is_batch)
                del item
                if is_batch:
                    sent += 1
                    batch_done()
    except BaseException:  # everything, KeyboardInterrupt too, must reach the writer
        put((-1, traceback.format_exc()))
    finally:
        pending.put(None)
        sender.join()
        connection.close()


class _Forked:
    """A parse worker forked from this process, with the part of ``subprocess.Popen``'s interface
    ``ParseWorker`` uses: ``stdin`` (where its jobs are written), ``wait``, ``kill`` and
    ``returncode``. The child reads its jobs, sends their items down ``send_fd`` and leaves with
    ``os._exit``: nothing of this process (exit handlers, buffered output, open databases) runs
    or is touched twice."""

    def __init__(self, send_fd: int, receive_fd: int) -> None:
        jobs_read, jobs_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):  # a replaced stream may not flush
                stream.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its work is checked through the parent
            code = 1
            try:
                os.close(receive_fd)
                os.close(jobs_write)
                with io.FileIO(jobs_read, "rb") as jobs:
                    data = jobs.readall()
                from clew.pipeline import worker

                worker.run(data, send_fd)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(jobs_read)
        self.pid = pid
        self.stdin: BinaryIO | None = os.fdopen(jobs_write, "wb")
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, once the child has ended (``timeout`` is not supported: it waits)."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ParseWorker:
    """A parse worker process, started before its jobs are known so that its start overlaps the
    writer's own (opening and migrating the store, reading checkpoints). Give it to ``ingest``,
    which hands it its jobs or, when the input turns out small, lets it go; ``close`` ends it
    either way.

    By default it is a process of its own (``python -m clew.pipeline.worker``), not a
    multiprocessing child: nothing of the caller's ``__main__`` is imported again, so any script
    may call ``ingest``; its interpreter and imports take about half a second. With ``fork``, a
    caller that knows its state (the CLI, before it opens anything) has it forked instead: a copy
    of this process, imports and all, ready at once. Forking is declined (and the worker started
    as its own process) where it is not safe: without ``os.fork``, or with other threads running.
    """

    def __init__(self, fork: bool = False) -> None:
        read_fd, write_fd = os.pipe()
        _widen(read_fd)
        try:
            if fork and hasattr(os, "fork") and threading.active_count() == 1:
                self.process: subprocess.Popen | _Forked = _Forked(write_fd, read_fd)
            else:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "clew.pipeline.worker", str(write_fd)],
                    stdin=subprocess.PIPE,
                    pass_fds=(write_fd,),
                )
        finally:
            os.close(write_fd)
        self.receiver = io.FileIO(read_fd, "rb")
        self.given = False

    def items(self, jobs: list[_Job]) -> Iterator[tuple[int, Batch | int | _End]]:
        """Send the jobs; then their items as the worker sends them."""
        process = self.process
        assert process.stdin is not None and not self.given
        self.given = True
        with process.stdin:
            process.stdin.write(pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        ends = 0
        while ends < len(jobs):
            try:
                index, item = _unframed(self.receiver)
            except EOFError:
                process.wait()
                raise RuntimeError(
                    f"the parse worker stopped unexpectedly (exit code {process.returncode})"
                ) from None
            if index < 0:
                raise RuntimeError(f"the parse worker failed:\n{item}")
            if type(item) is _End:
                ends += 1
            yield index, item
            del item

    def close(self, kill: bool = False) -> None:
        """End the worker: one never given jobs reads an empty job list and exits."""
        if kill:
            self.process.kill()
        elif not self.given and self.process.stdin is not None:
            self.process.stdin.close()
        self.receiver.close()
        self.process.wait()


def _framed(item: tuple) -> list:
    """The messages that carry ``item`` to the writer: its pickle, prefixed with how many
    out-of-band buffers follow (a batch's packed chunks), then those buffers as they are."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(item, protocol=5, buffer_callback=buffers.append)
    return [struct.pack("!I", len(buffers)) + data, *(buffer.raw() for buffer in buffers)]


def _unframed(stream: io.FileIO) -> tuple:
    """The item ``_framed`` sent; each out-of-band buffer is read straight into the bytearray
    that the item then holds (a batch's chunks are views into it)."""
    message = _receive(stream)
    (count,) = struct.unpack_from("!I", message)
    buffers = [_receive(stream) for _ in range(count)]
    return pickle.loads(memoryview(message)[4:], buffers=buffers)


def _receive(stream: io.FileIO) -> bytearray:
    """One message the worker sent (``Connection.send_bytes``' framing: a 4-byte big-endian
    length, or -1 and an 8-byte one), read straight into one buffer. ``Connection.recv_bytes``
    gathers a message in pipe-sized reads and copies it twice, which cost the writer as much
    CPU again as the reading itself; ``EOFError`` when the worker has gone."""
    (size,) = struct.unpack("!i", _read_exactly(stream, 4))
    if size == -1:
        (size,) = struct.unpack("!Q", _read_exactly(stream, 8))
    return _read_exactly(stream, size)


def _read_exactly(stream: io.FileIO, size: int) -> bytearray:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        read = stream.readinto(view[got:])
        if not read:
            raise EOFError
        got += read
    return buffer


#: Bytes a pipe to the parse worker holds: Linux's default is 64 KiB, and a batch of several
#: megabytes then crosses in a hundred or more pairs of system calls and process switches.
PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Let the pipe hold ``PIPE_BYTES`` where the system allows it (Linux; otherwise as it is)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    # Above /proc/sys/fs/pipe-max-size, or not permitted: the default stays.
    with suppress(OSError):
        fcntl.fcntl(fd, set_size, PIPE_BYTES)


@contextmanager
def _stream(
    jobs: list[_Job], worker: ParseWorker | None
) -> Iterator[Iterator[tuple[int, Batch | int | _End]]]:
    """The jobs' items, parsed here or, with ``worker``, in that parse worker process."""
    if worker is None:
        yield _produce(jobs)
        return
    try:
        yield worker.items(jobs)
    except BaseException:
        worker.close(kill=True)
        raise
    finally:
        worker.close()


@contextmanager
def _checkpointing(engine: Engine, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """SQLite's WAL copied back into the database by a thread of its own while batches are
    written; the function yielded is called after each commit.

    Left to itself, the writer copies the WAL back when it has grown past
    ``wal_autocheckpoint`` pages, in the commit that grew it: it writes those pages again and
    waits for two fsyncs of everything since the last copy, a second and more of waiting on a
    million spans. Here a passive checkpoint (it never waits for, nor stops, the writer) runs
    after each commit while the writer goes on with the next batch; when the writer's own
    checkpoint comes, nearly everything is already copied and on disk, and it only finishes off
    and lets the WAL start again from its beginning (which only the writer can do). Should a
    background checkpoint fail, the thread stops and the writer's own checkpoints do it all, as
    before. Other databases: nothing is done.
    """
    memory = engine.url.database in (None, "", ":memory:")
    if not enabled or engine.dialect.name != "sqlite" or memory:
        yield lambda: None
        return
    wake = threading.Event()
    done = committed = False

    def run() -> None:
        nonlocal committed
        try:
            connection = engine.raw_connection()
        except DBAPIError:
            return  # an optimisation only: the writer checkpoints by itself
        try:
            while True:
                wake.wait()
                wake.clear()
                if committed:  # the last commit is copied too, should the end come with it
                    committed = False
                    cursor = connection.cursor()
                    try:
                        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        cursor.close()
                if done:
                    return
        except sqlite3.Error:
            return  # an optimisation only: the writer checkpoints by itself
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="clew-checkpointer", daemon=True)
    thread.start()

    def after_commit() -> None:
        nonlocal committed
        committed = True
        wake.set()

    try:
        yield after_commit
    finally:
        done = True
        wake.set()
        thread.join()


def _still_settling(path: Path, collector: Collector | None) -> bool:
    """Whether a growing read leaves ``path`` for later: empty, or not read line by line (or
    not recognised yet) and changed in the last ``SETTLE_S`` seconds."""
    stat = path.stat()
    if stat.st_size == 0:
        return True
    if collector is not None and getattr(collector, "reads_growing", False):
        return False
    return time.time() - stat.st_mtime < SETTLE_S


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
        _save_checkpoint(
            conn, path, "-", identity, fingerprint, identity.size, _Run(utcnow()).add(1)
        )
    return report


#: Input larger than this (bytes still to read) is parsed in a worker process.
WORKER_BYTES = 32 << 20


@dataclass
class _Reading:
    """A file being read: its report and what every checkpoint of it records."""

    report: FileReport
    identity: _FileIdentity
    fingerprint: str
    run: _Run = field(default_factory=lambda: _Run(utcnow()))


def ingest(
    engine: Engine,
    paths: Iterable[Path],
    registry: Registry,
    *,
    format_name: str | None = None,
    batch_spans: int = BATCH_SPANS,
    progress: Callable[[str, int, int], None] | None = None,
    worker: bool | ParseWorker | None = None,
    root_callers: RootCallers | None = None,
    growing: bool = False,
) -> IngestResult:
    """Ingest files and folders; every batch commits with its rollups and its checkpoint.

    ``growing`` reads files that may still be written (``clew ingest --follow``): a collector
    that reads such files (``reads_growing``) leaves a last line without its newline for the next
    read; a file any other collector would read, or none could yet, is left for a later read
    until it has not changed for ``SETTLE_S`` seconds; an empty file is left alone.

    Files are parsed in a worker process while this one writes (``worker=True``, or a
    ``ParseWorker`` started earlier), or here (``False``); by default, and with a started
    ``ParseWorker``, in a worker when more than ``WORKER_BYTES`` are to be read.
    ``progress("ingest", done, total)`` is called as bytes are read; ``root_callers`` names
    the callers of root spans where other evidence knows them.
    """
    result = IngestResult()
    files = list(dict.fromkeys(expand((Path(os.path.abspath(p)) for p in paths), result.problems)))
    total_bytes = sum(p.stat().st_size for p in files if p.is_file())
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("ingest", done, total_bytes)

    jobs: list[_Job] = []
    reading: list[_Reading] = []
    for path in files:
        result.files += 1
        if not path.is_file():
            result.problems.append(f"{path}: no such file")
            result.reports.append(FileReport(str(path), None, error="no such file"))
            continue
        collector = registry[format_name] if format_name else registry.detect(path)
        if growing and _still_settling(path, collector):
            result.reports.append(FileReport(str(path), None, skipped=True))
            continue
        if collector is None:
            names = ", ".join(sorted(registry))
            report = _quarantine_file(engine, path, f"not in any known format (tried {names})")
            advance(path.stat().st_size)
        else:
            stat = path.stat()
            identity = _FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            report = FileReport(str(path), collector.name)
            with engine.connect() as conn:
                offset = _resume_offset(conn, path, identity)
            if offset is None:
                report.skipped = True
                advance(identity.size)
            else:
                advance(offset)
                jobs.append(_Job(path, collector, offset, batch_spans, growing))
                reading.append(_Reading(report, identity, _fingerprint(path, identity.size)))
        result.reports.append(report)

    started = worker if isinstance(worker, ParseWorker) else None
    to_read = sum(r.identity.size - j.offset for j, r in zip(jobs, reading, strict=True))
    large = to_read > WORKER_BYTES
    if worker is None or started is not None:
        worker = large
    parser: ParseWorker | None = None
    if worker and jobs:
        parser = started or ParseWorker()
    elif started is not None:
        started.close()  # not needed after all
    learned: Routes | None = None
    if jobs:
        with engine.connect() as conn:
            learned = Routes(conn)
    with (
        _stream(jobs, parser) as items,
        _collecting_per_batches() as batch_done,
        _checkpointing(engine, enabled=large or parser is not None) as committed,
    ):
        for index, item in items:
            kind = type(item)
            if kind is int:
                advance(item)
                continue
            job, state = jobs[index], reading[index]
            report = state.report
            if kind is Batch:
                with engine.begin() as conn:
                    _save_checkpoint(
                        conn,
                        job.path,
                        job.collector.name,
                        state.identity,
                        state.fingerprint,
                        item.checkpoint,
                        state.run.add(item.records),
                    )
                    inserted, cells = item.write(conn, str(job.path), root_callers, learned)
                committed()
                report.records += item.records
                report.inserted += inserted
                report.duplicates += item.records - len(item.quarantined) - inserted
                report.quarantined += len(item.quarantined)
                report.unknown_service += item.unknown_service
                for name, points in item.unread_metrics.items():
                    report.unread_metrics[name] = report.unread_metrics.get(name, 0) + points
                result.rollup_rows += cells
            elif item.error is not None:
                report.error = item.error
                result.problems.append(item.error)
            del item  # one batch held at a time: this one goes before the next is decoded
            if kind is Batch:
                batch_done()

    for report in result.reports:
        result.records += report.records
        result.inserted += report.inserted
        result.duplicates += report.duplicates
        result.quarantined += report.quarantined
        result.unknown_service += report.unknown_service
        for name, points in report.unread_metrics.items():
            result.unread_metrics[name] = result.unread_metrics.get(name, 0) + points
    return result
