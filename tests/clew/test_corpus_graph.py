"""The service graph of real third-party trace files, worked out by hand from the files.

Each expected graph below was derived from the file itself (span parent ids, kinds, local and
remote endpoints, tags) by the pairing rules at the top of ``clew.pipeline.rollups``, not copied
from Clew's output; the comment on each edge names the spans that give it. An edge is written
``(client, server, connection type): (sources, count, errors)``, a node ``(id, kind, parent)``.

Choices where a file could be read more than one way, with what Tempo, Jaeger and Zipkin do:

* A CLIENT span with no child and nothing naming its peer (no remote endpoint, host, URL, peer
  service or database system) gives no edge: Tempo drops it (no peer attribute), Zipkin's linker
  too (no remote service name), and any node Clew made up for it would be a guess.
* A parent and child in different services whose kinds are not a caller and its callee (a SERVER
  span under a SERVER span of another service, in smartthings) give a relaxed edge: Zipkin's and
  Jaeger's dependency links are drawn from parent to child whatever the kinds; Tempo draws
  nothing, and the server's requests would then have no caller at all.
* A database named after its caller (smartthings' Cassandra spans: ``remoteEndpoint.serviceName``
  "auth" on auth's own spans) is the edge auth → auth, a database connection on the service's
  node: Tempo names a database node by ``peer.service`` first, and Zipkin links auth → auth.
* Calls between two instances of one service (datamgmt's proxied calls and redirects) are not
  edges: a service calling itself is not a dependency (Tempo would draw a loop).
* Zipkin CLIENT/SERVER spans that carry Kafka tags (smartthings' "send/receive iot-events360")
  are paired as the kinds say, ``direct``, as Tempo does: only PRODUCER/CONSUMER spans are
  messaging.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from clew import metrics
from clew.pipeline import ingest, rollups
from clew.store import queries
from tests.clew.test_rollups import rollup_table
from tests.conftest import CORPUS, corpus

STRICT, RELAXED = ("trace",), ("trace_relaxed",)  # an edge's sources

ASCEND = {
    "nodes": {
        ("client", "client", None),
        ("mobile-gateway", "service", None),
        ("auth-service", "service", None),
        ("content-service", "service", None),
    },
    "edges": {
        # ef86c83c0a05a6d6: mobile-gateway's SERVER span, the root (its remote endpoint is an
        # IP address, the caller's, not a service)
        ("client", "mobile-gateway", "virtual_node"): (STRICT, 1, 0),
        # CLIENT 52b1ab4956917c39 (mobile-gateway) and the shared SERVER span of the same id
        # (auth-service); extend-token-life 80c0d1d62f437a1b is local to auth-service's half
        ("mobile-gateway", "auth-service", "direct"): (STRICT, 1, 0),
        # CLIENT ecc00062ceef4bf0 and its shared SERVER half (content-service); hystrix
        # e6422f7ff7d78099 is local to that half. content-service's CLIENT c21c6c51ac71b3ba
        # (GET /api/v1/banners/…) has no child, no remote endpoint and no host: no edge
        ("mobile-gateway", "content-service", "direct"): (STRICT, 1, 0),
    },
}

SIMPLE_DB = {
    "nodes": {
        ("client", "client", None),
        ("bootifulmeters", "service", None),
        ("app_db", "database", None),
    },
    "edges": {
        # 19f84f102048e047: the root SERVER span, POST /book (its remote ::1 is the caller)
        ("client", "bootifulmeters", "virtual_node"): (STRICT, 1, 0),
        # CLIENT 5d532ef6fed52445, e4efd924fec0624c, 8b1e63c0f49a81f7, 544e854ede87b217 under
        # it: remoteEndpoint.serviceName app_db and a sql.query tag, so a SQL database
        ("bootifulmeters", "app_db", "database"): (STRICT, 4, 0),
    },
}

MESSAGING_KAFKA = {
    "nodes": {
        ("servicea", "service", None),
        ("serviceb", "service", None),
        ("kafka", "broker", None),  # remoteEndpoint.serviceName of every messaging span
        ("kafka/messages", "topic", "kafka"),  # kafka.topic tags
        ("kafka/central.messages", "topic", "kafka"),
        ("kafka/command-messages", "topic", "kafka"),
    },
    "edges": {
        # PRODUCER 2e22a0564764943a, 5133caca649f802b, 085a9df516127e50 (topic messages)
        ("servicea", "kafka/messages", "messaging_system"): (STRICT, 3, 0),
        # PRODUCER 26bd982d53f50d1f, b7808dc69c7726f2, 5bc03264c704f245
        ("servicea", "kafka/central.messages", "messaging_system"): (STRICT, 3, 0),
        # PRODUCER 79145dc8245c2899, e2feae695b1d1a6a, b42b60c5c19ce714 (nobody consumes them)
        ("servicea", "kafka/command-messages", "messaging_system"): (STRICT, 3, 0),
        # CONSUMER 0562809467078eab (the root poll, no producer), e0473dc3d8732e8b (under
        # 2e22…), 08e980b0e786309b (under 5133…), bad2ddec9d33837b (under 085a…)
        ("kafka/messages", "servicea", "messaging_system"): (STRICT, 4, 0),
        # CONSUMER b4a2a87ee7f003bc (under 2e22…), a5524eec8147b1da (under 5133…),
        # 519d27c657334615 (under 085a…). The three "error" tags are on serviceb's kind-less
        # on-message spans under these consumers, in the consumer's own service: no edge errs
        ("kafka/messages", "serviceb", "messaging_system"): (STRICT, 3, 0),
    },
}

SMARTTHINGS = {
    "nodes": {
        ("client", "client", None),
        ("datamgmt", "service", None),
        ("auth", "service", None),
        ("account", "service", None),
        ("bouncer", "service", None),
        ("stlogin", "service", None),
        ("pusher", "service", None),
        ("paperboy", "service", None),
        ("dove", "service", None),
        ("archiver.st.internal", "external", None),
    },
    "edges": {
        # 8ce82b2e9ed820ba: the root SERVER span, GET /oauth/authorize
        ("client", "datamgmt", "virtual_node"): (STRICT, 1, 0),
        # CLIENT spans of datamgmt answered by a shared SERVER half in auth, by client id:
        # 54456c991996a6c7, 0df5fb685859651f, 772e2305de77c79f, 001c695f334f9420,
        # f86833c3ff266b46, 817bed843984f73c, 61d0055f29150e03, 687365a88b8ba954,
        # d4a98698eb1d7b2d, 6d34027436856f8f, 38827242198dba3d, 8c2689a5613d39ea,
        # 1a26239b7113287e, 552eaca6c491fcb4, 5fdbafe9b43a2185, a6a7402ffab1c5aa,
        # c24ca597b1819c50, e0b3f0c9b97afbed, 7ce382395898c478, 7de851d5112e61d4
        ("datamgmt", "auth", "direct"): (STRICT, 20, 0),
        # GET /locations/user/…: 37cfec055f61ca1e, 6bfe0f47e2fe0bc0, 78cf274cc51240ea,
        # 5f4625942bfac6f1, b46de0f6c2ec0139, each answered by account's shared half
        ("datamgmt", "account", "direct"): (STRICT, 5, 0),
        # POST /events 19b91ab9a7d47f3d, answered by bouncer's shared half
        ("datamgmt", "bouncer", "direct"): (STRICT, 1, 0),
        # the "redirect" CLIENT spans 4ce318f49fb2d88b and e4ca41b44ea5514e, whose shared
        # halves are stlogin's (the other redirects, d70bbce77a790a35, 8ca0d490c17c7d7c,
        # a8de54dbcc867f1d and authorize c2fac1d86e52d441, land on datamgmt itself, as do the
        # proxied calls 875e4cd34da71421, 16eecb59ef681082, 312c5920ce5de8a9, 7224032272dbf81c)
        ("datamgmt", "stlogin", "direct"): (STRICT, 2, 0),
        # CLIENT a6a297b5d665be1e (POST /web/authenticate) and c47bff7f7964b321
        # (POST /sso/authenticate, "error": "401" on both halves) with auth's shared halves
        ("stlogin", "auth", "direct"): (STRICT, 2, 1),
        # SERVER bfc02051be208bd9 (datamgmt, GET /oauth/authorize) under SERVER
        # 328fac961bc6aaee (stlogin), and SERVER 1af69980dad7deac (datamgmt) under SERVER
        # 9c523c937ec3694c (stlogin): the login pages' redirects followed with the trace
        # context, no client span between them
        ("stlogin", "datamgmt", "direct"): (RELAXED, 2, 0),
        # CLIENT 9d2d35b746db84f3 "send iot-events360", answered by two pusher instances:
        # shared halves on 10.0.0.187 (three fragments merged) and on 10.0.0.79 (two)
        ("bouncer", "pusher", "direct"): (STRICT, 2, 0),
        # pusher's CLIENT b4c5ce09acaf2e0e and 1dfd8f3332f7caca (POST /deliver), under its
        # kind-less process.paperboy / process.dove spans, answered by shared halves
        ("pusher", "paperboy", "direct"): (STRICT, 1, 0),
        ("pusher", "dove", "direct"): (STRICT, 1, 0),
        # CLIENT 5f35e80a5a50fdca, POST /events with no child: the host of its http.url
        ("pusher", "archiver.st.internal", "virtual_node"): (STRICT, 1, 0),
        # auth's Cassandra CLIENT spans (cassandra.* tags, remoteEndpoint.serviceName "auth"):
        # 4 under 54456c99…, 2 under 0df5fb68…, 1 each under 772e2305…, 001c695f…,
        # f86833c3…, 817bed84…, 61d0055f…, 687365a8…, 6d340274…, 8c2689a5…, 552eaca6…,
        # a6a7402f…, c24ca597…, e0b3f0c9…, 7ce38239…, 7de851d5… and c47bff7f…, 4 each under
        # d4a98698…, 38827242…, 1a26239b…, 5fdbafe9…, and 13 under a6a297b5…
        ("auth", "auth", "database"): (STRICT, 50, 0),
        # no edge: CLIENT 3463f822a0e9cc02 (datamgmt redirect), 15fa60faead85b0e (auth) and
        # 2f3468f2385971cc (stlogin, GET getUserBySsoToken) have no child and no peer named
    },
}

UI_01 = {
    "nodes": {
        ("client", "client", None),
        ("service-x", "service", None),
        ("service-y", "service", None),
    },
    "edges": {
        # span 0002 "test-general-conversion" (service-x, no span.kind tag): a kind-less root.
        # The second span with id 0002 is quarantined (its id is taken).
        ("client", "service-x", "virtual_node"): (RELAXED, 1, 0),
        # 0003 (CHILD_OF 0002) and 0004 (CHILD_OF a span of trace 00ff, then CHILD_OF 0002 in
        # this trace, which is its parent), both service-y, no kinds; 0005 is under 0004 in
        # service-y. Jaeger's dependencies count these two links too
        ("service-x", "service-y", "direct"): (RELAXED, 2, 0),
    },
}

ERROR_TIMEOUT_MASKED = {
    "nodes": {
        ("load-generator", "service", None),
        ("frontend-proxy", "service", None),
        ("frontend", "service", None),
        ("cart", "service", None),
        ("product-catalog", "service", None),
        ("valkey-cart", "database", None),
        ("astronomy-db", "database", None),
    },
    "edges": {
        # The root is load-generator's CLIENT span 3e77d7cad1306af6: no caller to draw.
        # 3e77… → frontend-proxy's SERVER 247a43490cfe60cd (ERROR, 504), and
        # CLIENT d4cd047e8243e430 → SERVER 8098b17b3047cba7 and 9b31b701fe7535d8
        ("load-generator", "frontend-proxy", "direct"): (STRICT, 3, 1),
        # Envoy's egress CLIENT spans dc512c12db4bc651, 70285c4bad5fe3c5, fb403de242b50b18 →
        # frontend's SERVER 252303db5f016cf2, 84af5b43ba47cb99, 909a94f934468e91 (the last
        # one timed out at the proxy, but neither span of the pair is an error)
        ("frontend-proxy", "frontend", "direct"): (STRICT, 3, 0),
        # CLIENT d70b98f0f2365fa9 GetProduct → SERVER ae2f5902cdf8d312
        ("frontend", "product-catalog", "direct"): (STRICT, 1, 0),
        # CLIENT 95abac0c85c31e68 AddItem → 1f618c1631303634, 5d3f329aef79e86f GetCart →
        # a29fc85abe5176c8
        ("frontend", "cart", "direct"): (STRICT, 2, 0),
        # redis CLIENT 2743b416bcc31d52, fe4bc855e53342be, 44e9dbeb9efb712d, bf0eab1da213a619:
        # server.address valkey-cart, db.system redis
        ("cart", "valkey-cart", "database"): (STRICT, 4, 0),
        # CLIENT 27463993cedb6a6f: server.address astronomy-db, db.system.name postgresql
        ("product-catalog", "astronomy-db", "database"): (STRICT, 1, 0),
    },
}

SIBLING_ERRORS = {
    "nodes": {
        ("client", "client", None),
        ("checkout", "service", None),
        ("payment", "service", None),
        ("email", "service", None),
    },
    "edges": {
        # a1b2c3d4e5f60718: checkout's root SERVER span PlaceOrder, status ERROR
        ("client", "checkout", "virtual_node"): (STRICT, 1, 1),
        # CLIENT c3d4e5f60718293a Charge (ERROR) → payment's span d4e5f60718293a4b, which the
        # file calls a CLIENT span too: the kinds do not pair, the parent is the failed call
        ("checkout", "payment", "direct"): (RELAXED, 1, 1),
        # CLIENT e5f60718293a4b5c SendOrderConfirmation (ERROR) → email's CLIENT f60718293a4b5c6d
        ("checkout", "email", "direct"): (RELAXED, 1, 1),
        # CLIENT b2c3d4e5f6071829 GetCart and the two leaves name no peer: no edge
    },
}

BY_HAND = {
    ("zipkin_v2", "ascend.json"): ASCEND,
    ("zipkin_v2", "simple-db-p6.json"): SIMPLE_DB,
    ("zipkin_v2", "messaging-kafka.json"): MESSAGING_KAFKA,
    ("zipkin_v2", "smartthings-oauth-authorization.json"): SMARTTHINGS,
    ("jaeger_json", "ui_01.json"): UI_01,
    ("otlp_json", "error_timeout_masked.json"): ERROR_TIMEOUT_MASKED,
    ("otlp_json", "sibling_errors.json"): SIBLING_ERRORS,
}
FILES = [pytest.param(parts, id=parts[1]) for parts in BY_HAND]


def graph_of(engine: Engine) -> tuple[dict, set, dict]:
    """The whole graph view over all time, its nodes and its edges in the shapes above."""
    with engine.connect() as conn:
        view = metrics.graph_view(conn, queries.Window())
    nodes = {(n["id"], n["kind"], n["parent"]) for n in view["nodes"]}
    edges = {
        (e["client"], e["server"], e["connection_type"]): (
            tuple(e["sources"]),
            e["count"],
            e["errors"],
        )
        for e in view["edges"]
    }
    return view, nodes, edges


def ingest_one(engine: Engine, registry, parts: tuple[str, str]) -> None:
    """Ingest one corpus file, which must store spans and report no problem."""
    result = ingest(engine, [corpus(*parts)], registry)
    assert result.problems == []
    assert result.inserted > 0


@pytest.mark.parametrize("parts", FILES)
def test_the_graph_of_a_corpus_file_is_the_one_worked_out_by_hand(engine, registry, parts):
    ingest_one(engine, registry, parts)
    _, nodes, edges = graph_of(engine)
    assert edges == BY_HAND[parts]["edges"]
    assert nodes == BY_HAND[parts]["nodes"]


def test_kafka_queue_lag_is_measured_for_the_consumers_whose_producer_is_known(engine, registry):
    ingest_one(engine, registry, ("zipkin_v2", "messaging-kafka.json"))
    view, _, _ = graph_of(engine)
    lags = {(e["client"], e["server"]): e["lag_count"] for e in view["edges"]}
    assert lags == {
        ("servicea", "kafka/messages"): 0,
        ("servicea", "kafka/central.messages"): 0,
        ("servicea", "kafka/command-messages"): 0,
        # the root poll 0562809467078eab has no producer; the other three have theirs
        ("kafka/messages", "servicea"): 3,
        ("kafka/messages", "serviceb"): 3,
    }


@pytest.mark.parametrize("parts", FILES)
def test_the_graph_of_a_corpus_file_is_the_same_on_postgresql(pg_engine, engine, registry, parts):
    for target in (pg_engine, engine):
        ingest_one(target, registry, parts)
    view, nodes, edges = graph_of(pg_engine)
    assert edges == BY_HAND[parts]["edges"]
    assert nodes == BY_HAND[parts]["nodes"]
    assert view == graph_of(engine)[0]  # latencies, rates and lags too


#: Every file of the three trace folders: (collector, spans stored, quarantined, spans of a
#: resource without a service name).
EVERY_FILE = {
    "zipkin_v2/ascend.json": ("zipkin_v2", 8, 0, 0),
    "zipkin_v2/envoy.json": ("zipkin_v2", 1, 0, 1),  # Envoy's local endpoint has no service
    "zipkin_v2/messaging-kafka.json": ("zipkin_v2", 28, 0, 0),
    "zipkin_v2/simple-db-p6.json": ("zipkin_v2", 5, 0, 0),
    "zipkin_v2/skew.json": ("zipkin_v2", 4, 0, 0),
    # 175 objects: one shared span sent as 3 fragments by one pusher and 2 by another
    "zipkin_v2/smartthings-oauth-authorization.json": ("zipkin_v2", 172, 0, 0),
    "jaeger_json/oltp2jaeger-multi-out.json": ("jaeger_json", 4, 0, 0),
    "jaeger_json/trace_success.json": ("jaeger_json", 2, 0, 0),
    "jaeger_json/tracegraph-testTrace.json": ("jaeger_json", 11, 0, 0),
    "jaeger_json/ui_01.json": ("jaeger_json", 4, 1, 0),  # two different spans with one id
    "otlp_json/error_timeout_masked.json": ("otlp_json", 26, 0, 0),
    # the capture's label, not a trace: the file is quarantined as a whole
    "otlp_json/error_timeout_masked.manifest.json": (None, 0, 1, 0),
    "otlp_json/otel_traces_01.json": ("otlp_json", 4, 0, 0),
    "otlp_json/otlp2jaeger-in-error.json": ("otlp_json", 1, 0, 1),  # an empty resource
    "otlp_json/sibling_errors.json": ("otlp_json", 6, 0, 0),
    "otlp_json/trace.json": ("otlp_json", 1, 0, 0),
}
QUARANTINED = {
    ("error_timeout_masked.manifest.json", "byte 0"): "not in any known format (tried ",
    ("ui_01.json", "spans[1]"): "spanID '0000000000000002' is already used in this trace",
}


def test_every_trace_file_of_the_corpus_ingests_without_a_problem(engine, registry):
    folders = [corpus(name) for name in ("zipkin_v2", "jaeger_json", "otlp_json")]
    result = ingest(engine, folders, registry)
    assert result.problems == []
    got = {
        Path(r.path).relative_to(CORPUS).as_posix(): (
            r.collector,
            r.inserted,
            r.quarantined,
            r.unknown_service,
        )
        for r in result.reports
    }
    assert got == EVERY_FILE
    assert all(r.error is None and r.duplicates == 0 for r in result.reports)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source, position, reason FROM quarantine")).all()
    reasons = {(Path(source).name, position): reason for source, position, reason in rows}
    assert reasons.keys() == QUARANTINED.keys()
    for key, start in QUARANTINED.items():
        assert reasons[key].startswith(start), reasons[key]

    view, _, _ = graph_of(engine)
    assert view["nodes"] and view["edges"]
    # a rebuild from the stored spans gives the rollups ingest kept
    kept = rollup_table(engine)
    rollups.rebuild(engine)
    assert rollup_table(engine) == kept
    # and a second run stores nothing new
    again = ingest(engine, folders, registry)
    assert (again.inserted, again.problems) == (0, [])
