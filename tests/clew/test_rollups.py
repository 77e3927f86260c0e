"""Span pairing into edges: client/server, databases, named virtual peers, root callers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from clew import metrics
from clew.pipeline import ingest
from clew.store import queries
from tests import otlp
from tests.conftest import corpus

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


def landscape() -> list[dict]:
    """Three traces: shop → orders (with a DB and an external call), and a message to billing."""
    shop, orders, billing = [], [], []
    for t in (1, 2, 3):
        shop.append(
            otlp.span(
                t,
                1,
                kind=SERVER,
                name="GET /cart",
                http__route="/cart",
                http__request__method="GET",
                start_ms=t * 1000,
                duration_ms=90,
            )
        )
        shop.append(
            otlp.span(
                t,
                2,
                1,
                kind=CLIENT,
                name="POST",
                start_ms=t * 1000 + 1,
                duration_ms=50,
                **{"http.request.method": "POST"},
            )
        )
        orders.append(
            otlp.span(
                t,
                3,
                2,
                kind=SERVER,
                name="POST /orders",
                start_ms=t * 1000 + 2,
                duration_ms=40,
                error=t == 3,
                **{
                    "http.route": "/orders",
                    "http.request.method": "POST",
                    "http.response.status_code": 500 if t == 3 else 201,
                },
            )
        )
        orders.append(
            otlp.span(
                t,
                4,
                3,
                kind=CLIENT,
                name="INSERT orders",
                start_ms=t * 1000 + 3,
                duration_ms=5,
                **{"db.system": "postgresql", "server.address": "orders-db"},
            )
        )
        orders.append(
            otlp.span(
                t,
                5,
                3,
                kind=CLIENT,
                name="GET",
                start_ms=t * 1000 + 9,
                duration_ms=20,
                **{
                    "peer.service": "tax-api",
                    "server.address": "tax.example",
                    "http.status_code": 404,
                },
            )
        )
        orders.append(
            otlp.span(
                t,
                6,
                3,
                kind=PRODUCER,
                name="orders publish",
                start_ms=t * 1000 + 30,
                duration_ms=2,
                **{"messaging.system": "kafka", "messaging.destination.name": "orders"},
            )
        )
        billing.append(
            otlp.span(
                t,
                7,
                6,
                kind=CONSUMER,
                name="orders process",
                start_ms=t * 1000 + 40,
                duration_ms=15,
                **{"messaging.system": "kafka", "messaging.destination.name": "orders"},
            )
        )
    return [
        otlp.request({"shop": shop}),
        otlp.request({"orders": orders}),
        otlp.request({"billing": billing}),
    ]


def edges_of(engine) -> dict[tuple[str, str, str], dict]:
    with engine.connect() as conn:
        view = metrics.graph_view(conn, queries.Window())
    return {(e["client"], e["server"], e["connection_type"]): e for e in view["edges"]}


def kinds_of(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT name, kind FROM services")).all())


def test_pairing_gives_direct_database_virtual_messaging_and_root_edges(
    engine, registry, tmp_path: Path
):
    ingest(engine, [otlp.write_lines(tmp_path / "t.jsonl", landscape())], registry)
    edges = edges_of(engine)
    assert set(edges) == {
        ("client", "shop", "virtual_node"),
        ("shop", "orders", "direct"),
        ("orders", "orders-db", "database"),
        ("orders", "tax-api", "virtual_node"),  # peer.service wins over server.address
        ("orders", "billing", "messaging_system"),
    }
    direct = edges[("shop", "orders", "direct")]
    assert (direct["count"], direct["errors"], direct["error_ratio"]) == (3, 1, round(1 / 3, 6))
    assert abs(direct["p50_ms"] - 50) / 50 <= 0.02  # the caller's latency
    tax = edges[("orders", "tax-api", "virtual_node")]
    assert (tax["errors"], tax["client_errors"]) == (0, 3)  # 4xx are counted apart
    assert abs(edges[("orders", "billing", "messaging_system")]["p99_ms"] - 15) / 15 <= 0.02
    assert kinds_of(engine) == {
        "shop": "service",
        "orders": "service",
        "billing": "service",
        "orders-db": "database",
        "tax-api": "external",
        "client": "client",
    }
    with engine.connect() as conn:
        endpoints = conn.execute(
            text("SELECT service, protocol, method, route FROM endpoints ORDER BY 1, 2, 3, 4")
        ).all()
    assert [tuple(e) for e in endpoints] == [
        ("billing", "messaging", "process", "orders"),
        ("orders", "http", "POST", "/orders"),
        ("shop", "http", "GET", "/cart"),
    ]


def test_spans_arriving_in_any_order_and_batches_give_the_same_rollups(
    engine, registry, tmp_path: Path
):
    # children first, then their parents, one request per ingest run
    for i, request in enumerate(reversed(landscape())):
        path = otlp.write_lines(tmp_path / f"part{i}.jsonl", [request])
        ingest(engine, [path], registry, batch_spans=1)
    late = edges_of(engine)

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    from clew import store

    fresh = store.open_engine(str(fresh_dir / "clew.db"))
    store.upgrade(fresh)
    ingest(fresh, [otlp.write_lines(fresh_dir / "all.jsonl", landscape())], registry)
    assert late == edges_of(fresh)
    assert ("client", "orders", "virtual_node") not in late  # no stale root edge left behind


def test_corpus_capture_gives_the_true_service_graph(engine, registry):
    ingest(engine, [corpus("otlp_json", "error_timeout_masked.json")], registry)
    edges = edges_of(engine)
    assert {(c, s, t): e["count"] for (c, s, t), e in edges.items()} == {
        ("load-generator", "frontend-proxy", "direct"): 3,
        ("frontend-proxy", "frontend", "direct"): 3,
        ("frontend", "cart", "direct"): 2,
        ("frontend", "product-catalog", "direct"): 1,
        ("cart", "valkey-cart", "database"): 4,
        ("product-catalog", "astronomy-db", "database"): 1,
    }
    assert edges[("load-generator", "frontend-proxy", "direct")]["errors"] == 1
    assert kinds_of(engine)["valkey-cart"] == "database"
