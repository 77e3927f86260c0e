"""Plain records that collectors yield and the pipeline stores.

Records know nothing of formats or databases. ``Span`` is a named tuple whose field order is the
column order of the ``spans`` table, so the pipeline can hand batches of them straight to a bulk
insert without building per-span objects twice.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NamedTuple


class SpanKind(IntEnum):
    """OTLP span kinds (the protobuf enum values)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTLP status codes (the protobuf enum values)."""

    UNSET = 0
    OK = 1
    ERROR = 2


class NodeKind:
    """What a node of the dependency graph stands for."""

    SERVICE = "service"
    DATABASE = "database"
    BROKER = "broker"
    TOPIC = "topic"  # a topic or queue, inside its broker
    EXTERNAL = "external"
    GATEWAY = "gateway"
    CLIENT = "client"

    ALL = (SERVICE, DATABASE, BROKER, TOPIC, EXTERNAL, GATEWAY, CLIENT)


class ConnectionType:
    """How two nodes are connected, named after Tempo's service-graph connection types."""

    DIRECT = "direct"  # an instrumented client span paired with an instrumented server span
    MESSAGING = "messaging_system"  # producer span paired with a consumer span
    DATABASE = "database"  # a client span to a database that is not instrumented itself
    VIRTUAL = "virtual_node"  # a client span to an uninstrumented peer, or a root span's caller

    ALL = (DIRECT, MESSAGING, DATABASE, VIRTUAL)


#: The service name OpenTelemetry SDKs give a resource that has no ``service.name``.
UNKNOWN_SERVICE = "unknown_service"

#: The virtual node that stands for the unknown caller of a root server span.
ROOT_CALLER = "client"


class Span(NamedTuple):
    """One span, normalised across semantic-convention generations. Times are Unix nanoseconds."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None
    service: str
    name: str
    kind: int  # SpanKind
    start_ns: int
    duration_ns: int
    status: int  # StatusCode
    status_message: str | None
    http_method: str | None
    http_route: str | None
    http_status: int | None
    url_path: str | None
    server_address: str | None
    peer_service: str | None
    db_system: str | None
    messaging_system: str | None
    messaging_destination: str | None
    rpc_service: str | None
    rpc_method: str | None
    attributes: str | None  # the remaining span attributes as a JSON object


class SpanLink(NamedTuple):
    """A link from one span to another, usually across traces (batch consumers)."""

    trace_id: str
    span_id: str
    linked_trace_id: str
    linked_span_id: str


class Resource(NamedTuple):
    """What a span's resource tells about its service."""

    service: str
    namespace: str | None
    environment: str | None
    version: str | None


class GatewayRequest(NamedTuple):
    """One request as an API gateway or reverse proxy logged it, normalised across products.

    Times are Unix nanoseconds, durations nanoseconds. ``None`` is "the log does not say".
    """

    start_ns: int  # when the request began (a log that stamps its end: that time − duration)
    gateway: str  # the gateway node: configured, else the product's name ("nginx", "kong", …)
    consumer: str | None  # who called: an API consumer, key or identity, a header, or the client
    client: str | None  # the client's address as logged (hashed when so configured)
    method: str | None
    host: str | None  # the host the request named (Host, :authority)
    path: str | None  # the request's path, without its query string (queries may hold secrets)
    route: str | None  # the route template, where the gateway names one
    status: int | None  # the status sent to the client
    duration_ns: int | None  # the whole request as the gateway timed it
    upstream_duration_ns: int | None  # the upstream's part, where the format gives it
    upstream: str | None  # the service the gateway routed to (service, cluster, backend, address)
    bytes_sent: int | None  # to the client
    bytes_received: int | None  # from the client
    trace_id: str | None  # 32 lowercase hex digits, when the log carries the request's trace
    attributes: str | None  # what else the line says, as a JSON object


class Contract(NamedTuple):
    """One version of an API contract (OpenAPI, AsyncAPI) as its document states it."""

    kind: str  # "openapi" or "asyncapi"
    spec_version: str  # the document's own: "2.0", "3.0.3", "3.1.0", "2.6.0", "3.0.0"
    title: str  # info.title
    version: str | None  # info.version: the document's version, not one clients pin
    content_hash: str  # sha256 (hex) of the document as read: one version, however often read
    servers: tuple[str, ...]  # server URLs (OpenAPI 2: scheme://host/basePath); hosts for brokers
    document: bytes  # the document as JSON (orjson), references as written, for diffs
    problems: tuple[str, ...]  # what could not be followed: a remote $ref not fetched, ...
    #: The registry's state of the version when it came from one (``DEPRECATED``, ``DRAFT``, …).
    state: str | None = None


class Operation(NamedTuple):
    """One operation of a contract version: an HTTP method on a path template, a webhook or
    callback, or a message sent or received on a channel."""

    content_hash: str  # its contract version's
    protocol: str  # "http" or "messaging"
    role: str  # OpenAPI: "server", "webhook", "callback"; AsyncAPI: "send", "receive"
    method: str | None  # HTTP method, upper case; None for messaging
    path: str  # the path template (OpenAPI, as written under ``paths``) or the channel address
    operation_id: str | None
    deprecated: bool
    sunset: str | None  # ``x-sunset``, as written
    details: str | None  # JSON: summary, tags, parameters, bodies, responses, security, ...


class Relation:
    """The declared relations kept, in Backstage's words (its forward direction only: a
    ``dependencyOf`` is kept as the ``dependsOn`` it implies)."""

    PROVIDES_API = "providesApi"  # component -> API it serves
    CONSUMES_API = "consumesApi"  # component -> API it calls
    DEPENDS_ON = "dependsOn"  # component or resource -> component or resource it needs
    PART_OF = "partOf"  # component / API / resource -> system, system -> domain, ...

    ALL = (PROVIDES_API, CONSUMES_API, DEPENDS_ON, PART_OF)


class CatalogEntity(NamedTuple):
    """One entity of a catalog file, as its document states it."""

    ref: str  # "component:default/petstore": its own ref, lower-cased
    kind: str  # as written: "Component", "API", "System", "Domain", "Group", "Resource", ...
    namespace: str  # as written; "default" when the document names none
    name: str  # as written
    title: str | None
    description: str | None
    type: str | None  # spec.type: "service", "website", "openapi", "database", ...
    lifecycle: str | None  # spec.lifecycle: "production", "experimental", "deprecated", ...
    owner: str | None  # spec.owner as a ref ("group:default/team-a")
    system: str | None  # spec.system as a ref (components, APIs, resources)
    domain: str | None  # spec.domain as a ref (systems)
    tags: tuple[str, ...]
    annotations: str | None  # metadata.annotations as a JSON object
    links: str | None  # metadata.links as a JSON array
    document: int  # which document of the file, from 1
    problems: tuple[str, ...]  # what could not be read as written: a ref without a kind, ...


class DeclaredDependency(NamedTuple):
    """A relation one entity's document declares between two entities."""

    from_ref: str
    to_ref: str
    relation: str  # Relation
    declared_by: str  # the ref of the entity whose document says so
    field: str  # the spec field that says so: "consumesApis", "dependencyOf", "system", ...


class ApiDefinition(NamedTuple):
    """The definition an API entity carries: written inline, or read from a file beside the
    catalog file (``$text: ./openapi.yaml``)."""

    api_ref: str
    spec_type: str | None  # spec.type: "openapi", "asyncapi", "graphql", "grpc", ...
    location: str | None  # the ``$text`` target as written; None for a definition inline
    text: str | None  # None when it could not be read (see problems)
    problems: tuple[str, ...]  # a URL not fetched, a path leaving the folder, a missing file, ...


class Quarantined(NamedTuple):
    """Input that could not be turned into records: where it was and why."""

    position: str  # "line 12", "byte 0", "resourceSpans[0].scopeSpans[1].spans[4]"
    reason: str
    excerpt: str


class Measure:
    """What a connector's metric point measures (``MetricPoint.measure``)."""

    REQUESTS = "requests"  # calls over an edge (servicegraph) or into an endpoint (spanmetrics)
    FAILED = "failed"  # failed calls over an edge (servicegraph's own counter)
    CLIENT_LATENCY = "client_latency"  # the client span's duration (servicegraph)
    SERVER_LATENCY = "server_latency"  # the server span's duration (servicegraph)
    LATENCY = "latency"  # the one duration there is (spanmetrics; servicegraph's legacy metric)


#: The connectors a metric point comes from (``MetricPoint.source``), and the rollup sources
#: their points are counted under: servicegraph's edges, and spanmetrics' endpoints served.
SERVICEGRAPH_SOURCE = "servicegraph"
SPANMETRICS_SOURCE = "spanmetrics"
#: An HTTP endpoint as the rollups and spanmetrics points name it, ``METHOD /route``: the method
#: and the route.
HTTP_ENDPOINT = re.compile(r"^([A-Z]+) (/.*)$")


class ExplicitBuckets(NamedTuple):
    """An explicit-bucket histogram's values, in nanoseconds (``None``: not sent)."""

    count: int
    sum_ns: float | None
    min_ns: float | None
    max_ns: float | None
    bounds_ns: tuple[float, ...]  # upper bounds, increasing; the last bucket is unbounded
    counts: tuple[int, ...]  # one more than the bounds, or none at all (a count and a sum only)


class ExponentialBuckets(NamedTuple):
    """An exponential histogram's values: bucket ``offset + i`` holds the values in
    ``(base**index, base**(index + 1)] * unit_ns`` with ``base = 2 ** 2 ** -scale``."""

    count: int
    sum_ns: float | None
    min_ns: float | None
    max_ns: float | None
    scale: int
    unit_ns: float  # nanoseconds per unit of the metric
    zero_count: int  # values at most ``zero_threshold_ns``
    zero_threshold_ns: float
    offset: int
    counts: tuple[int, ...]


class MetricPoint(NamedTuple):
    """One data point of an OpenTelemetry Collector connector's metric: the edge (servicegraph)
    or served endpoint (spanmetrics) it measures, and its value. Cumulative points are turned
    into deltas by the pipeline (``clew.pipeline.metric_points``), which keeps the last point of
    each series."""

    series: str  # a digest of the series: its sender, its metric and its attributes
    sender: str  # a digest of who sends it: the resource's attributes and the scope
    source: str  # "servicegraph" or "spanmetrics"
    measure: str  # Measure
    client: str  # servicegraph: the client node; spanmetrics: "" (the callers are not known)
    server: str  # servicegraph: the server node; spanmetrics: the service
    connection_type: str  # ConnectionType
    virtual: str | None  # servicegraph: the side that is a virtual node ("client", "server")
    endpoint: str  # spanmetrics: the endpoint served; servicegraph: "" (not known)
    failed: bool  # spanmetrics: the spans' status is ERROR (or their HTTP status 5xx)
    client_error: bool  # spanmetrics: the spans' HTTP status is 4xx
    cumulative: bool  # else delta
    start_ns: int
    time_ns: int
    value: int  # a counter's value (for a histogram, its count)
    histogram: ExplicitBuckets | ExponentialBuckets | None


class UnreadMetric(NamedTuple):
    """Data points of a metric Clew does not read, in an export read from a file: valid OTLP it
    has no use for (an application's own metrics beside the connectors'), counted, not kept."""

    name: str
    points: int


class Checkpoint(NamedTuple):
    """Everything in the source before ``offset`` has been yielded; it is safe to commit here."""

    offset: int


Record = (
    Span
    | SpanLink
    | Resource
    | GatewayRequest
    | Contract
    | Operation
    | MetricPoint
    | UnreadMetric
    | Quarantined
    | Checkpoint
)

#: What a service catalog's file gives.
CatalogRecord = CatalogEntity | DeclaredDependency | ApiDefinition

#: The longest excerpt of bad input kept in quarantine.
EXCERPT_LIMIT = 512


def excerpt(text: str | bytes, limit: int = EXCERPT_LIMIT) -> str:
    """A bounded, printable excerpt of bad input for the quarantine."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= limit else text[: limit - 1] + "…"
