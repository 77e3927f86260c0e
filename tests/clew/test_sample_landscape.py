"""The sample landscape end to end: its graph, its planted problems, its gateway logs, and
percentile accuracy."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from clew import demo, store
from clew.cli import main
from clew.pipeline import joins, rollups
from clew.records import GatewayRequest, Quarantined, Span
from clew.store import catalog, contracts, gateway_requests, histogram, queries, spans
from collectors import Source
from tests.clew.test_rollups import assert_same_rollups, rollup_table
from tests.conftest import SAMPLE_END_NS

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
    rows = [Span(*row) for group in spans.by_trace(conn) for row in group]
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


def test_rollup_counts_and_percentiles_match_an_independent_computation(sample_db, manifest):
    """The spans' edges. Root spans are compared per service whoever their caller is: ``client``,
    or the gateway whose log carried the request."""
    engine = store.open_engine(sample_db)
    nodes = set(manifest["services"]) | {f"kafka/{manifest['broker']['topic']}"}
    with engine.connect() as conn:
        expected = _independent_edges(conn)
        for client, server, ctype in list(expected):
            if client == "client":
                expected[("<root>", server, "root")] = expected.pop((client, server, ctype))
        rolled = defaultdict(dict)
        counts = defaultdict(int)
        for client, server, ctype, n, hist in conn.execute(
            text(
                "SELECT client, server, connection_type, count, histogram FROM edge_rollups"
                " WHERE source != 'gateway'"
            )
        ):
            if client not in nodes and server in nodes:
                client, ctype = "<root>", "root"
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


def test_rollups_kept_batch_by_batch_equal_one_pass_and_a_rebuild(
    sample_db, sample_folder, registry, tmp_path
):
    """The sample's files again, in batches of 300 spans: traces straddle batches, so stored
    traces are corrected all along, and the rollups still equal one pass and a rebuild."""
    one_pass = store.open_engine(sample_db)
    want = rollup_table(one_pass)
    one_pass.dispose()
    engine = store.open_engine(str(tmp_path / "batched.db"))
    store.upgrade(engine)
    result = demo.ingest_sample(engine, sample_folder, registry, batch_spans=300)
    assert result.inserted > 20 * 300
    assert_same_rollups(rollup_table(engine), want)
    rollups.rebuild(engine, root_callers=joins.callers)  # as `clew db rebuild-rollups` does
    assert rollup_table(engine) == want
    engine.dispose()


def _cli_json(*args: str) -> dict:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_the_worst_failing_paths_lead_to_the_planted_edge_and_its_failing_span(sample_db):
    found = _cli_json("paths", "--failing", "--db", sample_db, "--json")["paths"]
    worst = found[0]
    assert worst["failing_edge"] == {"client": "integration-hub", "server": "warehouse-service"}
    assert worst["path"][0] == worst["entry"]["service"] in {"storefront-web", "pos-api"}
    assert worst["path"][-2:] == ["integration-hub", "warehouse-service"]
    assert "503" in worst["error"]
    planted = [p for p in found if p["failing_edge"]["server"] == "warehouse-service"]
    assert sum(p["count"] for p in planted) > sum(p["count"] for p in found) / 2
    # the planted failures are in the window's last 45 minutes: far more there than in the
    # 2h15 before, where only the background rate fails
    end_s = SAMPLE_END_NS // 1_000_000_000
    cut = str(end_s - 45 * 60)

    def hub_failures(*window: str) -> int:
        paths = _cli_json("paths", "--failing", *window, "--db", sample_db, "--json")["paths"]
        return sum(p["count"] for p in paths if p["failing_edge"] == worst["failing_edge"])

    assert hub_failures("--since", cut) > 5 * hub_failures("--until", cut)

    trace = _cli_json("trace", worst["exemplar"]["trace_id"], "--db", sample_db, "--json")
    spans = {s["span_id"]: s for s in trace["spans"]}
    failing = spans[trace["failing_span_id"]]
    assert trace["failing_span_id"] == worst["exemplar"]["span_id"]
    assert failing["service"] == "warehouse-service" and failing["failing"] and failing["error"]
    assert failing["span_id"] in trace["critical_path"]
    root = trace["spans"][0]
    assert root["depth"] == 0 and root["service"] == worst["entry"]["service"]
    assert root["span_id"] in trace["critical_path"]


def test_the_diff_of_the_last_45_minutes_against_the_45_before_shows_the_failing_edge(sample_db):
    end_s = SAMPLE_END_NS // 1_000_000_000
    window = ["--since", str(end_s - 45 * 60), "--until", str(end_s)]
    changes = _cli_json("graph", "--diff", *window, "--db", sample_db, "--json")
    changed = {(c["client"], c["server"]): c for c in changes["changed"]}
    hub = changed[("integration-hub", "warehouse-service")]
    assert "error_ratio" in hub["changes"]
    assert hub["new"]["error_ratio"] > 0.15 > 0.05 > hub["old"]["error_ratio"]
    assert changes["old"]["until_minute"] == changes["new"]["since_minute"]
    same = _cli_json(
        "graph",
        "--diff",
        *window,
        "--baseline-since",
        window[1],
        "--baseline-until",
        window[3],
        "--db",
        sample_db,
        "--json",
    )
    assert (same["added"], same["removed"], same["changed"]) == ([], [], [])


def test_endpoints_entry_operations_and_single_points_of_failure(sample_db):
    from clew import metrics
    from clew.store.queries import Window

    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        served = metrics.service_endpoints(conn, Window(), "warehouse-service")
        over_edge = metrics.edge_endpoints(conn, Window(), "integration-hub", "warehouse-service")
        entries = metrics.entry_operations(conn, Window())
        view = metrics.graph_view(conn, Window())
    assert served and all(r["callers"] == ["integration-hub"] for r in served)
    assert {r["endpoint"] for r in served} == {r["endpoint"] for r in over_edge}
    assert sum(r["count"] for r in over_edge) == next(
        e["count"]
        for e in view["edges"]
        if (e["client"], e["server"]) == ("integration-hub", "warehouse-service")
    )
    assert all(r["endpoint"].split(" ", 1)[0] in {"GET", "POST", "PUT", "DELETE"} for r in served)
    services = {r["service"] for r in entries}
    assert {"storefront-web", "pos-api"} <= services and "warehouse-service" not in services
    assert all(r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"] * 1.02 for r in entries)
    nodes = {n["id"]: n for n in view["nodes"]}
    assert nodes["integration-hub"]["articulation"]
    assert nodes["integration-hub"]["fan_out"] >= 4
    assert nodes["warehouse-service"]["fan_in"] == 1
    assert nodes["client"]["betweenness"] == 0.0


# --- the gateway logs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log", "collector"), [("kong-access.log", "kong"), ("nginx-access.log", "nginx")]
)
def test_gateway_logs_are_detected_and_read_without_a_quarantined_line(
    sample_folder, manifest, registry, log, collector
):
    found = registry.detect(sample_folder / log)
    assert (
        found is not None and found.name == collector == manifest["gateway_logs"][log]["collector"]
    )
    records = list(found.collect(Source(sample_folder / log)))
    assert [r for r in records if isinstance(r, Quarantined)] == []
    requests = [r for r in records if isinstance(r, GatewayRequest)]
    assert len(requests) == manifest["gateway_logs"][log]["lines"]


def test_the_sample_loads_without_quarantining_anything(sample_db):
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM quarantine")).scalar() == 0
    engine.dispose()


def _stored_requests(sample_db: str, manifest: dict) -> list[GatewayRequest]:
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        # the window, and room either side for a gateway's own time
        since, until = manifest["start_ns"] - 60 * 10**9, manifest["end_ns"] + 600 * 10**9
        stored = list(gateway_requests.in_window(conn, since, until))
    engine.dispose()
    return stored


def test_stored_gateway_requests_are_the_manifests(sample_db, manifest):
    stored = _stored_requests(sample_db, manifest)
    logs = {log["gateway"]: log for log in manifest["gateway_logs"].values()}
    assert Counter(r.gateway for r in stored) == {g: log["lines"] for g, log in logs.items()}
    for gateway, log in logs.items():
        mine = [r for r in stored if r.gateway == gateway]
        assert sum(r.trace_id is not None for r in mine) == log["with_trace_id"], gateway
        consumers = Counter(r.consumer for r in mine)
        assert consumers.pop(None, 0) == log["without_consumer"], gateway
        assert consumers == log["consumers"], gateway
        # a request the gateway answered itself did not wait on an upstream
        waited = sum(r.upstream_duration_ns is not None for r in mine)
        assert waited == log["entry_requests"]["count"], gateway


def _gateway_edges(sample_db: str) -> dict[tuple[str, str], int]:
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT client, server, sum(count) FROM edge_rollups WHERE source = 'gateway'"
                " GROUP BY client, server"
            )
        ).all()
    engine.dispose()
    return {(client, server): n for client, server, n in rows}


def test_gateway_rollups_hold_the_consumer_gateway_edges_of_the_manifest(sample_db, manifest):
    """Partners → api-gateway by Kong's consumer (``client`` for a key Kong did not know),
    the web shop's visitors → shop-edge as the one ``client``, and NGINX → storefront-web."""
    edges = _gateway_edges(sample_db)
    kong, nginx = (
        manifest["gateway_logs"]["kong-access.log"],
        manifest["gateway_logs"]["nginx-access.log"],
    )
    want = {(e["client"], e["server"]): e["count"] for e in kong["edges"] + nginx["edges"]}
    assert want[("client", "shop-edge")] == nginx["lines"]
    assert {c for c, s in want if s == "api-gateway"} >= {
        "northwind-marketplace",
        "bluefin-travel",
        "kestrel-subscriptions",
        "client",
    }
    assert {edge: edges.get(edge) for edge in want} == want
    assert set(edges) == set(want)


def test_api_gateway_to_payments_api_counts_only_the_requests_that_reached_it(sample_db, manifest):
    kong = manifest["gateway_logs"]["kong-access.log"]
    reached = {(e["client"], e["server"]): e["count"] for e in kong["edges"]}
    assert (
        _gateway_edges(sample_db)[("api-gateway", "payments-api")]
        == reached[("api-gateway", "payments-api")]
    )


# --- the contracts and the catalog --------------------------------------------------------------


def test_loading_the_sample_again_soon_after_loads_nothing(sample_db, manifest):
    """Its files, those below its folder (contracts/, catalog/) too, say how fresh it is."""
    engine = store.open_engine(sample_db)
    again = demo.load_sample(engine, now_ns=SAMPLE_END_NS + 10 * 60 * 10**9)
    engine.dispose()
    assert again == {"loaded": False, "end_ns": manifest["end_ns"], "inserted": 0}


def test_the_contracts_and_the_catalog_are_read_whole(sample_db, manifest, sample_folder):
    """Every version stored from its own file with nothing left unread, every entity without a
    problem, every API's definition read from beside its catalog file: the same text, so the
    same version."""
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        versions = contracts.versions(conn)
        entities = catalog.entities(conn)
        definitions = conn.execute(
            text("SELECT api_ref, content_hash, problems FROM api_definitions")
        ).all()
    engine.dispose()
    files = manifest["contracts"]["files"]
    assert sorted(v.source for v in versions) == sorted(
        str(sample_folder / c["file"]) for c in files
    )
    assert [v.problems for v in versions] == [[]] * len(files)
    assert len(entities) == manifest["catalog"]["entities"]
    assert [e["ref"] for e in entities if e["problems"]] == []
    hashes = {v.content_hash for v in versions}
    assert len(definitions) == manifest["catalog"]["by_kind"]["API"]
    assert all(h in hashes and orjson.loads(p) == [] for _, h, p in definitions)


def test_clew_contracts_lists_every_version_of_the_sample(sample_db, manifest):
    listed = _cli_json("contracts", "--db", sample_db, "--json")
    by_title = sorted(
        manifest["contracts"]["files"], key=lambda c: (c["kind"], c["title"])
    )  # versions of one contract stay in the order they were read
    assert [(v["kind"], v["title"], v["version"], v["spec_version"]) for v in listed] == [
        (c["kind"], c["title"], c["version"], c["spec_version"]) for c in by_title
    ]
    assert [v["operations"] for v in listed] == [c["operations"] for c in by_title]
    deprecated = {(v["title"], v["version"]): v["deprecated"] for v in listed}
    assert deprecated[("Payments API", "2.3.0")] == deprecated[("Payments API", "2.4.0")] == 1


@pytest.mark.parametrize("versions", ["stored", "files"])
def test_clew_diff_of_the_payments_versions_reports_the_planted_change_and_its_consumers(
    sample_db, manifest, sample_folder, versions
):
    """The partners calling the operation through the API gateway, each with its calls: the
    requests Kong passed on and those it refused in a burst alike."""
    planted = manifest["contracts"]["diff"]
    if versions == "stored":
        old, new = planted["old_ref"], planted["new_ref"]
    else:
        old, new = str(sample_folder / planted["old"]), str(sample_folder / planted["new"])
    since, until = manifest["start_ns"] // 10**9 - 600, manifest["end_ns"] // 10**9 + 600
    found = _cli_json(
        "diff", old, new, "--since", str(since), "--until", str(until), "--db", sample_db, "--json"
    )
    assert (found["service"], found["gateways"], found["breaking"]) == (
        planted["service"],
        planted["gateways"],
        planted["breaking"],
    )

    def order(change: dict) -> tuple:
        return (not change["breaking"], change["operation"], change["id"], change["where"])

    reported = [{k: v for k, v in c.items() if k != "text"} for c in found["changes"]]
    assert sorted(reported, key=order) == sorted(planted["changes"], key=order)
    (breaking,) = [c for c in found["changes"] if c["breaking"]]
    kong = manifest["gateway_logs"]["kong-access.log"]
    assert {c["name"] for c in breaking["consumers"]} == set(kong["consumers"])


def _name(ref: str) -> str:
    """An entity's name, from its ref (``component:default/order-service``)."""
    return ref.split("/", 1)[1]


def test_the_catalog_declares_every_observed_dependency_but_the_planted_one(sample_db, manifest):
    """Observed: the edges between the catalog's components and resources, and a topic's
    consumers depending on its producers. Declared: dependsOn, and consumesApis read as a
    dependency on the component providing the API."""
    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        edges = queries.edge_totals(conn, queries.Window())
        kinds = {name: node.kind for name, node in queries.nodes(conn).items()}
        relations = catalog.dependencies(conn)
        entities = catalog.entities(conn)
    engine.dispose()
    names = {e["name"] for e in entities if e["kind"] in ("Component", "Resource")}
    observed = {(e.client, e.server) for e in edges if {e.client, e.server} <= names}
    producers = {(e.server, e.client) for e in edges if kinds.get(e.server) == "topic"}
    observed |= {
        (e.server, producer)
        for e in edges
        if kinds.get(e.client) == "topic"
        for topic, producer in producers
        if topic == e.client
    }
    provider = {api: _name(c) for c, api, relation in relations if relation == "providesApi"}
    declared = {(_name(c), _name(target)) for c, target, r in relations if r == "dependsOn"}
    declared |= {(_name(c), provider[api]) for c, api, r in relations if r == "consumesApi"}
    undeclared = manifest["catalog"]["undeclared_dependency"]
    assert observed - declared == {(undeclared["client"], undeclared["server"])}
    assert declared - observed == {
        (d["client"], d["server"]) for d in manifest["catalog"]["declared_unobserved"]
    }
    (calls,) = [
        e.count
        for e in edges
        if (e.client, e.server) == (undeclared["client"], undeclared["server"])
    ]
    assert calls == undeclared["calls"]


def test_the_sample_endpoints_come_out_with_their_planted_statuses(sample_db, manifest):
    """Every endpoint the sample plants a status for: documented, shadow, zombie, orphan, or
    documented and unversioned; with the calls its server spans counted."""
    from clew import inventory

    engine = store.open_engine(sample_db)
    with engine.connect() as conn:
        found = {
            (e.service, e.method, e.route): e for e in inventory.inventory(conn, queries.Window())
        }
    engine.dispose()
    planted = manifest["endpoint_statuses"]["endpoints"]
    assert planted
    for want in planted:
        got = found[(want["service"], want["method"], want["route"])]
        if want["status"] == "unversioned":
            assert (got.status, got.unversioned) == ("documented", True), got
        elif want["status"] == "shadow":  # in no contract: no version a client could pin
            assert (got.status, got.unversioned, got.contract) == ("shadow", True, None), got
        else:
            assert (got.status, got.unversioned) == (want["status"], False), got
        assert got.calls == want["calls"], got
        if want["status"] != "shadow":
            assert got.contract is not None and got.contract.startswith(want["contract"])
    # Nothing else of these services is out of place: every other endpoint is documented.
    services = set(manifest["endpoint_statuses"]["services"])
    keys = {(w["service"], w["method"], w["route"]) for w in planted}
    others = [e for key, e in found.items() if key[0] in services and key not in keys]
    assert [(e.service, e.route, e.status) for e in others if e.status != "documented"] == []
