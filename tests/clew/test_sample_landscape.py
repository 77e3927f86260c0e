"""The sample landscape end to end: its graph, its planted problems, and percentile accuracy."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from clew import demo, store
from clew.cli import main
from clew.pipeline import ingest, rollups
from clew.store import histogram
from tests.clew.test_rollups import assert_same_rollups, rollup_table

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@pytest.fixture(scope="module")
def graph_json(sample_db) -> dict:
    result = CliRunner().invoke(main, ["graph", "--db", sample_db, "--json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_graph_shows_the_planted_failing_edge_cycle_database_and_external_api(graph_json):
    kinds = {n["id"]: n["kind"] for n in graph_json["nodes"]}
    edges = {(e["client"], e["server"]): e for e in graph_json["edges"]}
    failing = edges[("integration-hub", "warehouse-service")]
    assert failing["error_ratio"] > 0.05
    healthy = edges[("storefront-web", "cart-service")]
    assert healthy["error_ratio"] < failing["error_ratio"]
    assert ["integration-hub", "inventory-service", "order-service"] in graph_json["cycles"]
    assert kinds["orders-db"] == "database" and kinds["session-cache"] == "database"
    assert kinds["api.cardnetwork.example"] == "external"
    assert kinds["api.carrier.example"] == "external"
    assert kinds["client"] == "client"
    slow = edges[("recommendation-service", "catalog-service")]
    assert slow["p95_ms"] > 1000 > healthy["p95_ms"]
    messaging = [e for e in graph_json["edges"] if e["connection_type"] == "messaging_system"]
    assert {(e["client"], e["server"]) for e in messaging} >= {
        ("shipment-service", "kafka/shipment-events"),
        ("kafka/shipment-events", "tracking-service"),
        ("kafka/shipment-events", "notification-service"),
    }
    assert (kinds["kafka"], kinds["kafka/shipment-events"]) == ("broker", "topic")
    topic = next(n for n in graph_json["nodes"] if n["id"] == "kafka/shipment-events")
    assert topic["parent"] == "kafka"
    services = [n for n in graph_json["nodes"] if n["kind"] == "service"]
    assert len(services) >= 15


def _independent_edges(conn) -> dict[tuple[str, str, str], list[int]]:
    """Pair the raw spans in Python, without the rollup SQL, into edge → latencies (ns)."""
    rows = conn.execute(
        text(
            "SELECT trace_id, span_id, parent_span_id, service, kind, duration_ns, peer_service,"
            " server_address, db_system, messaging_system, messaging_destination FROM spans"
        )
    ).all()
    by_id = {(r.trace_id, r.span_id): r for r in rows}
    children = defaultdict(list)
    for r in rows:
        if r.parent_span_id:
            children[(r.trace_id, r.parent_span_id)].append(r)
    edges: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    def topic(r) -> str:
        return f"{r.messaging_system}/{r.messaging_destination}"

    for r in rows:
        if r.kind == PRODUCER and r.messaging_system:  # every sample producer names its topic
            edges[(r.service, topic(r), "messaging_system")].append(r.duration_ns)
        elif r.kind == CONSUMER and r.messaging_system:
            edges[(topic(r), r.service, "messaging_system")].append(r.duration_ns)
        elif r.kind in (CLIENT, PRODUCER):
            paired = [
                c
                for c in children[(r.trace_id, r.span_id)]
                if c.kind in (SERVER, CONSUMER) and c.service != r.service
            ]
            for c in paired:
                ctype = "messaging_system" if r.kind == PRODUCER else "direct"
                edges[(r.service, c.service, ctype)].append(
                    c.duration_ns if r.kind == PRODUCER else r.duration_ns
                )
            peer = r.peer_service or r.server_address or r.db_system or r.messaging_system
            if not paired and peer:
                ctype = (
                    "database"
                    if r.db_system
                    else "messaging_system"
                    if r.messaging_system
                    else "virtual_node"
                )
                edges[(r.service, peer, ctype)].append(r.duration_ns)
        elif r.kind == SERVER and (
            r.parent_span_id is None or (r.trace_id, r.parent_span_id) not in by_id
        ):
            edges[("client", r.service, "virtual_node")].append(r.duration_ns)
    return edges


def test_rollup_counts_and_percentiles_match_an_independent_computation(sample_db):
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        expected = _independent_edges(conn)
        rolled = defaultdict(dict)
        counts = defaultdict(int)
        for client, server, ctype, n, hist in conn.execute(
            text("SELECT client, server, connection_type, count, histogram FROM edge_rollups")
        ):
            counts[(client, server, ctype)] += n
            rolled[(client, server, ctype)] = histogram.merge(
                [rolled[(client, server, ctype)], histogram.loads(hist)]
            )
    engine.dispose()
    assert dict(counts) == {k: len(v) for k, v in expected.items()}
    checked = 0
    for edge, durations in expected.items():
        exact = np.percentile(np.array(durations), [50, 95, 99], method="inverted_cdf")
        for q, truth in zip((0.50, 0.95, 0.99), exact, strict=True):
            estimate = histogram.quantile(rolled[edge], q)
            if truth == 0:
                assert estimate == 0
            else:
                assert abs(estimate - truth) / truth <= histogram.ALPHA, (edge, q, estimate, truth)
            checked += 1
    assert checked >= 3 * 30


def test_rollups_kept_batch_by_batch_equal_one_pass_and_a_rebuild(sample_db, registry, tmp_path):
    """The sample's files again, in batches of 300 spans: traces straddle batches, so stored
    traces are corrected all along, and the rollups still equal one pass and a rebuild."""
    one_pass = store.open_engine(sample_db)
    (folder,) = demo.sample_dir(one_pass).glob("sample-*")
    want = rollup_table(one_pass)
    one_pass.dispose()
    engine = store.open_engine(str(tmp_path / "batched.db"))
    store.upgrade(engine)
    result = ingest(engine, [folder], registry, batch_spans=300)
    assert result.inserted > 20 * 300
    assert_same_rollups(rollup_table(engine), want)
    rollups.rebuild(engine)
    assert rollup_table(engine) == want
    engine.dispose()
