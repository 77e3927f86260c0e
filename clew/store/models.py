"""The schema: SQLAlchemy 2 typed models, the single source that Alembic migrations follow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clew.store import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Service(Base):
    """A node of the dependency graph: an instrumented service or a virtual peer."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="service")
    namespace: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(255))
    system: Mapped[str | None] = mapped_column(String(255))
    lifecycle: Mapped[str | None] = mapped_column(String(64))
    #: The node this one belongs to: a topic's broker.
    parent: Mapped[str | None] = mapped_column(String(255))


class SpanChunk(Base):
    """Spans of one trace stored by one write: a MessagePack array of span rows, each an array
    in ``Span`` column order (``clew.store.spans`` reads and writes them). A trace's spans are
    the union of its chunks; spans are unique on (trace id, span id) across them."""

    __tablename__ = "span_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    #: The earliest start among the chunk's spans (Unix ns): what retention goes by, and how a
    #: gateway log read later finds the root spans of its requests.
    start_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    span_count: Mapped[int] = mapped_column(Integer)
    spans: Mapped[bytes] = mapped_column(LargeBinary)


class GatewayRequestChunk(Base):
    """Requests of one gateway stored by one write: a MessagePack array of request rows, each an
    array in ``GatewayRequest`` column order (``clew.store.gateway_requests`` reads and writes
    them). Every figure comes from the rollups; the requests themselves are read a window at a
    time (drill-down, the join of a root span with the request a gateway logged for it)."""

    __tablename__ = "gateway_request_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(255))
    #: The earliest and latest start among the chunk's requests (Unix ns).
    start_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    request_count: Mapped[int] = mapped_column(Integer)
    requests: Mapped[bytes] = mapped_column(LargeBinary)


class GatewayTrace(Base):
    """A logged request that carried a trace id: what a root span of that trace is joined by."""

    __tablename__ = "gateway_traces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    start_ns: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(String(255))
    consumer: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)


class SpanLinkRow(Base):
    """A span link: producer/consumer pairing across traces."""

    __tablename__ = "span_links"

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    linked_trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    linked_span_id: Mapped[str] = mapped_column(String(16), primary_key=True)

    # Who links to a span: a producer arriving after its batch consumer finds it here.
    __table_args__ = (Index(None, "linked_trace_id", "linked_span_id"),)


class EdgeRollup(Base):
    """Per minute, per edge and endpoint: counts, latency sum and a log-bucket histogram."""

    __tablename__ = "edge_rollups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[int] = mapped_column(Integer)
    client: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255))
    connection_type: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    client_errors: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ns: Mapped[int] = mapped_column(BigInteger)
    duration_max_ns: Mapped[int] = mapped_column(BigInteger)
    histogram: Mapped[str] = mapped_column(Text)  # JSON: {bucket index: count}
    # Queue lag (consumer start − producer end) on topic → consumer edges, where the producer
    # span is known; the histogram uses the same buckets.
    lag_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lag_sum_ns: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lag_histogram: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint(
            "minute",
            "client",
            "server",
            "connection_type",
            "endpoint",
            "source",
            name="uq_edge_rollups_cell",
        ),
        Index(None, "client", "server", "minute"),
        Index(None, "server", "minute"),
    )


class EdgeRollupBlock(Base):
    """The minute cells of ``edge_rollups`` added up over aligned blocks of 10 minutes, an hour
    and a day, so that a long window merges a few blocks instead of every minute. Kept in the
    same transaction as the minute cells (``clew.store.blocks``)."""

    __tablename__ = "edge_rollup_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: How many minutes the block covers (10, 60 or 1440); ``minute`` is its first.
    block_minutes: Mapped[int] = mapped_column(Integer)
    minute: Mapped[int] = mapped_column(Integer)
    client: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255))
    connection_type: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    client_errors: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ns: Mapped[int] = mapped_column(BigInteger)
    duration_max_ns: Mapped[int] = mapped_column(BigInteger)
    histogram: Mapped[str] = mapped_column(Text)
    lag_count: Mapped[int] = mapped_column(BigInteger)
    lag_sum_ns: Mapped[int] = mapped_column(BigInteger)
    lag_histogram: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint(
            "block_minutes",
            "minute",
            "client",
            "server",
            "connection_type",
            "endpoint",
            "source",
            name="uq_edge_rollup_blocks_cell",
        ),
    )


class FailingPathRollup(Base):
    """Per minute, per failing integration path: the traces that failed along it, and one
    exemplar. A path runs from the trace's entry operation to the span where the failure began
    (the erroring span none of whose children erred)."""

    __tablename__ = "failing_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[int] = mapped_column(Integer)  # of the failing span's start
    #: A digest of the entry operation and the nodes of the path: the path's identity.
    path_id: Mapped[str] = mapped_column(String(16))
    entry_service: Mapped[str] = mapped_column(String(255))
    entry_endpoint: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)  # JSON list of node names, entry service first
    failing_client: Mapped[str] = mapped_column(String(255))
    failing_server: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(BigInteger)
    first_seen_ns: Mapped[int] = mapped_column(BigInteger)
    last_seen_ns: Mapped[int] = mapped_column(BigInteger)
    exemplar_trace_id: Mapped[str] = mapped_column(String(32))
    exemplar_span_id: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)  # the failing span's status message or code

    __table_args__ = (UniqueConstraint("minute", "path_id"),)


class Endpoint(Base):
    """An endpoint known from any side, with its status flags (filled in by the inventory)."""

    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(255))
    protocol: Mapped[str] = mapped_column(String(16))  # http, rpc, messaging
    method: Mapped[str] = mapped_column(String(255))
    route: Mapped[str] = mapped_column(Text)
    first_seen_ns: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_ns: Mapped[int | None] = mapped_column(BigInteger)
    documented: Mapped[bool | None]
    shadow: Mapped[bool | None]
    zombie: Mapped[bool | None]
    orphan: Mapped[bool | None]
    unversioned: Mapped[bool | None]

    __table_args__ = (UniqueConstraint("service", "protocol", "method", "route"),)


class RouteParameter(Base):
    """A segment position that cardinality decided is a parameter (``clew.routes.Cardinality``):
    the segment after ``prefix`` in the paths one gateway is sent with one method ('' for any).
    Kept so that every later ingest templates those paths the same way."""

    __tablename__ = "route_parameters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("service", "method", "prefix"),)


class RouteCounting(Base):
    """The distinct values cardinality has seen so far at a segment position it has not decided
    on (``clew.routes.Cardinality``), as 8-byte digests. Written with each batch that counts
    there, in the batch's transaction, so an ingest resumed after a crash (or the next one)
    counts on where the last committed batch left off."""

    __tablename__ = "route_counting"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(255))  # '' for any
    prefix: Mapped[str] = mapped_column(Text)
    #: When a request last showed the position (the minute of its cell, in Unix minutes): the
    #: least recently seen is forgotten first.
    seen: Mapped[int] = mapped_column(BigInteger)
    #: The values' digests, concatenated in sorted order.
    digests: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("service", "method", "prefix"),)


class RouteAlias(Base):
    """What a gateway's route template is in its upstream's own words: a request a gateway logged
    and the root span that served it (``clew.pipeline.joins``) name the same route, one by the
    path's form (``/payments/{id}``), the other by the span's ``http.route``
    (``/payments/{payment_id}``). The endpoint figures read gateway cells by the span's name."""

    __tablename__ = "route_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(255))
    template: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("gateway", "method", "template"),)


class ContractRow(Base):
    """An API contract across its versions: named by its kind and title (``info.title``)."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # openapi, asyncapi
    title: Mapped[str] = mapped_column(String(512))

    __table_args__ = (UniqueConstraint("kind", "title"),)


class ContractVersion(Base):
    """One version of a contract: the document as read, kept whole (by its content hash, so the
    same text is one version however often and wherever it is read)."""

    __tablename__ = "contract_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[str | None] = mapped_column(String(255))  # info.version
    spec_version: Mapped[str] = mapped_column(String(32))
    servers: Mapped[str] = mapped_column(Text)  # JSON list
    problems: Mapped[str] = mapped_column(Text)  # JSON list
    document: Mapped[bytes] = mapped_column(LargeBinary)  # JSON
    source: Mapped[str] = mapped_column(String(1024))  # where it was first read
    operation_count: Mapped[int] = mapped_column(Integer)
    #: Versions of a contract are consecutive in the order they were first read.
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The registry's state of the version (``DEPRECATED``: every operation is), when it came
    #: from a registry; updated when the registry changes it.
    registry_state: Mapped[str | None] = mapped_column(String(32))


class OperationRow(Base):
    """An operation of a contract version (``clew.records.Operation``)."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("contract_versions.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    operation_id: Mapped[str | None] = mapped_column(String(512))
    deprecated: Mapped[bool] = mapped_column(default=False)
    sunset: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str | None] = mapped_column(Text)  # JSON


class CatalogEntityRow(Base):
    """An entity of a service catalog (Backstage), by its ref; replaced whenever the file that
    declares it is read again."""

    __tablename__ = "catalog_entities"

    ref: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(255))
    lifecycle: Mapped[str | None] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(512))
    system: Mapped[str | None] = mapped_column(String(512))
    domain: Mapped[str | None] = mapped_column(String(512))
    tags: Mapped[str] = mapped_column(Text)  # JSON list
    annotations: Mapped[str | None] = mapped_column(Text)  # JSON object
    links: Mapped[str | None] = mapped_column(Text)  # JSON list
    problems: Mapped[str] = mapped_column(Text)  # JSON list
    source: Mapped[str] = mapped_column(String(1024), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeclaredDependencyRow(Base):
    """A relation a catalog entity declares (``clew.records.DeclaredDependency``)."""

    __tablename__ = "declared_dependencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_ref: Mapped[str] = mapped_column(String(512), index=True)
    to_ref: Mapped[str] = mapped_column(String(512), index=True)
    relation: Mapped[str] = mapped_column(String(32))
    declared_by: Mapped[str] = mapped_column(String(512))
    field: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024), index=True)

    __table_args__ = (UniqueConstraint("from_ref", "to_ref", "relation", "declared_by"),)


class ApiDefinitionRow(Base):
    """The definition a catalog API entity carries; ``content_hash`` names the contract version
    read from it (``contract_versions.content_hash``) when it is one Clew reads."""

    __tablename__ = "api_definitions"

    api_ref: Mapped[str] = mapped_column(String(512), primary_key=True)
    spec_type: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(1024))
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    problems: Mapped[str] = mapped_column(Text)  # JSON list
    source: Mapped[str] = mapped_column(String(1024), index=True)


class ObservedVersionHeader(Base):
    """A request header clients were seen pinning an API version with, per gateway route:
    (gateway, service, method, route template) → the header's name (``Api-Version``)."""

    __tablename__ = "observed_version_headers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(255))
    route: Mapped[str] = mapped_column(Text)
    header: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("gateway", "service", "method", "route"),)


class PolicyRun(Base):
    """One evaluation of the policies over the store: when, over which window, how many rules,
    and what changed; ``coverage`` (JSON) holds, per team and system, the rule evaluations and
    how many of them found something, for the scorecards."""

    __tablename__ = "policy_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    since_minute: Mapped[int | None] = mapped_column(BigInteger)
    until_minute: Mapped[int | None] = mapped_column(BigInteger)
    rules: Mapped[int] = mapped_column(Integer)
    findings: Mapped[int] = mapped_column(Integer)  # present in this run, open or waived
    opened: Mapped[int] = mapped_column(Integer)  # new, or present again after being resolved
    resolved: Mapped[int] = mapped_column(Integer)  # present before, not in this run
    coverage: Mapped[str] = mapped_column(Text)


class FindingRow(Base):
    """A finding as it stands: known by its fingerprint (rule, subject, place), with when it was
    first and last seen and its state: open, waived (an active waiver covers it) or resolved
    (the latest run no longer found it)."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    rule: Mapped[str] = mapped_column(String(255), index=True)
    pack: Mapped[str | None] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text)  # JSON: source, path, line, column
    team: Mapped[str | None] = mapped_column(String(255), index=True)
    system: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    waiver_id: Mapped[int | None] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_run_id: Mapped[int] = mapped_column(Integer)
    last_run_id: Mapped[int] = mapped_column(Integer)


class FindingHistoryRow(Base):
    """A finding present in a run, and its state then: the trend is counted from these."""

    __tablename__ = "finding_history"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))


class WaiverRow(Base):
    """A waiver: the findings of a rule (an id, or a glob of them) on subjects matching a glob are
    accepted for a reason, by an approver, until the expiry; after it they open again. From a
    waivers file (``origin`` is its path) or the console (``console``)."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    approver: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(1024), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IngestCheckpoint(Base):
    """How far a source has been read: file identity and offset, committed with the rows."""

    __tablename__ = "ingest_checkpoints"

    source: Mapped[str] = mapped_column(String(1024), primary_key=True)
    collector: Mapped[str] = mapped_column(String(64))
    device: Mapped[int | None] = mapped_column(BigInteger)
    inode: Mapped[int | None] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Records read from the source in all (requests, spans, lines quarantined).
    records: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The latest run that read it: when it began, and the records it has read so far (its rate
    #: is ``run_records`` over ``updated_at − run_started_at``).
    run_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_records: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class JobRunRow(Base):
    """A run of one of ``clew worker``'s jobs: which job (its key, the same in every worker with
    the same job), which worker ran it (host and process), when, and how it ended. Workers read
    the latest to leave a job that another worker ran within its interval (``clew.scheduler``)."""

    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "job", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(1024))
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: ``ok`` or ``problems``; None while it runs (or when its worker died in it).
    outcome: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)


class QuarantineRow(Base):
    """Input that could not be parsed: source, position, reason and a bounded excerpt."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    position: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("source", "position"),)


class UserRow(Base):
    """A local account: its argon2 password hash and its role (viewer, governance or admin).
    A disabled account keeps its row but may not log in."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    #: None for an account that logs in through OpenID Connect only.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The OpenID provider (``iss``) and subject (``sub``) of an account made at an OIDC login.
    oidc_issuer: Mapped[str | None] = mapped_column(String(512))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailureRow(Base):
    """A failed password login: by which name and from which address, when. Recent ones slow
    the next attempts down (``clew.store.accounts.login_delay``); a success clears the name's."""

    __tablename__ = "login_failures"
    __table_args__ = (Index(None, "username", "at"), Index(None, "address", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    """An API token, kept as the SHA-256 of its text (shown once, when made): its scope (ingest,
    read or admin), when it was last used and whether it was revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SettingRow(Base):
    """A value Clew keeps for itself across restarts, by name (the web app's session key)."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MetricSeriesRow(Base):
    """The last point of each metric series a Collector's connector sends, by the series and its
    start time (a restarted sender's series start anew), so that a cumulative point is counted
    as its difference from the one before, whichever receiver took either
    (``clew.pipeline.metric_points``). A delta series keeps the points it counted last, under
    start time -1, so that a point sent again counts once."""

    __tablename__ = "metric_series"
    __table_args__ = (
        UniqueConstraint("series", "start_ns"),
        Index(None, "sender", "start_ns"),
        Index(None, "time_ns"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: A digest of the series' resource, scope, metric and attributes (``MetricPoint.series``).
    series: Mapped[str] = mapped_column(String(32))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    #: A digest of who sends it (``MetricPoint.sender``): its resource and scope.
    sender: Mapped[str] = mapped_column(String(32))
    #: When the row was made and the time of the last point counted (Unix ns).
    first_ns: Mapped[int] = mapped_column(BigInteger)
    time_ns: Mapped[int] = mapped_column(BigInteger)
    #: JSON: the cumulative values of that point (a delta series: the points counted last).
    state: Mapped[str] = mapped_column(Text)


metadata = Base.metadata
