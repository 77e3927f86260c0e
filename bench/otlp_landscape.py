"""A seeded, generated landscape of OTLP/JSON spans for the ingest benchmarks.

Twenty services (HTTP, gRPC, Kafka; three still on the older semantic conventions) call each other,
PostgreSQL, Redis, MongoDB and two external APIs. Traces hold 5 to 30 spans, about 3 % end in an
error and 2 % in a client error, and they start over three hours. The files are written in the
OpenTelemetry Collector file exporter's layout: one ``ExportTraceServiceRequest`` per line (500 to
1,000 spans, grouped by resource and instrumentation scope), a file per tenth of the time.

Plain dicts and orjson, not the OpenTelemetry SDK: a million spans take seconds, not minutes.
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

#: 2026-01-15 09:00:00 UTC.
BASE_NS = 1_768_467_600_000_000_000
SPAN_OF_TIME_NS = 3 * 3600 * 1_000_000_000
_MS = 1_000_000

SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER = 2, 3, 1, 4, 5

# name: (language, semantic-convention generation, version)
SERVICES = {
    "api-gateway": ("go", "current", "2.14.1"),
    "web-frontend": ("nodejs", "current", "5.2.0"),
    "mobile-bff": ("nodejs", "current", "1.9.3"),
    "auth-service": ("java", "current", "3.1.0"),
    "user-service": ("java", "current", "4.0.2"),
    "catalog-service": ("java", "current", "7.3.1"),
    "search-service": ("python", "current", "1.12.0"),
    "inventory-service": ("go", "current", "0.9.8"),
    "pricing-service": ("python", "current", "2.2.0"),
    "cart-service": ("dotnet", "current", "1.4.5"),
    "checkout-service": ("java", "current", "6.0.0"),
    "payment-service": ("java", "current", "3.8.2"),
    "order-service": ("java", "current", "5.5.1"),
    "shipping-service": ("go", "current", "1.1.0"),
    "notification-service": ("python", "current", "2.0.4"),
    "recommendation-service": ("python", "current", "0.4.1"),
    "fraud-service": ("go", "current", "1.7.0"),
    "ledger-service": ("java", "legacy", "11.2.0"),
    "audit-worker": ("java", "legacy", "2.3.3"),
    "email-worker": ("python", "legacy", "1.0.9"),
}

# Instrumentation scope by language and what the span is.
SCOPES = {
    "go": {
        "server": "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        "client": "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        "rpc": "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc",
        "db": "github.com/XSAM/otelsql",
        "messaging": "github.com/IBM/sarama/otelsarama",
        "internal": "app",
    },
    "java": {
        "server": "io.opentelemetry.tomcat-10.0",
        "client": "io.opentelemetry.java-http-client",
        "rpc": "io.opentelemetry.grpc-1.6",
        "db": "io.opentelemetry.jdbc",
        "messaging": "io.opentelemetry.kafka-clients-2.6",
        "internal": "app",
    },
    "python": {
        "server": "opentelemetry.instrumentation.flask",
        "client": "opentelemetry.instrumentation.requests",
        "rpc": "opentelemetry.instrumentation.grpc",
        "db": "opentelemetry.instrumentation.psycopg",
        "messaging": "opentelemetry.instrumentation.confluent_kafka",
        "internal": "app",
    },
    "nodejs": {
        "server": "@opentelemetry/instrumentation-http",
        "client": "@opentelemetry/instrumentation-undici",
        "rpc": "@opentelemetry/instrumentation-grpc",
        "db": "@opentelemetry/instrumentation-pg",
        "messaging": "@opentelemetry/instrumentation-kafkajs",
        "internal": "app",
    },
    "dotnet": {
        "server": "Microsoft.AspNetCore",
        "client": "System.Net.Http",
        "rpc": "Grpc.Net.Client",
        "db": "OpenTelemetry.Instrumentation.SqlClient",
        "messaging": "Confluent.Kafka",
        "internal": "app",
    },
}

# Calls an operation makes, each with the chance it is made:
#   ("http", service, "METHOD /route", p)  ("grpc", service, "pkg.Service/Method", p)
#   ("db", system, namespace, statement, p)  ("produce", topic, p)
#   ("external", host, "METHOD /path", p)  ("internal", name, p)
_SELECT = "SELECT id, name, price, updated_at FROM {} WHERE id = $1"
OPERATIONS: dict[str, dict[str, list[tuple]]] = {
    "api-gateway": {
        "GET /api/products/{id}": [
            ("http", "auth-service", "POST /v1/tokens/verify", 0.9),
            ("http", "catalog-service", "GET /products/{id}", 1.0),
            ("grpc", "recommendation-service", "recs.Recommender/ForProduct", 0.6),
        ],
        "POST /api/orders": [
            ("http", "auth-service", "POST /v1/tokens/verify", 1.0),
            ("http", "checkout-service", "POST /checkout", 1.0),
        ],
        "GET /api/search": [("http", "search-service", "GET /search", 1.0)],
        "GET /api/orders/{id}": [
            ("http", "auth-service", "POST /v1/tokens/verify", 1.0),
            ("http", "order-service", "GET /orders/{id}", 1.0),
        ],
        "GET /api/users/{id}": [
            ("http", "auth-service", "POST /v1/tokens/verify", 1.0),
            ("http", "user-service", "GET /users/{id}", 1.0),
        ],
    },
    "web-frontend": {
        "GET /": [
            ("http", "catalog-service", "GET /products", 1.0),
            ("grpc", "recommendation-service", "recs.Recommender/Home", 0.8),
            ("db", "redis", "0", "GET session:{id}", 0.9),
        ],
        "GET /cart": [
            ("http", "cart-service", "GET /carts/{id}", 1.0),
            ("http", "pricing-service", "POST /quotes", 0.8),
        ],
        "POST /cart/items": [("http", "cart-service", "POST /carts/{id}/items", 1.0)],
        "GET /product/{slug}": [
            ("http", "catalog-service", "GET /products/{id}", 1.0),
            ("http", "inventory-service", "GET /stock/{sku}", 0.9),
        ],
    },
    "mobile-bff": {
        "GET /m/home": [
            ("http", "user-service", "GET /users/{id}", 0.9),
            ("grpc", "recommendation-service", "recs.Recommender/Home", 1.0),
            ("http", "catalog-service", "GET /products", 0.7),
        ],
        "POST /m/checkout": [("http", "checkout-service", "POST /checkout", 1.0)],
    },
    "auth-service": {
        "POST /v1/tokens/verify": [
            ("db", "redis", "1", "GET token:{id}", 1.0),
            ("db", "postgresql", "auth", _SELECT.format("accounts"), 0.2),
        ],
    },
    "user-service": {
        "GET /users/{id}": [
            ("db", "postgresql", "users", _SELECT.format("users"), 1.0),
            ("db", "redis", "2", "HGETALL prefs:{id}", 0.5),
        ],
    },
    "catalog-service": {
        "GET /products": [
            (
                "db",
                "postgresql",
                "catalog",
                "SELECT id, name, price FROM products ORDER BY rank LIMIT $1",
                1.0,
            ),
            ("http", "pricing-service", "POST /quotes", 0.6),
        ],
        "GET /products/{id}": [
            ("db", "postgresql", "catalog", _SELECT.format("products"), 1.0),
            ("http", "inventory-service", "GET /stock/{sku}", 0.7),
            ("http", "pricing-service", "POST /quotes", 0.7),
        ],
    },
    "search-service": {
        "GET /search": [
            ("db", "elasticsearch", "products", "POST /products/_search", 1.0),
            ("http", "catalog-service", "GET /products", 0.4),
        ],
    },
    "inventory-service": {
        "GET /stock/{sku}": [("db", "postgresql", "inventory", _SELECT.format("stock"), 1.0)],
        "POST /reservations": [
            (
                "db",
                "postgresql",
                "inventory",
                "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2",
                1.0,
            ),
            ("produce", "inventory.reserved", 0.5),
        ],
    },
    "pricing-service": {
        "POST /quotes": [
            ("db", "redis", "3", "MGET price:{id}", 1.0),
            ("internal", "apply_promotions", 0.6),
        ],
    },
    "cart-service": {
        "GET /carts/{id}": [("db", "mongodb", "carts", "find carts", 1.0)],
        "POST /carts/{id}/items": [
            ("db", "mongodb", "carts", "update carts", 1.0),
            ("http", "inventory-service", "GET /stock/{sku}", 0.8),
        ],
    },
    "checkout-service": {
        "POST /checkout": [
            ("http", "cart-service", "GET /carts/{id}", 1.0),
            ("http", "pricing-service", "POST /quotes", 0.5),
            ("grpc", "fraud-service", "fraud.Scorer/Score", 0.7),
            ("http", "payment-service", "POST /payments", 1.0),
            ("http", "inventory-service", "POST /reservations", 1.0),
            ("http", "order-service", "POST /orders", 1.0),
        ],
    },
    "payment-service": {
        "POST /payments": [
            (
                "db",
                "postgresql",
                "payments",
                "INSERT INTO payments (order_id, amount) VALUES ($1, $2)",
                1.0,
            ),
            ("external", "api.stripe.com", "POST /v1/payment_intents", 1.0),
            ("http", "ledger-service", "POST /ledger/entries", 0.9),
        ],
    },
    "order-service": {
        "POST /orders": [
            (
                "db",
                "postgresql",
                "orders",
                "INSERT INTO orders (customer_id, total) VALUES ($1, $2)",
                1.0,
            ),
            ("produce", "orders.created", 1.0),
        ],
        "GET /orders/{id}": [("db", "postgresql", "orders", _SELECT.format("orders"), 1.0)],
    },
    "shipping-service": {
        "process orders.created": [
            ("external", "api.shippo.com", "POST /shipments", 0.8),
            ("db", "postgresql", "shipping", "INSERT INTO shipments (order_id) VALUES ($1)", 1.0),
        ],
    },
    "notification-service": {
        "process orders.created": [
            ("db", "postgresql", "notify", _SELECT.format("templates"), 1.0),
            ("produce", "email.requested", 1.0),
        ],
    },
    "recommendation-service": {
        "recs.Recommender/Home": [
            ("db", "redis", "4", "ZREVRANGE recs:home 0 20", 1.0),
            ("internal", "rank_candidates", 0.7),
        ],
        "recs.Recommender/ForProduct": [
            ("db", "redis", "4", "ZREVRANGE recs:{id} 0 10", 1.0),
            ("http", "catalog-service", "GET /products", 0.3),
        ],
    },
    "fraud-service": {
        "fraud.Scorer/Score": [
            ("db", "postgresql", "fraud", _SELECT.format("signals"), 1.0),
            ("internal", "score_model", 1.0),
        ],
    },
    "ledger-service": {
        "POST /ledger/entries": [
            (
                "db",
                "postgresql",
                "ledger",
                "INSERT INTO entries (account, amount) VALUES (?, ?)",
                1.0,
            )
        ],
    },
    "audit-worker": {
        "process orders.created": [
            ("db", "postgresql", "audit", "INSERT INTO audit_log (event) VALUES (?)", 1.0)
        ],
        "process inventory.reserved": [
            ("db", "postgresql", "audit", "INSERT INTO audit_log (event) VALUES (?)", 1.0)
        ],
    },
    "email-worker": {
        "process email.requested": [("external", "api.sendgrid.com", "POST /v3/mail/send", 1.0)],
    },
}
TOPICS = {
    "orders.created": ["shipping-service", "notification-service", "audit-worker"],
    "inventory.reserved": ["audit-worker"],
    "email.requested": ["email-worker"],
}
ENTRIES = [("api-gateway", 0.45), ("web-frontend", 0.35), ("mobile-bff", 0.2)]
CHECKOUTS = [("api-gateway", "POST /api/orders"), ("mobile-bff", "POST /m/checkout")]
DB_HOSTS = {
    "postgresql": "pg-{}.db.internal",
    "redis": "redis-cache.internal",
    "mongodb": "mongo-0.mongo.internal",
    "elasticsearch": "es.search.internal",
}
DB_LATENCY_MS = {"postgresql": 2.0, "redis": 0.4, "mongodb": 1.5, "elasticsearch": 12.0}
DB_ERRORS = {
    "postgresql": "deadlock detected",
    "redis": "READONLY You can't write against a replica",
    "mongodb": "connection pool paused",
    "elasticsearch": "search_phase_execution_exception",
}
_CACHE_ONLY = {"api-gateway", "web-frontend", "mobile-bff", "auth-service", "pricing-service"}
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "okhttp/4.12.0",
    "Shop/7.4.1 (iPhone; iOS 18.1)",
    "curl/8.5.0",
]


class _Node:
    """One span of a trace being built; times are filled in once the tree is complete."""

    __slots__ = (
        "async_child",
        "attrs",
        "children",
        "end",
        "error",
        "kind",
        "link",
        "name",
        "own_ms",
        "parent",
        "service",
        "span_id",
        "start",
        "status_message",
    )

    def __init__(self, service: str, kind: int, name: str, attrs: dict, own_ms: float) -> None:
        self.service, self.kind, self.name, self.attrs, self.own_ms = (
            service,
            kind,
            name,
            attrs,
            own_ms,
        )
        self.children: list[_Node] = []
        self.parent: _Node | None = None
        self.error = False
        self.status_message: str | None = None
        self.link = False
        self.async_child = False  # a consumer: starts after its producer, outside its time


def _host(service: str) -> str:
    return f"{service}.shop.svc.cluster.local"


class _TraceBuilder:
    """Builds one trace of exactly ``size`` spans by following calls from an entry operation."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.budget = size
        self.nodes: list[_Node] = []  # in creation (pre-)order: parents before children

    def add(self, parent: _Node | None, node: _Node) -> _Node | None:
        if self.budget <= 0:
            return None
        self.budget -= 1
        node.parent = parent
        if parent is not None:
            parent.children.append(node)
        self.nodes.append(node)
        return node

    def legacy(self, service: str) -> bool:
        return SERVICES[service][1] == "legacy"

    def serve(self, parent: _Node | None, service: str, operation: str) -> None:
        rng = self.rng
        if operation.startswith("process "):
            topic = operation.removeprefix("process ")
            attrs = {
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.operation.type": "process",
                "messaging.kafka.consumer.group": service,
                "messaging.kafka.message.offset": rng.randrange(1 << 30),
            }
            if self.legacy(service):
                attrs = {
                    "messaging.system": "kafka",
                    "messaging.destination": topic,
                    "messaging.operation": "process",
                    "messaging.kafka.consumer.group": service,
                }
            node = _Node(service, CONSUMER, operation, attrs, rng.uniform(0.5, 4))
            node.async_child = True
            node.link = self.legacy(service)  # older Kafka instrumentation links, too
        elif "/" in operation and " " not in operation:  # gRPC
            rpc_service, method = operation.split("/")
            attrs = {
                "rpc.system": "grpc",
                "rpc.service": rpc_service,
                "rpc.method": method,
                "rpc.grpc.status_code": 0,
                "server.address": _host(service),
                "server.port": 50051,
                "network.peer.address": f"10.2.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            }
            node = _Node(service, SERVER, operation, attrs, rng.uniform(0.3, 3))
        else:
            method, route = operation.split(" ", 1)
            path = (
                route.replace("{id}", str(rng.randrange(1, 100_000)))
                .replace("{slug}", f"item-{rng.randrange(5000)}")
                .replace("{sku}", f"SKU-{rng.randrange(9999)}")
            )
            if self.legacy(service):
                attrs = {
                    "http.method": method,
                    "http.route": route,
                    "http.target": path,
                    "http.scheme": "http",
                    "http.status_code": 200,
                    "net.host.name": _host(service),
                    "net.host.port": 8080,
                    "net.peer.name": "10.1.0.7",
                    "http.user_agent": "Apache-HttpClient/4.5.14 (Java/17.0.9)",
                }
            else:
                attrs = {
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": path,
                    "url.scheme": "https" if parent is None else "http",
                    "http.response.status_code": 200,
                    "server.address": _host(service),
                    "server.port": 443 if parent is None else 8080,
                    "network.protocol.version": "1.1",
                    "client.address": f"10.1.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    "user_agent.original": rng.choice(USER_AGENTS)
                    if parent is None
                    else "otel-http-client",
                }
            node = _Node(service, SERVER, f"{method} {route}", attrs, rng.uniform(0.2, 3))
        if self.add(parent, node) is None:
            return
        for call in OPERATIONS[service][operation]:
            if self.budget <= 0:
                return
            if rng.random() < call[-1]:
                self.call(node, service, call)

    def call(self, parent: _Node, service: str, call: tuple) -> None:
        rng = self.rng
        what = call[0]
        legacy = self.legacy(service)
        if what in ("http", "grpc") and self.budget < 2:
            return  # a client span without its server span would read as an uninstrumented peer
        if what in ("http", "external"):
            target, operation = call[1], call[2]
            method, route = operation.split(" ", 1)
            host = target if what == "external" else _host(target)
            path = route.replace("{id}", str(rng.randrange(1, 100_000))).replace(
                "{sku}", f"SKU-{rng.randrange(9999)}"
            )
            if legacy:
                attrs = {
                    "http.method": method,
                    "http.url": f"http://{host}:8080{path}",
                    "http.status_code": 200,
                    "net.peer.name": host,
                    "net.peer.port": 8080,
                }
            else:
                attrs = {
                    "http.request.method": method,
                    "url.full": f"https://{host}{path}",
                    "http.response.status_code": 200,
                    "server.address": host,
                    "server.port": 443 if what == "external" else 8080,
                    "network.protocol.version": "1.1",
                }
            node = _Node(service, CLIENT, method, attrs, rng.uniform(0.3, 2))
            if what == "external":
                node.own_ms = rng.lognormvariate(4.3, 0.5)  # ~75 ms, long tail
            if self.add(parent, node) is not None and what == "http":
                self.serve(node, target, operation)
        elif what == "grpc":
            target, operation = call[1], call[2]
            rpc_service, method = operation.split("/")
            attrs = {
                "rpc.system": "grpc",
                "rpc.service": rpc_service,
                "rpc.method": method,
                "rpc.grpc.status_code": 0,
                "server.address": _host(target),
                "server.port": 50051,
            }
            node = _Node(service, CLIENT, operation, attrs, rng.uniform(0.2, 1.5))
            if self.add(parent, node) is not None:
                self.serve(node, target, operation)
        elif what == "db":
            self.add(parent, self.db_span(service, call[1], call[2], call[3]))
        elif what == "produce":
            topic = call[1]
            if legacy:
                attrs = {
                    "messaging.system": "kafka",
                    "messaging.destination": topic,
                    "messaging.operation": "publish",
                }
            else:
                attrs = {
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.operation.type": "send",
                    "messaging.kafka.message.key": str(rng.randrange(1, 100_000)),
                    "server.address": "kafka-0.kafka.internal",
                    "server.port": 9092,
                }
            node = _Node(service, PRODUCER, f"send {topic}", attrs, rng.uniform(0.5, 3))
            if self.add(parent, node) is not None:
                for consumer in TOPICS[topic]:
                    if self.budget <= 0:
                        break
                    self.serve(node, consumer, f"process {topic}")
        else:
            node = _Node(
                service,
                INTERNAL,
                call[1],
                {"code.function.name": call[1], "thread.name": "worker-1"},
                rng.uniform(0.1, 4),
            )
            self.add(parent, node)

    def db_span(self, service: str, system: str, namespace: str, statement: str) -> _Node:
        rng = self.rng
        operation = statement.split(" ", 1)[0]
        host = DB_HOSTS[system].format(namespace)
        if self.legacy(service):
            attrs = {
                "db.system": system,
                "db.name": namespace,
                "db.operation": operation,
                "db.statement": statement,
                "net.peer.name": host,
                "net.peer.port": 5432,
            }
        else:
            attrs = {
                "db.system.name": system,
                "db.namespace": namespace,
                "db.operation.name": operation,
                "db.query.text": statement,
                "server.address": host,
            }
        name = f"{operation} {namespace}" if system != "redis" else operation
        return _Node(
            service, CLIENT, name, attrs, rng.lognormvariate(0, 0.6) * DB_LATENCY_MS[system]
        )

    def pad(self) -> None:
        """Fill what is left of the budget with handler work and repeated queries (N+1)."""
        rng = self.rng
        servers = [n for n in self.nodes if n.kind in (SERVER, CONSUMER)]
        while self.budget > 0:
            node = rng.choice(servers)
            if rng.random() < 0.5:
                step = rng.choice(
                    (
                        "validate_request",
                        "load_context",
                        "serialize_response",
                        "render",
                        "map_entities",
                    )
                )
                self.call(node, node.service, ("internal", step, 1.0))
                continue
            system = "redis" if node.service in _CACHE_ONLY else "postgresql"
            self.add(
                node,
                self.db_span(
                    node.service,
                    system,
                    node.service.split("-")[0],
                    "SELECT * FROM line_items WHERE parent_id = $1",
                ),
            )


def _fail(rng: random.Random, nodes: list[_Node]) -> None:
    """Make one span fail and let the failure travel up to the callers, as it does."""
    node = rng.choice(nodes[1:])
    system = node.attrs.get("db.system.name", node.attrs.get("db.system"))
    if system is not None:
        node.status_message = DB_ERRORS[system]
    elif node.kind == CLIENT and node.own_ms > 20:
        node.status_message = "context deadline exceeded"
        node.own_ms = 5000.0
        _set_http_status(node, 504)
    else:
        node.status_message = "java.lang.IllegalStateException: inventory record locked"
    node.error = True
    while node.parent is not None and node.kind != CONSUMER:
        node = node.parent
        node.error = True
        _set_http_status(node, 500 if node.kind == SERVER else 502)


def _set_http_status(node: _Node, status: int) -> None:
    for key in ("http.response.status_code", "http.status_code"):
        if key in node.attrs:
            node.attrs[key] = status
    if "rpc.grpc.status_code" in node.attrs:
        node.attrs["rpc.grpc.status_code"] = 13


def _time(node: _Node, start_ms: float) -> float:
    """Place ``node`` and its subtree from ``start_ms``; returns where the node ends."""
    node.start = start_ms
    cursor = start_ms + node.own_ms * 0.3
    for child in node.children:
        if child.async_child:
            continue
        cursor = _time(child, cursor + 0.05) + 0.05
    node.end = cursor + node.own_ms * 0.7
    for child in node.children:
        if child.async_child:  # consumers pick the message up after the producer sent it
            _time(child, node.end + 2 + abs(child.own_ms) * 3)
    return node.end


def _any(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _span_json(node: _Node, trace_id: str, start_ns: int) -> dict:
    span = {"traceId": trace_id, "spanId": node.span_id}
    if node.parent is not None:
        span["parentSpanId"] = node.parent.span_id
    span["flags"] = 257
    span["name"] = node.name
    span["kind"] = node.kind
    start = start_ns + int(node.start * _MS)
    span["startTimeUnixNano"] = str(start)
    span["endTimeUnixNano"] = str(start_ns + int(node.end * _MS))
    span["attributes"] = [{"key": k, "value": _any(v)} for k, v in node.attrs.items()]
    if node.error and node.status_message and node.parent is not None:
        kind, _, message = node.status_message.partition(": ")
        span["events"] = [
            {
                "timeUnixNano": span["endTimeUnixNano"],
                "name": "exception",
                "attributes": [
                    {"key": "exception.type", "value": _any(kind if message else "Error")},
                    {"key": "exception.message", "value": _any(message or node.status_message)},
                ],
            }
        ]
    if node.link and node.parent is not None:
        span["links"] = [{"traceId": trace_id, "spanId": node.parent.span_id}]
    if node.error:
        span["status"] = (
            {"message": node.status_message, "code": 2} if node.status_message else {"code": 2}
        )
    else:
        span["status"] = {}
    return span


def _scope_of(node: _Node) -> str:
    if node.kind in (PRODUCER, CONSUMER):
        what = "messaging"
    elif "rpc.system" in node.attrs:
        what = "rpc"
    elif node.kind == SERVER:
        what = "server"
    elif "db.system.name" in node.attrs or "db.system" in node.attrs:
        what = "db"
    elif node.kind == CLIENT:
        what = "client"
    else:
        what = "internal"
    return SCOPES[SERVICES[node.service][0]][what]


def _resource(service: str, pod: str) -> dict:
    language, _, version = SERVICES[service]
    attributes = {
        "service.name": service,
        "service.namespace": "shop",
        "service.version": version,
        "deployment.environment.name": "production",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": language,
        "telemetry.sdk.version": "1.30.0",
        "k8s.namespace.name": "shop",
        "k8s.pod.name": pod,
        "host.name": pod,
    }
    return {"attributes": [{"key": k, "value": _any(v)} for k, v in attributes.items()]}


def _request(spans: list[tuple[str, str, dict]], resources: dict[str, dict]) -> dict:
    """One ``ExportTraceServiceRequest``: spans grouped by resource, then by scope."""
    grouped: dict[str, dict[str, list[dict]]] = {}
    for service, scope, span in spans:
        grouped.setdefault(service, {}).setdefault(scope, []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": resources[service],
                "scopeSpans": [
                    {"scope": {"name": scope, "version": "0.49.0"}, "spans": items}
                    for scope, items in scopes.items()
                ],
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            }
            for service, scopes in grouped.items()
        ]
    }


def write_file(path: Path, spans: int, seed: int, start_ns: int, span_of_time_ns: int) -> int:
    """Write ``spans`` spans of traces starting within the time given; returns the bytes written."""
    rng = random.Random(seed)
    sizes: list[int] = []
    total = 0
    while total < spans:
        size = min(rng.randint(5, 30), spans - total)
        sizes.append(size)
        total += size
    starts = sorted(start_ns + rng.randrange(span_of_time_ns) for _ in sizes)
    resources = {
        service: _resource(
            service, f"{service}-{rng.getrandbits(36):09x}-{rng.getrandbits(20):05x}"
        )
        for service in SERVICES
    }
    entries, weights = zip(*ENTRIES, strict=True)
    written = 0
    pending: list[tuple[str, str, dict]] = []
    line_target = rng.randint(500, 1000)
    with path.open("wb") as out:
        for size, trace_start in zip(sizes, starts, strict=True):
            builder = _TraceBuilder(rng, size)
            if size >= 20 and rng.random() < 0.4:  # the long traces are mostly checkouts
                entry, operation = rng.choice(CHECKOUTS)
            else:
                entry = rng.choices(entries, weights)[0]
                operation = rng.choice(list(OPERATIONS[entry]))
            builder.serve(None, entry, operation)
            builder.pad()
            nodes = builder.nodes
            trace_id = f"{rng.getrandbits(128) | 1:032x}"
            for node in nodes:
                node.span_id = f"{rng.getrandbits(64) | 1:016x}"
            roll = rng.random()
            if roll < 0.03 and len(nodes) > 1:
                _fail(rng, nodes)
            elif roll < 0.05:
                _set_http_status(nodes[0], rng.choice((400, 401, 404, 404, 429)))
            _time(nodes[0], 0.0)
            for node in nodes:
                pending.append(
                    (node.service, _scope_of(node), _span_json(node, trace_id, trace_start))
                )
            if len(pending) >= line_target:
                written += out.write(orjson.dumps(_request(pending, resources)) + b"\n")
                pending = []
                line_target = rng.randint(500, 1000)
        if pending:
            written += out.write(orjson.dumps(_request(pending, resources)) + b"\n")
    return written


def generate(
    folder: Path, spans: int, *, files: int = 10, seed: int = 42, workers: int = 2
) -> list[Path]:
    """Write ``spans`` spans into ``files`` files under ``folder``, each a tenth of the time."""
    folder.mkdir(parents=True, exist_ok=True)
    per_file = [spans // files + (1 if i < spans % files else 0) for i in range(files)]
    step = SPAN_OF_TIME_NS // files
    paths = [folder / f"traces-{i:02d}.otlp.jsonl" for i in range(files)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [
            pool.submit(write_file, path, n, seed * 1000 + i, BASE_NS + i * step, step)
            for i, (path, n) in enumerate(zip(paths, per_file, strict=True))
        ]
        for job in jobs:
            job.result()
    return paths
