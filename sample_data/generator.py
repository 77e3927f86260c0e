"""Clew's sample landscape: a retailer's traces, made by the real OpenTelemetry SDK, and the
access logs of the gateways in front of it.

The landscape is data: SERVICES says what each service's operations do (their own work and the
calls they make, with probabilities and latency distributions) and ENTRIES says how traffic
arrives. `_Walker` walks that table once per trace, creating spans with explicit timestamps
through one TracerProvider per service; `OtlpJsonLinesExporter` writes them the way the
OpenTelemetry Collector's file exporter does: one ExportTraceServiceRequest per line, as OTLP/JSON.
The requests that came through a gateway (`Arrival`s) are then written again as the gateway logs
them: Kong's file-log JSON for the partners, NGINX's JSON log_format for the web shop. What the
landscape's owners declare about it, its contracts and its Backstage catalog, is written by
declarations.py (beside this module), from the table and from the traffic's counts.

This module is loaded by path (importlib), not as a package, so it imports only the standard
library, OpenTelemetry, protobuf and orjson. Run it directly for the CLI:

    python sample_data/generator.py OUT_DIR [--seed N] [--traces N] [--hours H] [--end-ns NS]
"""

import argparse
import base64
import bisect
import email.utils
import importlib.util
import itertools
import json
import math
import pathlib
import random
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, BinaryIO

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.version import __version__ as SDK_VERSION
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

DEFAULT_SEED = 20261122
TRACES_FILE = "traces.otlp.jsonl"
MANIFEST_FILE = "manifest.json"
MINUTE_NS = 60_000_000_000
MS = 1_000_000


# --- the vocabulary of the landscape table ----------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """A log-normal duration around `median_ms`; a share `tail` comes from a slow mode instead."""

    median_ms: float
    sigma: float = 0.4
    tail: float = 0.0
    tail_median_ms: float = 0.0

    def sample_ns(self, rng: random.Random) -> int:
        """Draws one duration in nanoseconds."""
        median = self.median_ms
        if self.tail and rng.random() < self.tail:
            median = self.tail_median_ms
        return max(1, int(median * rng.lognormvariate(0.0, self.sigma) * MS))


@dataclass(frozen=True)
class Http:
    """A call to an instrumented service: a CLIENT span here, its SERVER span in the callee."""

    service: str
    operation: str  # the callee's operation key, "METHOD /route/{param}"
    p: float = 1.0
    optional: bool = False  # the caller degrades gracefully instead of failing with it


@dataclass(frozen=True)
class External:
    """A call to a host outside the landscape: a CLIENT span with no instrumented callee."""

    host: str
    operation: str
    latency: Latency
    p: float = 1.0
    optional: bool = False


@dataclass(frozen=True)
class Db:
    """A database or cache command: a CLIENT span that names its server in `server.address`."""

    server: str
    system: str  # postgresql | redis
    operation: str  # SELECT, INSERT, ... or a redis command
    target: str  # a table, or a redis key pattern
    namespace: str = "0"
    p: float = 1.0
    optional: bool = False


@dataclass(frozen=True)
class Publish:
    """A message sent to a Kafka topic: a PRODUCER span, then each consumer's CONSUMER span."""

    topic: str
    consumers: tuple[str, ...]  # services with a "process {topic}" operation
    p: float = 1.0
    optional: bool = True  # fire and forget: consumer failures never reach the producer


@dataclass(frozen=True)
class Internal:
    """Work inside a service worth its own INTERNAL span (ESB mapping, scoring, rendering)."""

    name: str
    latency: Latency
    p: float = 1.0
    optional: bool = True


Call = Http | External | Db | Publish | Internal


@dataclass(frozen=True)
class Operation:
    """What a handler does: its own work (split around its calls) and the calls it makes."""

    work: Latency
    calls: tuple[Call, ...] = ()
    parallel: bool = False  # fan all calls out at once, as the web shop composes its pages
    ok: int = 200
    error_rate: float = 0.002  # the handler's own background failures (HTTP 500)


@dataclass(frozen=True)
class Service:
    """One deployable: its area (`service.namespace`), version, stack and operations."""

    area: str
    version: str
    operations: dict[str, Operation]
    legacy: bool = False  # instrumented with the old semantic conventions (http.method, ...)
    framework: str = "flask"
    http_client: str = "requests"


@dataclass(frozen=True)
class Entry:
    """Traffic arriving from outside: which operation, how often, from whom."""

    service: str
    operation: str
    weight: float
    host: str
    user_agents: tuple[str, ...]
    clients: str  # the first three octets of the callers' addresses


@dataclass(frozen=True)
class Arrival:
    """A request from outside as its root SERVER span saw it: what a gateway in front logs."""

    entry: Entry
    method: str
    path: str
    start: int
    end: int
    status: int
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    client: str
    user_agent: str
    params: dict[str, str]  # the trace's ids (sku, orderId, ...)


@dataclass(frozen=True)
class Incident:
    """A failing edge: `client` → `server` calls fail at `rate` in the window's last minutes."""

    client: str
    server: str
    minutes: int
    rate: float
    status: int
    exception: tuple[str, str]


# --- the landscape --------------------------------------------------------------------------

PG_ORDERS = {"server": "orders-db", "system": "postgresql", "namespace": "orders"}
PG_LEDGER = {"server": "orders-db", "system": "postgresql", "namespace": "ledger"}
REDIS = {"server": "session-cache", "system": "redis"}

SERVICES: dict[str, Service] = {
    # retail: the web shop and the stores' point of sale meet the warehouse through the hub
    "storefront-web": Service(
        "retail",
        "5.14.2",
        framework="fastapi",
        http_client="httpx",
        operations={
            "GET /products/{sku}": Operation(
                Latency(6),
                parallel=True,
                calls=(
                    Http("catalog-service", "GET /products/{sku}"),
                    Http("pricing-service", "GET /prices/{sku}"),
                    Http("inventory-service", "GET /stock/{sku}", p=0.35),
                    # the click & collect widget asks the stores' warehouse system through the hub
                    Http("integration-hub", "GET /stock/{sku}", p=0.25),
                    Http(
                        "recommendation-service", "GET /recommendations/{sku}", p=0.5, optional=True
                    ),
                ),
            ),
            "GET /search": Operation(
                Latency(5),
                calls=(
                    Http("catalog-service", "GET /search"),
                    Http("pricing-service", "POST /prices/quote", p=0.6),
                    Internal("render search_results.html", Latency(3), p=0.4),
                ),
            ),
            "GET /cart": Operation(
                Latency(4),
                calls=(
                    Http("cart-service", "GET /carts/{cartId}"),
                    Http("pricing-service", "POST /prices/quote"),
                ),
            ),
            "POST /cart/items": Operation(
                Latency(5), ok=201, calls=(Http("cart-service", "POST /carts/{cartId}/items"),)
            ),
            "POST /checkout": Operation(
                Latency(12),
                ok=201,
                calls=(
                    Http("customer-service", "GET /customers/{customerId}"),
                    Http("cart-service", "GET /carts/{cartId}"),
                    Http("pricing-service", "POST /prices/quote"),
                    Http("order-service", "POST /orders"),
                ),
            ),
            "GET /account/orders/{orderId}": Operation(
                Latency(5),
                calls=(
                    Http("customer-service", "GET /customers/{customerId}"),
                    Http("order-service", "GET /orders/{orderId}"),
                ),
            ),
            "GET /stores/{storeId}/availability/{sku}": Operation(
                Latency(4), calls=(Http("integration-hub", "GET /stock/{sku}"),)
            ),
            "POST /login": Operation(
                Latency(8), calls=(Http("customer-service", "POST /sessions"),)
            ),
        },
    ),
    "pos-api": Service(
        "retail",
        "1.8.4",
        legacy=True,
        operations={
            "POST /pos/sales": Operation(
                Latency(10),
                ok=201,
                calls=(
                    Db(**REDIS, operation="GET", target="terminal:{storeId}"),
                    Http("integration-hub", "POST /pos/sales"),
                ),
            ),
            "GET /pos/stock/{sku}": Operation(
                Latency(3), calls=(Http("integration-hub", "GET /stock/{sku}"),)
            ),
            "GET /pos/products/{sku}": Operation(
                Latency(4),
                calls=(
                    Http("catalog-service", "GET /products/{sku}"),
                    Http("pricing-service", "GET /prices/{sku}"),
                    Http("integration-hub", "GET /stock/{sku}", p=0.6),
                ),
            ),
        },
    ),
    "catalog-service": Service(
        "retail",
        "3.9.0",
        operations={
            "GET /products/{sku}": Operation(Latency(9)),
            "GET /search": Operation(Latency(28, 0.6)),
            # The planted slow path: related-product lookups now and then miss the index cache and
            # scan, so recommendation → catalog has a heavy tail (p95 > 1 s).
            "GET /products/{sku}/related": Operation(
                Latency(35, 0.5, tail=0.14, tail_median_ms=1600)
            ),
        },
    ),
    "pricing-service": Service(
        "retail",
        "2.4.1",
        operations={
            "GET /prices/{sku}": Operation(Latency(4)),
            "POST /prices/quote": Operation(
                Latency(7), calls=(Internal("apply promotions", Latency(3), p=0.5),)
            ),
        },
    ),
    "recommendation-service": Service(
        "retail",
        "1.12.0",
        framework="fastapi",
        http_client="httpx",
        operations={
            "GET /recommendations/{sku}": Operation(
                Latency(12),
                calls=(
                    Internal("score candidates", Latency(18)),
                    Http("catalog-service", "GET /products/{sku}/related"),
                ),
            ),
        },
    ),
    "customer-service": Service(
        "retail",
        "4.2.3",
        operations={
            "GET /customers/{customerId}": Operation(Latency(6)),
            "POST /sessions": Operation(
                Latency(14),
                ok=201,
                calls=(Db(**REDIS, operation="SET", target="session:{sessionId}"),),
            ),
        },
    ),
    "cart-service": Service(
        "retail",
        "2.0.7",
        operations={
            "GET /carts/{cartId}": Operation(
                Latency(3), calls=(Db(**REDIS, operation="HGETALL", target="cart:{cartId}"),)
            ),
            "POST /carts/{cartId}/items": Operation(
                Latency(4),
                ok=201,
                calls=(
                    Db(**REDIS, operation="HGETALL", target="cart:{cartId}"),
                    Http("inventory-service", "GET /stock/{sku}"),
                    Db(**REDIS, operation="HSET", target="cart:{cartId}"),
                ),
            ),
        },
    ),
    "order-service": Service(
        "retail",
        "6.3.0",
        operations={
            "POST /orders": Operation(
                Latency(15),
                ok=201,
                calls=(
                    Db(**PG_ORDERS, operation="INSERT", target="orders"),
                    Http("payments-api", "POST /v2/payments"),
                    Http("integration-hub", "POST /fulfilment/orders"),
                    Db(**PG_ORDERS, operation="UPDATE", target="orders"),
                ),
            ),
            "GET /orders/{orderId}": Operation(
                Latency(5),
                calls=(
                    Db(**PG_ORDERS, operation="SELECT", target="orders"),
                    Http(
                        "tracking-service",
                        "GET /shipments/{orderId}/tracking",
                        p=0.7,
                        optional=True,
                    ),
                ),
            ),
            "GET /orders/backorders/{sku}": Operation(
                Latency(4), calls=(Db(**PG_ORDERS, operation="SELECT", target="order_lines"),)
            ),
        },
    ),
    # The ESB: it maps between the shop, the tills, the warehouse system and payments.
    "integration-hub": Service(
        "retail",
        "8.1.4",
        operations={
            "POST /fulfilment/orders": Operation(
                Latency(8),
                ok=202,
                calls=(
                    Internal("map order to WMS pick list", Latency(3)),
                    Http("inventory-service", "POST /reservations"),
                    Http("warehouse-service", "POST /pick-lists"),
                    Http("shipment-service", "POST /shipments"),
                ),
            ),
            "GET /stock/{sku}": Operation(
                Latency(3),
                calls=(
                    Http("warehouse-service", "GET /stock/{sku}"),
                    Internal("map WMS stock response", Latency(1)),
                ),
            ),
            "POST /pos/sales": Operation(
                Latency(6),
                ok=201,
                calls=(
                    Internal("map POS sale", Latency(2)),
                    Http("inventory-service", "POST /reservations"),
                    Http("payments-api", "POST /v2/payments", p=0.8),  # the rest pay cash
                    Http("warehouse-service", "POST /stock-movements"),
                ),
            ),
        },
    ),
    "inventory-service": Service(
        "retail",
        "3.3.2",
        operations={
            "GET /stock/{sku}": Operation(Latency(3)),
            # Reservations ask the order service for open backorders first: the planted cycle
            # order-service → integration-hub → inventory-service → order-service.
            "POST /reservations": Operation(
                Latency(8),
                ok=201,
                calls=(Http("order-service", "GET /orders/backorders/{sku}", p=0.2),),
            ),
        },
    ),
    "warehouse-service": Service(
        "retail",
        "2.3.0",
        legacy=True,
        operations={
            "GET /stock/{sku}": Operation(Latency(22, 0.5)),
            "POST /pick-lists": Operation(Latency(45, 0.5), ok=201),
            "POST /stock-movements": Operation(Latency(30, 0.5), ok=201),
        },
    ),
    # payments: also exposed to partners through the API gateway
    "payments-api": Service(
        "payments",
        "3.0.2",
        operations={
            "POST /v2/payments": Operation(
                Latency(9),
                ok=201,
                calls=(
                    Http("fraud-service", "POST /assessments"),
                    External(
                        "api.cardnetwork.example", "POST /v1/authorizations", Latency(140, 0.35)
                    ),
                    Http("ledger-service", "POST /entries"),
                ),
            ),
            "GET /v2/payments/{paymentId}": Operation(
                Latency(4), calls=(Http("ledger-service", "GET /entries/{paymentId}"),)
            ),
            "POST /v2/refunds": Operation(
                Latency(9),
                ok=201,
                calls=(
                    External("api.cardnetwork.example", "POST /v1/refunds", Latency(160, 0.35)),
                    Http("ledger-service", "POST /entries"),
                ),
            ),
        },
    ),
    "fraud-service": Service(
        "payments",
        "5.7.1",
        framework="fastapi",
        http_client="httpx",
        operations={
            "POST /assessments": Operation(
                Latency(14), calls=(Internal("evaluate risk rules", Latency(9)),)
            ),
        },
    ),
    "ledger-service": Service(
        "payments",
        "2.11.0",
        operations={
            "POST /entries": Operation(
                Latency(6),
                ok=201,
                calls=(Db(**PG_LEDGER, operation="INSERT", target="ledger_entries"),),
            ),
            "GET /entries/{paymentId}": Operation(
                Latency(4), calls=(Db(**PG_LEDGER, operation="SELECT", target="ledger_entries"),)
            ),
        },
    ),
    # logistics: shipments are announced on a Kafka topic and handled by its consumers
    "shipment-service": Service(
        "logistics",
        "1.6.0",
        operations={
            "POST /shipments": Operation(
                Latency(10),
                ok=201,
                calls=(
                    Internal("choose carrier", Latency(4)),
                    Publish("shipment-events", ("tracking-service", "notification-service")),
                ),
            ),
        },
    ),
    "tracking-service": Service(
        "logistics",
        "2.2.5",
        operations={
            "process shipment-events": Operation(
                Latency(5),
                calls=(External("api.carrier.example", "POST /v1/shipments", Latency(180, 0.4)),),
            ),
            "GET /shipments/{orderId}/tracking": Operation(
                Latency(4),
                calls=(
                    External(
                        "api.carrier.example", "GET /v1/tracking/{shipmentId}", Latency(120), p=0.5
                    ),
                ),
            ),
            "POST /webhooks/carrier": Operation(
                Latency(6), calls=(Internal("update shipment status", Latency(3)),)
            ),
        },
    ),
    "notification-service": Service(
        "logistics",
        "0.9.3",
        legacy=True,
        operations={
            "process shipment-events": Operation(
                Latency(4),
                calls=(
                    Http("customer-service", "GET /customers/{customerId}"),
                    Internal("render shipment email", Latency(6)),
                ),
            ),
        },
    ),
}

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
TILLS = ("StoreTill/4.2.0 (Windows 10 IoT)", "StoreTill/4.1.7 (Windows 10 IoT)")
PARTNERS = ("partner-sdk-java/2.3.1", "okhttp/4.12.0", "python-requests/2.32.3")
SHOP, POS, API = "www.shop.example", "pos-api", "api.payments.example"

ENTRIES = (
    Entry("storefront-web", "GET /products/{sku}", 30, SHOP, BROWSERS, "203.0.113"),
    Entry("storefront-web", "GET /search", 16, SHOP, BROWSERS, "203.0.113"),
    Entry("storefront-web", "GET /cart", 8, SHOP, BROWSERS, "203.0.113"),
    Entry("storefront-web", "POST /cart/items", 7, SHOP, BROWSERS, "203.0.113"),
    Entry("storefront-web", "POST /checkout", 5, SHOP, BROWSERS, "203.0.113"),
    Entry("storefront-web", "GET /account/orders/{orderId}", 4, SHOP, BROWSERS, "203.0.113"),
    Entry(
        "storefront-web", "GET /stores/{storeId}/availability/{sku}", 4, SHOP, BROWSERS, "203.0.113"
    ),
    Entry("storefront-web", "POST /login", 3, SHOP, BROWSERS, "203.0.113"),
    Entry("pos-api", "POST /pos/sales", 6, POS, TILLS, "10.40.7"),
    Entry("pos-api", "GET /pos/stock/{sku}", 5, POS, TILLS, "10.40.7"),
    Entry("pos-api", "GET /pos/products/{sku}", 3, POS, TILLS, "10.40.7"),
    Entry("payments-api", "POST /v2/payments", 4, API, PARTNERS, "198.51.100"),
    Entry("payments-api", "GET /v2/payments/{paymentId}", 3, API, PARTNERS, "198.51.100"),
    Entry("payments-api", "POST /v2/refunds", 0.5, API, PARTNERS, "198.51.100"),
    Entry(
        "tracking-service",
        "POST /webhooks/carrier",
        2,
        "tracking.shop.example",
        ("carrier-webhooks/1.0",),
        "192.0.2",
    ),
)

# The planted problems. The slow edge comes from catalog's "related" operation above and the
# cycle from inventory's backorder check; the failing edge is time-dependent, so it lives here.
INCIDENT = Incident(
    "integration-hub",
    "warehouse-service",
    minutes=45,
    rate=0.25,
    status=503,
    exception=("WMSUnavailable", "503 Service Unavailable: WMS connection pool exhausted"),
)
SLOW_EDGE = ("recommendation-service", "catalog-service")
CYCLE = ("order-service", "integration-hub", "inventory-service")

# Background failures are a handler's own bugs and timeouts.
BACKGROUND_ERRORS = (
    ("TimeoutError", "upstream read timed out after 2.0s"),
    ("KeyError", "'currency'"),
    ("ConnectionResetError", "[Errno 104] Connection reset by peer"),
)
EXTERNAL_ERROR_RATE = 0.003
KAFKA_PARTITIONS = 6  # of the shipment-events topic
PORTS = {"postgresql": 5432, "redis": 6379}
SQL = {
    "SELECT": "SELECT * FROM {t} WHERE id = $1",
    "INSERT": "INSERT INTO {t} (id, status, payload) VALUES ($1, $2, $3)",
    "UPDATE": "UPDATE {t} SET status = $1 WHERE id = $2",
}
# The ids in paths that reach the gateways are plain numbers or prefixed ids, as many shops and
# APIs use: a gateway logs the concrete path, which Clew templates by the id's form.
PARAMS = {
    "sku": lambda r: f"{100000 + int(r.expovariate(1 / 400)) % 20000}",
    "cartId": lambda r: f"{r.getrandbits(48):012x}",
    "customerId": lambda r: f"C{r.randrange(10**7):07d}",
    "orderId": lambda r: f"{r.randrange(10**8):08d}",
    "paymentId": lambda r: f"pay_{r.getrandbits(64):016x}",
    "shipmentId": lambda r: f"SHP{r.randrange(10**9):09d}",
    "sessionId": lambda r: f"{r.getrandbits(64):016x}",
    "storeId": lambda r: f"{r.randrange(1, 120)}",
}
PARAM = re.compile(r"\{(\w+)\}")


# --- semantic conventions: the current names, renamed for the legacy services ------------------

LEGACY_NAMES = {
    "http.request.method": "http.method",
    "http.response.status_code": "http.status_code",
    "url.path": "http.target",
    "url.full": "http.url",
    "url.scheme": "http.scheme",
    "network.protocol.version": "http.flavor",
    "user_agent.original": "http.user_agent",
    "client.address": "http.client_ip",
    "server.address": "net.peer.name",
    "server.port": "net.peer.port",
    "service.peer.name": "peer.service",
    "db.system.name": "db.system",
    "db.namespace": "db.name",
    "db.operation.name": "db.operation",
    "db.collection.name": "db.sql.table",
    "db.query.text": "db.statement",
    "messaging.destination.name": "messaging.destination",
    "messaging.operation.type": "messaging.operation",
    "messaging.consumer.group.name": "messaging.kafka.consumer_group",
    "messaging.destination.partition.id": "messaging.kafka.partition",
    "error.type": None,  # the old conventions had no such attribute
    "messaging.operation.name": None,
}
# On a server span the old conventions described the host itself, not a peer.
LEGACY_SERVER_NAMES = {
    **LEGACY_NAMES,
    "server.address": "net.host.name",
    "server.port": "net.host.port",
}
SCHEMA = {
    False: "https://opentelemetry.io/schemas/1.30.0",
    True: "https://opentelemetry.io/schemas/1.11.0",
}
CONTRIB_VERSION = {False: "0.66b2", True: "0.36b0"}


def _semconv(service: Service, attributes: dict[str, Any], *, server: bool = False) -> dict:
    """Names `attributes` (given in current conventions) as `service`'s instrumentation would."""
    if not service.legacy:
        return attributes
    names = LEGACY_SERVER_NAMES if server else LEGACY_NAMES
    renamed = {names.get(key, key): value for key, value in attributes.items()}
    renamed.pop(None, None)
    return renamed


def _client_span_name(service: Service, method: str) -> str:
    return f"HTTP {method}" if service.legacy else method


def _messaging_span_name(service: Service, operation: str, topic: str) -> str:
    return f"{topic} {operation}" if service.legacy else f"{operation} {topic}"


# --- the SDK side: ids, the exporter and the providers ------------------------------------------


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from one seeded `random.Random`: a run repeats byte for byte."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        """Returns a non-zero 64-bit span id."""
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        """Returns a non-zero 128-bit trace id."""
        return self._rng.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        """All 128 bits are uniformly random (a seeded PRNG's idea of random)."""
        return True


_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(request: dict) -> dict:
    """Rewrites protobuf's base64 ids in the lowercase hex that OTLP/JSON requires."""
    for resource_spans in request.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for holder in itertools.chain((span,), span.get("links", ())):
                    for key in _ID_KEYS:
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return request


def to_otlp_json(spans: Sequence[ReadableSpan]) -> dict:
    """Encodes finished SDK spans as one OTLP/JSON ExportTraceServiceRequest, through the SDK's
    own OTLP encoder and protobuf's JSON mapping: the reference ``encode_otlp_json`` is held to."""
    # MessageToDict already gets the rest of OTLP/JSON right: camelCase names, 64-bit integers as
    # strings, and (with use_integers_for_enums) enums as integers. Only the ids need fixing.
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return _hex_ids(request)


def encode_otlp_json(spans: Sequence[ReadableSpan]) -> dict:
    """The same request as ``to_otlp_json``, key for key and in the same order, built directly
    from the spans: the encoder and protobuf's JSON mapping took most of a sample's making.

    As protobuf's mapping does: fields in field-number order, defaults left out (but a message
    the encoder sets, even empty, and a value of an ``AnyValue``'s oneof, even a default, kept),
    64-bit integers as strings, enums as integers, bytes in base64 (ids in hex, as OTLP/JSON
    has them)."""
    grouped: dict[Resource, dict[Any, list[dict]]] = {}
    for span in spans:
        scope = span.instrumentation_scope or None
        grouped.setdefault(span.resource, {}).setdefault(scope, []).append(_span_json(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            item: dict[str, Any] = {"scope": _scope_json(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                item["schemaUrl"] = scope.schema_url
            scope_spans.append(item)
        entry: dict[str, Any] = {"resource": _attributes_holder(resource.attributes)}
        entry["scopeSpans"] = scope_spans
        if resource.schema_url:
            entry["schemaUrl"] = resource.schema_url
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans} if resource_spans else {}


def _attributes_holder(attributes: Any) -> dict:
    return {"attributes": _attributes_json(attributes)} if attributes else {}


def _scope_json(scope: Any) -> dict:
    if scope is None:
        return {}
    out: dict[str, Any] = {}
    if scope.name:
        out["name"] = scope.name
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _attributes_json(scope.attributes)
    return out


def _flags(parent: SpanContext | None) -> int:
    # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, and SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK for a remote one
    return 0x300 if parent is not None and parent.is_remote else 0x100


def _span_json(span: ReadableSpan) -> dict:
    context = span.get_span_context()
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
    }
    if context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent is not None:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    if span.name:
        out["name"] = span.name
    out["kind"] = _KIND_NUMBERS[span.kind]  # never 0: the SDK has no unspecified kind
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    if span.attributes:
        out["attributes"] = _attributes_json(span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [_event_json(event) for event in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [_link_json(link) for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    if span.status is not None:
        status: dict[str, Any] = {}
        if span.status.description:
            status["message"] = span.status.description
        if span.status.status_code.value:
            status["code"] = span.status.status_code.value
        out["status"] = status
    out["flags"] = _flags(span.parent)
    return out


def _event_json(event: Any) -> dict:
    out: dict[str, Any] = {}
    if event.timestamp:
        out["timeUnixNano"] = str(event.timestamp)
    if event.name:
        out["name"] = event.name
    if event.attributes:
        out["attributes"] = _attributes_json(event.attributes)
    if event.dropped_attributes:
        out["droppedAttributesCount"] = event.dropped_attributes
    return out


def _link_json(link: Link) -> dict:
    out: dict[str, Any] = {
        "traceId": f"{link.context.trace_id:032x}",
        "spanId": f"{link.context.span_id:016x}",
    }
    if link.attributes:
        out["attributes"] = _attributes_json(link.attributes)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    out["flags"] = _flags(link.context)
    return out


def _attributes_json(attributes: Any) -> list[dict]:
    return [{"key": key, "value": _value_json(value)} for key, value in attributes.items()]


def _value_json(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        values = [_value_json(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _value_json(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"an attribute of type {type(value).__name__} has no OTLP value")


_KIND_NUMBERS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}


class OtlpJsonLinesExporter(SpanExporter):
    """Writes spans in the Collector file exporter's form: one ExportTraceServiceRequest per line.

    Spans are held until `max_spans_per_line` have arrived (or a flush), so each line carries a
    batch, as a Collector's would. Several exporters may share one stream; a single-threaded
    caller keeps the line order deterministic.
    """

    def __init__(self, stream: BinaryIO, max_spans_per_line: int = 200) -> None:
        self._stream = stream
        self._max = max_spans_per_line
        self._pending: list[ReadableSpan] = []
        self.spans_written = 0
        self.lines_written = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Queues `spans`, writing a line whenever a full batch is ready."""
        self._pending.extend(spans)
        if len(self._pending) >= self._max:
            self._write()
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Writes whatever is queued as a last, shorter line."""
        self._write()
        return True

    def shutdown(self) -> None:
        """Flushes; the stream belongs to the caller and stays open."""
        self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        self._stream.write(orjson.dumps(encode_otlp_json(self._pending)) + b"\n")
        self.spans_written += len(self._pending)
        self.lines_written += 1
        self._pending = []


def _resource(name: str, service: Service) -> Resource:
    # Built directly rather than with Resource.create(), which would also read
    # OTEL_RESOURCE_ATTRIBUTES and other environment: the output must depend on the arguments only.
    return Resource(
        {
            "service.name": name,
            "service.namespace": service.area,
            "service.version": service.version,
            "deployment.environment.name": "production",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": SDK_VERSION,
        }
    )


def _remote(span: trace.Span) -> Context:
    """The context a callee extracts from the `traceparent` header `span`'s client would send."""
    sent = span.get_span_context()
    received = SpanContext(
        sent.trace_id,
        sent.span_id,
        is_remote=True,
        trace_flags=sent.trace_flags,
        trace_state=sent.trace_state,
    )
    return trace.set_span_in_context(NonRecordingSpan(received))


# --- the engine: walks the table for one trace --------------------------------------------------


class _Walker:
    """Plays one trace at a time through the landscape, with explicit timestamps."""

    def __init__(
        self, providers: dict[str, TracerProvider], rng: random.Random, incident_since: int
    ) -> None:
        self._providers = providers
        self._rng = rng
        self._incident_since = incident_since
        self._tracers: dict[tuple[str, str], trace.Tracer] = {}
        self._params: dict[str, str] = {}
        #: (calling service, or None for a request from outside; service; operation) → requests
        self.served: Counter[tuple[str | None, str, str]] = Counter()
        self._callers = {
            Http: self._http,
            External: self._external,
            Db: self._db,
            Publish: self._publish,
            Internal: self._internal,
        }

    def play(self, entry: Entry, start: int) -> Arrival:
        """Plays one request arriving at `entry` at `start` (ns), and everything it causes;
        returns the request as its root span saw it."""
        self._params = {}  # a trace keeps its sku, cart and order ids from hop to hop
        rng = self._rng
        client, user_agent = (
            f"{entry.clients}.{rng.randrange(2, 255)}",
            rng.choice(entry.user_agents),
        )
        attributes = {"client.address": client, "user_agent.original": user_agent}
        method, route = entry.operation.split(" ", 1)
        path = self._fill(route)
        # An empty Context makes a root span, whatever span is current in this process.
        end, status, context = self._serve(
            entry.service,
            entry.operation,
            path,
            Context(),
            start,
            caller=None,
            host=entry.host,
            port=443,
            scheme="https",
            extra=attributes,
        )
        return Arrival(
            entry,
            method,
            path,
            start,
            end,
            status,
            f"{context.trace_id:032x}",
            f"{context.span_id:016x}",
            client,
            user_agent,
            dict(self._params),
        )

    # -- helpers

    def _tracer(self, service: str, library: str) -> trace.Tracer:
        key = (service, library)
        if key not in self._tracers:
            legacy = SERVICES[service].legacy
            if library == "app":  # hand-written spans use the service's own tracer
                name, version = service.replace("-", "_"), SERVICES[service].version
            else:
                name, version = f"opentelemetry.instrumentation.{library}", CONTRIB_VERSION[legacy]
            self._tracers[key] = self._providers[service].get_tracer(
                name, version, schema_url=SCHEMA[legacy]
            )
        return self._tracers[key]

    def _fill(self, template: str) -> str:
        def value(match: re.Match) -> str:
            name = match[1]
            if name not in self._params:
                self._params[name] = PARAMS[name](self._rng)
            return self._params[name]

        return PARAM.sub(value, template)

    def _net_ns(self) -> int:
        """One way across the data-centre network."""
        return int(self._rng.uniform(0.2, 1.5) * MS)

    def _fail(self, span: trace.Span, at: int, exception: tuple[str, str]) -> None:
        kind, message = exception
        span.set_status(Status(StatusCode.ERROR, message))
        span.add_event(
            "exception", {"exception.type": kind, "exception.message": message}, timestamp=at
        )

    # -- the receiving side: a SERVER or CONSUMER span running an operation

    def _serve(
        self,
        name: str,
        op_key: str,
        path: str,
        parent: Context,
        start: int,
        *,
        caller: str | None,
        host: str,
        port: int,
        scheme: str,
        extra: dict | None = None,
    ) -> tuple[int, int, SpanContext]:
        """Handles one HTTP request in service `name`; returns (end ns, HTTP status, and the
        server span's context)."""
        service, operation = SERVICES[name], SERVICES[name].operations[op_key]
        self.served[(caller, name, op_key)] += 1
        method, route = op_key.split(" ", 1)
        attributes = {
            "http.request.method": method,
            "http.route": route,
            "url.path": path,
            "url.scheme": scheme,
            "server.address": host,
            "server.port": port,
            "network.protocol.version": "1.1",
            **(extra or {}),
        }
        span = self._tracer(name, service.framework).start_span(
            op_key,
            context=parent,
            kind=SpanKind.SERVER,
            start_time=start,
            attributes=_semconv(service, attributes, server=True),
        )
        end, failure = self._handle(name, operation, span, start, caller)
        status = operation.ok
        if failure:
            # Our own failure is a 500 (or the incident's 503); a dependency's is a 502.
            status = failure[0]
            self._fail(span, end, failure[1])
            span.set_attributes(_semconv(service, {"error.type": str(status)}, server=True))
        span.set_attributes(_semconv(service, {"http.response.status_code": status}, server=True))
        span.end(end_time=end)
        return end, status, span.get_span_context()

    def _consume(
        self, name: str, topic: str, producer: trace.Span, start: int, partition: str
    ) -> None:
        """Processes one message from `topic` in service `name`, as a child of its producer."""
        service = SERVICES[name]
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": name,
            "messaging.destination.partition.id": partition,
            "messaging.kafka.message.key": self._params.get("orderId", ""),
        }
        span = self._tracer(name, "confluent_kafka").start_span(
            _messaging_span_name(service, "process", topic),
            context=_remote(producer),
            kind=SpanKind.CONSUMER,
            start_time=start,
            links=[Link(producer.get_span_context())],
            attributes=_semconv(service, attributes),
        )
        end, failure = self._handle(name, service.operations[f"process {topic}"], span, start, None)
        if failure:
            self._fail(span, end, failure[1])
        span.end(end_time=end)

    def _handle(
        self, name: str, operation: Operation, span: trace.Span, start: int, caller: str | None
    ) -> tuple[int, tuple[int, tuple[str, str]] | None]:
        """Runs `operation` inside `span`: its work and its calls.

        Returns the end time and, on failure, (HTTP status, (exception type, message)).
        """
        rng = self._rng
        work = operation.work.sample_ns(rng)
        # The handler's own failures come first and are fast: it never gets to its calls.
        incident = (
            caller == INCIDENT.client and name == INCIDENT.server and start >= self._incident_since
        )
        if incident and rng.random() < INCIDENT.rate:
            return start + work // 3, (INCIDENT.status, INCIDENT.exception)
        if rng.random() < operation.error_rate:
            return start + work // 2, (500, rng.choice(BACKGROUND_ERRORS))

        context = trace.set_span_in_context(span)
        before = int(work * rng.uniform(0.2, 0.6))  # parse, authenticate, validate
        now, failure = start + before, None
        calls = [call for call in operation.calls if rng.random() < call.p]
        if operation.parallel:
            ends = [now]
            for call in calls:
                end, error = self._callers[type(call)](
                    name, call, context, now + int(rng.uniform(0.05, 0.4) * MS)
                )
                ends.append(end)
                if error and not call.optional and failure is None:
                    failure = error
            now = max(ends)
        else:
            for call in calls:
                now, error = self._callers[type(call)](
                    name, call, context, now + int(rng.uniform(0.05, 0.5) * MS)
                )
                if error and not call.optional:
                    failure = error
                    break
        if failure:
            return now + int(rng.uniform(0.2, 1.0) * MS), (502, ("HTTPError", failure))
        return now + (work - before), None

    # -- the calling side: one method per kind of call, each returns (end ns, error or None)

    def _http(self, name: str, call: Http, context: Context, start: int) -> tuple[int, str | None]:
        service = SERVICES[name]
        method, route = call.operation.split(" ", 1)
        path = self._fill(route)
        attributes = {
            "http.request.method": method,
            "url.full": f"http://{call.service}:8080{path}",
            "server.address": call.service,
            "server.port": 8080,
            "service.peer.name": call.service,
            "network.protocol.version": "1.1",
        }
        span = self._tracer(name, service.http_client).start_span(
            _client_span_name(service, method),
            context=context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=_semconv(service, attributes),
        )
        there = start + self._net_ns()
        served, status, _ = self._serve(
            call.service,
            call.operation,
            path,
            _remote(span),
            there,
            caller=name,
            host=call.service,
            port=8080,
            scheme="http",
        )
        end = served + self._net_ns()
        span.set_attributes(_semconv(service, {"http.response.status_code": status}))
        error = None
        if status >= 400:
            error = f"{status} from {call.service} {call.operation}"
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attributes(_semconv(service, {"error.type": str(status)}))
        span.end(end_time=end)
        return end, error

    def _external(
        self, name: str, call: External, context: Context, start: int
    ) -> tuple[int, str | None]:
        service = SERVICES[name]
        method, route = call.operation.split(" ", 1)
        attributes = {
            "http.request.method": method,
            "url.full": f"https://{call.host}{self._fill(route)}",
            "server.address": call.host,
            "server.port": 443,
            "network.protocol.version": "1.1",
        }
        span = self._tracer(name, service.http_client).start_span(
            _client_span_name(service, method),
            context=context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=_semconv(service, attributes),
        )
        end = start + call.latency.sample_ns(self._rng)
        status, error = (201 if method == "POST" else 200), None
        if self._rng.random() < EXTERNAL_ERROR_RATE:
            status, error = 503, f"503 from {call.host}"
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attributes(_semconv(service, {"error.type": "503"}))
        span.set_attributes(_semconv(service, {"http.response.status_code": status}))
        span.end(end_time=end)
        return end, error

    def _db(self, name: str, call: Db, context: Context, start: int) -> tuple[int, None]:
        service = SERVICES[name]
        attributes = {
            "db.system.name": call.system,
            "db.namespace": call.namespace,
            "db.operation.name": call.operation,
            "server.address": call.server,
            "server.port": PORTS[call.system],
        }
        if call.system == "redis":
            span_name = call.operation
            attributes["db.query.text"] = f"{call.operation} {self._fill(call.target)}"
            latency = Latency(0.5, 0.5)
        else:
            span_name = f"{call.operation} {call.target}"
            attributes["db.collection.name"] = call.target
            attributes["db.query.text"] = SQL[call.operation].format(t=call.target)
            latency = Latency(2.5, 0.6)
        library = "redis" if call.system == "redis" else "psycopg"
        span = self._tracer(name, library).start_span(
            span_name,
            context=context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=_semconv(service, attributes),
        )
        end = start + latency.sample_ns(self._rng)
        span.end(end_time=end)
        return end, None

    def _publish(self, name: str, call: Publish, context: Context, start: int) -> tuple[int, None]:
        service = SERVICES[name]
        key = self._fill("{orderId}")
        # Kafka's default partitioner, roughly
        partition = str(zlib.crc32(key.encode()) % KAFKA_PARTITIONS)
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": call.topic,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.partition.id": partition,
            "messaging.kafka.message.key": key,
        }
        span = self._tracer(name, "confluent_kafka").start_span(
            _messaging_span_name(service, "send", call.topic),
            context=context,
            kind=SpanKind.PRODUCER,
            start_time=start,
            attributes=_semconv(service, attributes),
        )
        end = start + Latency(1.5).sample_ns(self._rng)
        span.end(end_time=end)
        # Consumers run on their own schedule: after the send, often after the request returned.
        for consumer in call.consumers:
            lag = Latency(12, 0.8).sample_ns(self._rng)
            self._consume(consumer, call.topic, span, end + lag, partition)
        return end, None

    def _internal(
        self, name: str, call: Internal, context: Context, start: int
    ) -> tuple[int, None]:
        span = self._tracer(name, "app").start_span(
            call.name, context=context, kind=SpanKind.INTERNAL, start_time=start
        )
        end = start + call.latency.sample_ns(self._rng)
        span.end(end_time=end)
        return end, None


# --- traffic over time ----------------------------------------------------------------------


def _trace_starts(rng: random.Random, start_ns: int, end_ns: int, count: int) -> list[int]:
    """`count` sorted start times in [start_ns, end_ns), shaped like a shop's day.

    Each minute's weight is a gentle daily curve (quiet at 03:00 UTC, busiest mid-afternoon),
    times noise, times an occasional burst (a newsletter, a promotion going live).
    """
    weights, bucket_starts = [], []
    for bucket in range(math.ceil((end_ns - start_ns) / MINUTE_NS)):
        t = start_ns + bucket * MINUTE_NS
        hour = (t // 1_000_000_000 % 86_400) / 3600
        daily = 0.55 - 0.45 * math.cos(2 * math.pi * (hour - 3) / 24)
        burst = rng.uniform(1.8, 2.6) if rng.random() < 0.03 else 1.0
        width = min(MINUTE_NS, end_ns - t) / MINUTE_NS  # a last, partial minute
        weights.append(daily * rng.lognormvariate(0.0, 0.2) * burst * width)
        bucket_starts.append(t)
    cumulative = list(itertools.accumulate(weights))
    starts = []
    for _ in range(count):
        bucket = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
        bucket = min(bucket, len(bucket_starts) - 1)
        t = bucket_starts[bucket]
        starts.append(t + int(rng.random() * (min(t + MINUTE_NS, end_ns) - t)))
    return sorted(starts)


# --- the gateways: the same requests in their access logs ---------------------------------------
#
# Partners reach payments-api through Kong (node `api-gateway`), which writes its file-log plugin's
# JSON; the web shop's visitors reach storefront-web through NGINX (node `shop-edge`), which
# writes a JSON log_format. Each root SERVER span of those entries is one proxied line, timed
# around the span as the gateway would time it; beside them are the requests the gateways answer
# themselves (Kong's 401 and 429, NGINX's static files), with no upstream and no trace.

KONG_LOG = "kong-access.log"
NGINX_LOG = "nginx-access.log"


@dataclass(frozen=True)
class ApiConsumer:
    """A partner as the API gateway knows it: a Kong consumer with a key-auth credential. Its
    calls come from its own block of addresses: the last octets `octets` of the partner entries'
    network (`Entry.clients`)."""

    username: str
    custom_id: str
    octets: range
    id: str
    credential_id: str


@dataclass(frozen=True)
class KongRoute:
    """A Kong route to payments-api. Routes with `traced` run Kong's OpenTelemetry plugin, which
    sets a `traceparent` header for the upstream; Kong logs request headers as they were sent,
    so the header and its trace id show in the log."""

    name: str
    id: str
    prefix: str
    traced: bool


API_GATEWAY = "api-gateway"
KONG_VERSION = "3.8.0"
KONG_WORKSPACE = "7586b099-fa79-4c38-9c63-9bd44a22f2a1"
KONG_SERVICE_ID = "1e04610a-cf3a-46fa-9698-55a453e236ec"
KONG_SERVICE_HOST = "payments-api.payments.svc.cluster.local"
KONG_UPSTREAM_IPS = ("10.30.2.14", "10.30.2.15", "10.30.2.16")  # payments-api's pods
KONG_ROUTES = (
    KongRoute("payments", "51256da9-af96-4755-b18f-7c078f476343", "/v2/payments", traced=True),
    # added with the refunds API, and still without the OpenTelemetry plugin
    KongRoute("refunds", "d69035b3-7ca4-4d7b-8a41-1d85f2d55430", "/v2/refunds", traced=False),
)
API_CONSUMERS = (
    ApiConsumer(
        "northwind-marketplace",
        "P-1007",
        range(2, 120),
        "6ff75a15-cee2-4f5b-88db-d58ad522ebd5",
        "a0956568-3178-4fad-960d-8fd3f9b7474b",
    ),
    ApiConsumer(
        "bluefin-travel",
        "P-1031",
        range(120, 190),
        "e9c6b6f2-7788-4af9-b493-4fd7850b21b0",
        "d69625e5-63f4-47f4-9b1e-858eb30b082a",
    ),
    ApiConsumer(
        "kestrel-subscriptions",
        "P-1044",
        range(190, 230),
        "d249f3b7-4c19-4b86-83ff-e8b95784ca8f",
        "759e0969-16ae-41b7-8bbd-52b8b57bd36f",
    ),
    ApiConsumer(
        "tidewater-invoicing",
        "P-1052",
        range(230, 255),
        "22746267-d83d-4a41-9fab-fed892e318cb",
        "572d19da-ea1f-48e6-9722-8b3ac73c7537",
    ),
)
# kestrel's reconciliation job asks for payment statuses in bursts, while its plan allows one
# request a second: the rest of each burst is answered 429 by Kong's rate-limiting plugin.
NOISY_CONSUMER = "kestrel-subscriptions"
NOISY_BURST_P = 0.6  # of its status lookups, those that come with a burst
NOISY_BURST = (2, 8)  # rejected requests in a burst
# 401s from key-auth, one for every so many partner requests: a partner worker still holding a
# rotated key, or a scanner with none.
BAD_KEY_P = 0.05
SCANNERS = ("curl/8.5.0", "Go-http-client/1.1", "python-httpx/0.27.2")
KONG_BODY = {  # the upstream's response bodies, median bytes
    "POST /v2/payments": 640,
    "GET /v2/payments/{paymentId}": 560,
    "POST /v2/refunds": 420,
}

SHOP_EDGE = "shop-edge"
# One of the three storefront instances runs without the setting that returns the trace id in an
# X-Trace-Id response header (NGINX logs it as $upstream_http_x_trace_id): a third of the proxied
# lines carry no trace id.
SHOP_INSTANCES_WITH_TRACE_HEADER = (True, True, False)
SHOP_PAGES = {  # what each entry answers, median bytes, and whether a browser renders it as a page
    "GET /products/{sku}": (48_000, True),
    "GET /search": (61_000, True),
    "GET /cart": (22_000, True),
    "POST /cart/items": (310, False),
    "POST /checkout": (540, False),
    "GET /account/orders/{orderId}": (27_000, True),
    "GET /stores/{storeId}/availability/{sku}": (180, False),
    "POST /login": (120, False),
}
SHOP_ERROR_PAGE = 1_862  # the storefront's own 5xx page
SHOP_ASSETS = (  # a page's static files, served by NGINX from disk
    ("/static/css/shop.4f1c9a2e.css", 38_211),
    ("/static/js/shop.9b07d3c1.js", 182_544),
    ("/static/fonts/inter-var.4a7c.woff2", 98_112),
)
FIRST_VISIT_P = 0.3  # a page view that fetches the static files
REVALIDATE_P = 0.2  # one that asks whether the stylesheet and script changed (304)
SEARCH_TERMS = ("rain jacket", "trail shoes", "merino socks", "tent", "headlamp", "backpack 30l")
SHOP_REFERERS = ("https://www.shop.example/", "https://www.google.com/", "")


class _AccessLog:
    """A gateway's access log in the making: its lines, written in the order the gateway
    finished the requests, and the counts the manifest gives about them."""

    def __init__(self, collector: str, gateway: str, upstream: str) -> None:
        self.collector, self.gateway, self.upstream = collector, gateway, upstream
        self._lines: list[tuple[int, int, bytes]] = []
        self._consumers: dict[str, int] = {}
        self._anonymous = 0
        self._traced = 0
        self._answered: dict[str, int] = {}
        self._entries: dict[str, int] = {}
        self._entries_traced = 0
        self._leads: list[int] = []
        #: (caller, "METHOD /route") → lines, for the lines that name the route they asked for
        self.requests: Counter[tuple[str, str]] = Counter()

    def add(
        self,
        written: int,
        line: bytes,
        *,
        consumer: str | None,
        traced: bool,
        status: int,
        arrival: Arrival | None = None,
        logged_start: int = 0,
        operation: str | None = None,
    ) -> None:
        """One line, written at `written` (ns). A line with an `arrival` is that root span's
        request, proxied, and logged as starting at `logged_start`; any other was answered by
        the gateway itself. `operation` is the upstream's route the request asked for, if any
        (a static file is none)."""
        self._lines.append((written, len(self._lines), line))
        if operation is not None:
            self.requests[(consumer or "client", operation)] += 1
        if consumer is None:
            self._anonymous += 1
        else:
            self._consumers[consumer] = self._consumers.get(consumer, 0) + 1
        self._traced += traced
        if arrival is None:
            self._answered[str(status)] = self._answered.get(str(status), 0) + 1
            return
        caller = consumer or "client"
        self._entries[caller] = self._entries.get(caller, 0) + 1
        self._entries_traced += traced
        self._leads.append(arrival.start - logged_start)

    def write(self, path: pathlib.Path) -> None:
        """Writes the lines in the order they were written."""
        with open(path, "wb") as stream:
            stream.writelines(line for _, _, line in sorted(self._lines))

    def manifest(self, service: str) -> dict:
        """What the tests need to know about the log; `service` is the entry it fronts."""
        proxied = sum(self._entries.values())
        consumers = dict(sorted(self._consumers.items()))
        callers = [*consumers.items(), *((("client", self._anonymous),) if self._anonymous else ())]
        return {
            "collector": self.collector,
            "gateway": self.gateway,
            "upstream": self.upstream,
            "lines": len(self._lines),
            "with_trace_id": self._traced,
            "consumers": consumers,
            "without_consumer": self._anonymous,
            "answered_by_gateway": {
                "count": sum(self._answered.values()),
                "by_status": dict(sorted(self._answered.items())),
            },
            # consumer → gateway for every line ("client" where the log names no consumer), and
            # gateway → upstream for the lines that reached it
            "edges": [
                *({"client": c, "server": self.gateway, "count": n} for c, n in callers),
                {"client": self.gateway, "server": self.upstream, "count": proxied},
            ],
            # the root spans of `service` that came through this gateway: one line each
            "entry_requests": {
                "service": service,
                "count": proxied,
                "with_trace_id": self._entries_traced,
                "without_trace_id": proxied - self._entries_traced,
                "by_consumer": dict(sorted(self._entries.items())),
                # span start - the start the line gives: the gateway's time before proxying
                "start_lead_ns": {"min": min(self._leads), "max": max(self._leads)}
                if self._leads
                else None,
            },
        }


def _ms(ns: int) -> int:
    """Gateways keep time in whole milliseconds (NGINX's cached clock, Kong's ngx.now())."""
    return ns // MS


def _seconds_text(ms: int) -> str:
    """NGINX's seconds with milliseconds: 0.057."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def _proxy_times(
    rng: random.Random, arrival: Arrival, before_ms: tuple[float, float], after_ns: int
) -> tuple[int, int, int, int]:
    """When a gateway began reading the request, sent it upstream, had the whole response and
    finished sending it, around the root span: `before_ms` of its own work first (a range),
    `after_ns` after."""
    sent = arrival.start - int(rng.uniform(0.2, 0.8) * MS)
    began = sent - int(rng.uniform(*before_ms) * MS)
    answered = arrival.end + int(rng.uniform(0.2, 0.8) * MS)
    return began, sent, answered, answered + after_ns


def _cjson(record: dict) -> bytes:
    """`record` as lua-cjson encodes it for Kong's file-log: compact, and "/" escaped."""
    # "/" only ever occurs inside JSON strings, so escaping it everywhere is exact.
    return orjson.dumps(record).replace(b"/", b"\\/") + b"\n"


def _http_date(ns: int) -> str:
    return email.utils.formatdate(ns // 1_000_000_000, usegmt=True)


def _api_consumer(client: str) -> ApiConsumer:
    octet = int(client.rsplit(".", 1)[1])
    return next(c for c in API_CONSUMERS if octet in c.octets)


def _kong_route(path: str) -> KongRoute:
    return next(r for r in KONG_ROUTES if path.startswith(r.prefix))


class _KongLog:
    """Kong 3.8's file-log lines for the partner entries of payments-api, and the requests Kong
    answers itself; the JSON's shape is the file-log plugin's ("Log format" in Kong's docs)."""

    def __init__(self, rng: random.Random, start_ns: int, end_ns: int) -> None:
        self._rng = rng
        self._start_ns, self._end_ns = start_ns, end_ns
        self.log = _AccessLog("kong", API_GATEWAY, "payments-api")
        # Kong's configuration was last changed a fortnight before the window.
        created = start_ns // 1_000_000_000 - 86_400 * 60
        updated = start_ns // 1_000_000_000 - 86_400 * 14
        self._service = {
            "write_timeout": 60000,
            "read_timeout": 60000,
            "updated_at": updated,
            "host": KONG_SERVICE_HOST,
            "name": "payments-api",
            "id": KONG_SERVICE_ID,
            "port": 8080,
            "enabled": True,
            "created_at": created,
            "protocol": "http",
            "ws_id": KONG_WORKSPACE,
            "connect_timeout": 60000,
            "retries": 5,
        }
        self._routes = {
            route.name: {
                "updated_at": updated,
                "tags": [],
                "response_buffering": True,
                "path_handling": "v0",
                "protocols": ["https"],
                "service": {"id": KONG_SERVICE_ID},
                "https_redirect_status_code": 426,
                "regex_priority": 0,
                "name": route.name,
                "id": route.id,
                "strip_path": False,
                "preserve_host": False,
                "created_at": created,
                "request_buffering": True,
                "ws_id": KONG_WORKSPACE,
                "paths": [route.prefix],
            }
            for route in KONG_ROUTES
        }
        self._consumers = {
            c.username: {
                "id": c.id,
                "username": c.username,
                "custom_id": c.custom_id,
                "created_at": created,
                "updated_at": updated,
                "ws_id": KONG_WORKSPACE,
            }
            for c in API_CONSUMERS
        }

    def proxied(self, arrival: Arrival) -> None:
        """The line of one partner request Kong passed to payments-api, and the bursts and bad
        keys that come with the partners' traffic."""
        rng = self._rng
        consumer = _api_consumer(arrival.client)
        route = _kong_route(arrival.path)
        began, sent, answered, done = _proxy_times(
            rng, arrival, (1.0, 3.0), int(rng.uniform(0.1, 0.6) * MS)
        )
        request_ms = _ms(done) - _ms(began)
        proxy_ms = _ms(answered) - _ms(sent)
        request_id = f"{rng.getrandbits(128):032x}"
        headers = self._request_headers(arrival.method, arrival.user_agent)
        if route.traced:
            headers["traceparent"] = f"00-{arrival.trace_id}-{rng.getrandbits(64):016x}-01"
        median = KONG_BODY[arrival.entry.operation]
        body = 110 if arrival.status >= 500 else int(median * rng.uniform(0.9, 1.1))
        record = {
            "latencies": {
                "request": request_ms,
                "kong": request_ms - proxy_ms,
                "proxy": proxy_ms,
                "receive": 0,
            },
            "service": self._service,
            "request": self._request(request_id, arrival.method, arrival.path, headers),
            "client_ip": arrival.client,
            "tries": [
                {
                    "balancer_start": _ms(sent),
                    "balancer_start_ns": orjson.Fragment(format(float(sent), ".14g")),
                    "ip": rng.choice(KONG_UPSTREAM_IPS),
                    "port": 8080,
                    "balancer_latency": 0,
                    "balancer_latency_ns": rng.randrange(9_000, 60_000),
                }
            ],
            "response": self._response(
                arrival.status,
                done,
                request_id,
                body,
                {
                    "content-type": "application/json",
                    "connection": "keep-alive",
                    "via": f"1.1 kong/{KONG_VERSION}",
                    "x-kong-upstream-latency": str(proxy_ms),
                    "x-kong-proxy-latency": str(_ms(sent) - _ms(began)),
                },
            ),
            "route": self._routes[route.name],
            "started_at": _ms(began),
            "upstream_uri": arrival.path,
            "upstream_status": str(arrival.status),
            "source": "upstream",
            "workspace": KONG_WORKSPACE,
            "workspace_name": "default",
            "consumer": self._consumers[consumer.username],
            "authenticated_entity": {"id": consumer.credential_id, "consumer_id": consumer.id},
        }
        self.log.add(
            done,
            _cjson(record),
            consumer=consumer.username,
            traced=route.traced,
            status=arrival.status,
            arrival=arrival,
            logged_start=_ms(began) * MS,
            operation=arrival.entry.operation,
        )
        if (
            consumer.username == NOISY_CONSUMER
            and arrival.method == "GET"
            and rng.random() < NOISY_BURST_P
        ):
            self._burst(arrival, consumer, began)
        if rng.random() < BAD_KEY_P:
            self._bad_key(consumer)

    def _burst(self, arrival: Arrival, consumer: ApiConsumer, began: int) -> None:
        """The rest of a status-polling burst, in the second whose one allowed request was
        `arrival`'s: 429s from the rate-limiting plugin."""
        rng = self._rng
        second_ends = min((began // 1_000_000_000 + 1) * 1_000_000_000, self._end_ns)
        if second_ends - began < 5 * MS:
            return  # the next second would let one through: a request with a trace
        at = sorted(
            began + int(rng.uniform(1, (second_ends - began) / MS - 3) * MS)
            for _ in range(rng.randint(*NOISY_BURST))
        )
        for start in at:
            path = f"/v2/payments/{PARAMS['paymentId'](rng)}"
            self._answer(
                start,
                "GET",
                path,
                arrival.client,
                arrival.user_agent,
                429,
                consumer,
                "API rate limit exceeded",
                route="/v2/payments/{paymentId}",
            )

    def _bad_key(self, consumer: ApiConsumer) -> None:
        """A 401 at some time in the window: a partner worker with a rotated key (Kong names no
        consumer for a key it does not know), or a scanner without one."""
        rng = self._rng
        start = rng.randrange(self._start_ns, self._end_ns)
        if rng.random() < 0.5:
            client, agent = f"198.51.100.{rng.choice(consumer.octets)}", rng.choice(PARTNERS)
            self._answer(start, "POST", "/v2/payments", client, agent, 401, None, "Unauthorized")
        else:
            client, agent = f"192.0.2.{rng.randrange(2, 255)}", rng.choice(SCANNERS)
            message = "No API key found in request"
            self._answer(start, "GET", "/v2/payments", client, agent, 401, None, message)

    def _answer(
        self,
        start: int,
        method: str,
        path: str,
        client: str,
        user_agent: str,
        status: int,
        consumer: ApiConsumer | None,
        message: str,
        route: str | None = None,
    ) -> None:
        """A request Kong answers itself: no upstream, no trace (the OpenTelemetry plugin runs
        after key-auth and rate-limiting). `route` is the template of `path`, when not `path`."""
        rng = self._rng
        done = start + int(rng.uniform(0.3, 1.8) * MS)
        request_id = f"{rng.getrandbits(128):032x}"
        headers = self._request_headers(method, user_agent)
        latency = _ms(done) - _ms(start)
        extra = {
            "content-type": "application/json; charset=utf-8",
            "server": f"kong/{KONG_VERSION}",
        }
        if status == 401:
            extra["www-authenticate"] = 'Key realm="kong"'
        else:
            extra |= {
                "ratelimit-limit": "1",
                "ratelimit-remaining": "0",
                "ratelimit-reset": "1",
                "retry-after": "1",
                "x-ratelimit-limit-second": "1",
                "x-ratelimit-remaining-second": "0",
            }
        extra["x-kong-response-latency"] = str(latency)
        body = orjson.dumps({"message": message})
        record = {
            "latencies": {"request": latency, "kong": latency, "proxy": -1, "receive": 0},
            "service": self._service,
            "request": self._request(request_id, method, path, headers),
            "client_ip": client,
            "response": self._response(status, done, request_id, len(body), extra),
            "route": self._routes[_kong_route(path).name],
            "started_at": _ms(start),
            "source": "kong",
            "workspace": KONG_WORKSPACE,
            "workspace_name": "default",
        }
        if consumer is not None:
            record["consumer"] = self._consumers[consumer.username]
            record["authenticated_entity"] = {
                "id": consumer.credential_id,
                "consumer_id": consumer.id,
            }
        self.log.add(
            done,
            _cjson(record),
            consumer=consumer.username if consumer else None,
            traced=False,
            status=status,
            operation=f"{method} {route or path}",
        )

    def _request_headers(self, method: str, user_agent: str) -> dict[str, str]:
        # key-auth's hide_credentials takes the apikey header out before anything logs it
        headers = {"host": API, "user-agent": user_agent, "accept": "application/json"}
        if method == "POST":
            body = self._rng.randrange(180, 420)
            headers |= {
                "content-type": "application/json",
                "content-length": str(body),
                "idempotency-key": f"{self._rng.getrandbits(128):032x}",
            }
        return headers

    def _request(self, request_id: str, method: str, path: str, headers: dict) -> dict:
        size = sum(len(k) + len(v) + 4 for k, v in headers.items()) + len(path) + 40
        size += int(headers.get("content-length", 0))
        return {
            "id": request_id,
            "headers": headers,
            "uri": path,
            "size": size,
            "method": method,
            "querystring": {},
            "url": f"https://{API}:8443{path}",
            "tls": {
                "version": "TLSv1.3",
                "cipher": "TLS_AES_256_GCM_SHA384",
                "client_verify": "NONE",
            },
        }

    def _response(
        self, status: int, done: int, request_id: str, body: int, headers: dict[str, str]
    ) -> dict:
        headers = {
            **headers,
            "content-length": str(body),
            "date": _http_date(done),
            "x-kong-request-id": request_id,
        }
        size = sum(len(k) + len(v) + 4 for k, v in headers.items()) + 17 + body
        return {"headers": headers, "status": status, "size": size}


class _NginxLog:
    """The web shop's NGINX access log, in the JSON its log_format writes (escape=json):

        log_format shop escape=json '{"msec":"$msec","remote_addr":"$remote_addr",'
            '"remote_user":"$remote_user","request":"$request","status":"$status",'
            '"body_bytes_sent":"$body_bytes_sent","request_length":"$request_length",'
            '"request_time":"$request_time","upstream":"$proxy_host",'
            '"upstream_response_time":"$upstream_response_time",'
            '"upstream_status":"$upstream_status","http_referer":"$http_referer",'
            '"http_user_agent":"$http_user_agent","http_x_forwarded_for":"$http_x_forwarded_for",'
            '"host":"$host","trace_id":"$upstream_http_x_trace_id"}';

    `$proxy_host` is the upstream group `proxy_pass http://storefront-web` names; with
    escape=json a variable without a value is written as "" (static files have no upstream).
    """

    def __init__(self, rng: random.Random, end_ns: int) -> None:
        self._rng = rng
        self._end_ns = end_ns
        self.log = _AccessLog("nginx", SHOP_EDGE, "storefront-web")

    def proxied(self, arrival: Arrival) -> None:
        """The line of one web shop request NGINX passed to storefront-web, and the static
        files its page then loads."""
        rng = self._rng
        op_key = arrival.entry.operation
        median, page = SHOP_PAGES[op_key]
        body = SHOP_ERROR_PAGE if arrival.status >= 500 else int(median * rng.uniform(0.8, 1.2))
        # request_time runs until the last byte went to the browser: a page takes a while
        sending = int(rng.uniform(0.1, 0.5) * MS + body / rng.uniform(2e6, 2.5e7) * 1e9)
        began, sent, answered, done = _proxy_times(rng, arrival, (0.3, 2.0), sending)
        target = arrival.path
        if op_key == "GET /search":
            target += "?q=" + rng.choice(SEARCH_TERMS).replace(" ", "+")
        traced = rng.choice(SHOP_INSTANCES_WITH_TRACE_HEADER)
        length = rng.randrange(420, 980) + (
            rng.randrange(60, 900) if arrival.method == "POST" else 0
        )
        referer = rng.choice(SHOP_REFERERS) if page else "https://www.shop.example/cart"
        record = self._record(
            done,
            arrival.client,
            f"{arrival.method} {target} HTTP/2.0",
            arrival.status,
            body,
            length,
            _ms(done) - _ms(began),
            referer,
            arrival.user_agent,
            upstream=(_ms(answered) - _ms(sent), arrival.trace_id if traced else ""),
        )
        self.log.add(
            done,
            record,
            consumer=None,
            traced=traced,
            status=arrival.status,
            arrival=arrival,
            logged_start=_ms(began) * MS,  # $msec - $request_time, as a reader finds it
            operation=op_key,
        )
        if page and arrival.status < 500:
            self._assets(arrival, done, f"https://{SHOP}{target}")

    def _assets(self, arrival: Arrival, page_done: int, page_url: str) -> None:
        """The static files a browser fetches for a page it just received, if any."""
        rng = self._rng
        draw = rng.random()
        if draw < FIRST_VISIT_P:
            assets = [(path, size, 200) for path, size in SHOP_ASSETS]
            if "sku" in arrival.params and arrival.entry.operation == "GET /products/{sku}":
                image = f"/static/img/products/{arrival.params['sku']}.webp"
                assets.append((image, rng.randrange(18_000, 64_000), 200))
        elif draw < FIRST_VISIT_P + REVALIDATE_P:
            assets = [(path, 0, 304) for path, _ in SHOP_ASSETS[:2]]
        else:
            return
        start = page_done + int(rng.uniform(15, 250) * MS)
        for path, size, status in assets:
            start += int(rng.uniform(0.1, 3.0) * MS)  # one HTTP/2 connection, one after another
            if start >= self._end_ns:
                return
            done = start + int(rng.uniform(0.05, 0.4) * MS + size / rng.uniform(2e6, 2.5e7) * 1e9)
            line = self._record(
                done,
                arrival.client,
                f"GET {path} HTTP/2.0",
                status,
                size,
                rng.randrange(380, 620),
                _ms(done) - _ms(start),
                page_url,
                arrival.user_agent,
            )
            self.log.add(done, line, consumer=None, traced=False, status=status)

    def _record(
        self,
        done: int,
        client: str,
        request: str,
        status: int,
        body: int,
        length: int,
        request_ms: int,
        referer: str,
        user_agent: str,
        upstream: tuple[int, str] | None = None,
    ) -> bytes:
        """One line; `upstream` is (its response time in ms, the trace id it returned) for a
        proxied request."""
        upstream_ms, trace_id = upstream if upstream is not None else (None, "")
        record = {
            "msec": _seconds_text(_ms(done)),
            "remote_addr": client,
            "remote_user": "",
            "request": request,
            "status": str(status),
            "body_bytes_sent": str(body),
            "request_length": str(length),
            "request_time": _seconds_text(request_ms),
            "upstream": "storefront-web" if upstream is not None else "",
            "upstream_response_time": _seconds_text(upstream_ms) if upstream_ms is not None else "",
            "upstream_status": str(status) if upstream is not None else "",
            "http_referer": referer,
            "http_user_agent": user_agent,
            "http_x_forwarded_for": "",
            "host": SHOP,
            "trace_id": trace_id,
        }
        return orjson.dumps(record) + b"\n"


def _gateway_logs(
    arrivals: Sequence[Arrival], seed: int, start_ns: int, end_ns: int
) -> dict[str, tuple[_AccessLog, str]]:
    """The gateways' logs of `arrivals`, by file name, each with the entry service it fronts."""
    # A stream of its own, so that the traces are the same with or without the logs.
    rng = random.Random(f"{seed}:gateways")
    kong, nginx = _KongLog(rng, start_ns, end_ns), _NginxLog(rng, end_ns)
    for arrival in arrivals:
        if arrival.entry.host == API:
            kong.proxied(arrival)
        elif arrival.entry.host == SHOP:
            nginx.proxied(arrival)
    return {KONG_LOG: (kong.log, "payments-api"), NGINX_LOG: (nginx.log, "storefront-web")}


# --- what the owners declare: contracts and a catalog -------------------------------------------


def _sibling(name: str) -> ModuleType:
    """A module of this folder, loaded by path as this one is."""
    path = pathlib.Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"clew_sample_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: missing beside the generator")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_calls() -> list[tuple[str, str, str, str]]:
    """What the table lets each service do: (service, http | db | external | receive, target,
    operation)."""
    found = []
    for name, service in SERVICES.items():
        for operation in service.operations.values():
            for call in operation.calls:
                if isinstance(call, Http):
                    found.append((name, "http", call.service, call.operation))
                elif isinstance(call, Db):
                    found.append((name, "db", call.server, call.operation))
                elif isinstance(call, External):
                    found.append((name, "external", call.host, call.operation))
                elif isinstance(call, Publish):
                    found.extend((c, "receive", call.topic, "") for c in call.consumers)
    return found


def _traffic(
    served: Counter, arrivals: Sequence[Arrival], logs: dict[str, tuple[_AccessLog, str]]
) -> Counter:
    """The requests into each node as Clew sees them: (caller, server, operation) → count.

    A service's own callers from the walk; an entry request from the gateway that logged it,
    else from `client`; and each gateway line from its consumer (`client` when none is named).
    """
    traffic = Counter({key: n for key, n in served.items() if key[0] is not None})
    behind = {API: API_GATEWAY, SHOP: SHOP_EDGE}  # as _gateway_logs sorts the arrivals
    for arrival in arrivals:
        caller = behind.get(arrival.entry.host, "client")
        traffic[(caller, arrival.entry.service, arrival.entry.operation)] += 1
    for log, _ in logs.values():
        for (caller, operation), n in log.requests.items():
            traffic[(caller, log.gateway, operation)] += n
    return traffic


# --- the entry point ------------------------------------------------------------------------


def _planted(incident_since: int) -> dict:
    """The manifest's description of the landscape, read from the table."""
    calls = [
        (name, call)
        for name, service in SERVICES.items()
        for operation in service.operations.values()
        for call in operation.calls
    ]
    publishes = [(name, call) for name, call in calls if isinstance(call, Publish)]
    producer, publish = publishes[0]
    return {
        "entry_services": sorted({entry.service for entry in ENTRIES}),
        "failing_edge": {
            "client": INCIDENT.client,
            "server": INCIDENT.server,
            "since_ns": incident_since,
        },
        "slow_edge": {"client": SLOW_EDGE[0], "server": SLOW_EDGE[1]},
        "cycle": list(CYCLE),
        "databases": sorted({call.server for _, call in calls if isinstance(call, Db)}),
        "externals": sorted({call.host for _, call in calls if isinstance(call, External)}),
        "broker": {
            "system": "kafka",
            "topic": publish.topic,
            "producer": producer,
            "consumers": sorted(publish.consumers),
        },
    }


def generate(
    out_dir: pathlib.Path,
    *,
    seed: int = DEFAULT_SEED,
    end_ns: int | None = None,
    hours: float = 3.0,
    traces: int = 4000,
) -> dict:
    """Writes out_dir/traces.otlp.jsonl, the gateways' access logs of the same requests
    (kong-access.log, nginx-access.log), the contracts and the catalog (contracts/, catalog/)
    and out_dir/manifest.json; returns the manifest.

    Traces start in [end_ns - hours, end_ns); `end_ns` defaults to now, floored to the minute.
    The same (seed, end_ns, hours, traces) always gives byte-identical files.
    """
    if hours <= 0 or traces < 0:
        raise ValueError(f"need hours > 0 and traces >= 0, got hours={hours}, traces={traces}")
    if end_ns is None:
        end_ns = time.time_ns() // MINUTE_NS * MINUTE_NS
    start_ns = end_ns - round(hours * 60 * MINUTE_NS)
    incident_since = max(start_ns, end_ns - INCIDENT.minutes * MINUTE_NS)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Separate streams, so that adding a service to the table does not reshuffle the traffic.
    traffic = random.Random(f"{seed}:traffic")
    behaviour = random.Random(f"{seed}:behaviour")
    # The ids also depend on the end time, so two loads at different times never share a trace id.
    ids = SeededIdGenerator(random.Random(seed ^ end_ns))

    with open(out_dir / TRACES_FILE, "wb") as stream:
        exporters, providers = {}, {}
        for name in sorted(SERVICES):
            exporters[name] = OtlpJsonLinesExporter(stream)
            providers[name] = TracerProvider(
                sampler=ALWAYS_ON,
                resource=_resource(name, SERVICES[name]),
                id_generator=ids,
                shutdown_on_exit=False,
            )
            providers[name].add_span_processor(SimpleSpanProcessor(exporters[name]))
        walker = _Walker(providers, behaviour, incident_since)
        weights = list(itertools.accumulate(entry.weight for entry in ENTRIES))
        arrivals = [
            walker.play(traffic.choices(ENTRIES, cum_weights=weights)[0], start)
            for start in _trace_starts(traffic, start_ns, end_ns, traces)
        ]
        for name in sorted(providers):  # flush the last partial batches in a fixed order
            providers[name].shutdown()

    gateway_logs = {}
    logs = _gateway_logs(arrivals, seed, start_ns, end_ns)
    for file_name, (log, service) in logs.items():
        log.write(out_dir / file_name)
        gateway_logs[file_name] = log.manifest(service)
    planted = _planted(incident_since)
    declared = _sibling("declarations").write(
        out_dir,
        areas={name: service.area for name, service in SERVICES.items()},
        frameworks={name: service.framework for name, service in SERVICES.items()},
        calls=_table_calls(),
        traffic=_traffic(walker.served, arrivals, logs),
        gateways={log.gateway: log.upstream for log, _ in logs.values()},
        topic=planted["broker"]["topic"],
        partitions=KAFKA_PARTITIONS,
        end_date=time.strftime("%Y-%m-%d", time.gmtime(end_ns // 1_000_000_000)),
    )

    manifest = {
        "seed": seed,
        "end_ns": end_ns,
        "start_ns": start_ns,
        "traces": traces,
        "spans": sum(exporter.spans_written for exporter in exporters.values()),
        "services": sorted(name for name, exporter in exporters.items() if exporter.spans_written),
        **planted,
        "gateway_logs": gateway_logs,
        **declared,
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: generate the landscape into OUT_DIR and print a one-line summary."""
    parser = argparse.ArgumentParser(
        description="Generate Clew's sample landscape: OTLP/JSON traces, gateway access logs,"
        " contracts and a Backstage catalog."
    )
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--traces", type=int, default=4000)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument(
        "--end-ns",
        type=int,
        default=None,
        help="end of the window, ns since the epoch (default: now, to the minute)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    manifest = generate(
        args.out_dir, seed=args.seed, end_ns=args.end_ns, hours=args.hours, traces=args.traces
    )
    logs = ", ".join(f"{log['lines']} in {name}" for name, log in manifest["gateway_logs"].items())
    print(
        f"{manifest['traces']} traces, {manifest['spans']} spans from "
        f"{len(manifest['services'])} services written to {args.out_dir / TRACES_FILE}, "
        f"gateway lines: {logs}; {len(manifest['contracts']['files'])} contracts and"
        f" {manifest['catalog']['entities']} catalog entities;"
        f" in {time.perf_counter() - began:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
