"""Span pairing into edges: client/server, databases, named virtual peers, root callers."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from clew import metrics, pipeline, store
from clew.pipeline import ingest, rollups
from clew.store import histogram, queries
from clew.store.cells import applied, settled
from collectors import Source
from tests import otlp
from tests.conftest import BACKENDS, corpus, engine_of
from tests.stored import stored_spans

#: The services table's columns but its id (PostgreSQL's ids go on across tests).
SERVICE_COLUMNS = "name, kind, namespace, environment, version, owner, system, lifecycle, parent"


@pytest.fixture(params=BACKENDS)
def engine(request, engine):
    """Every test here runs on SQLite and on PostgreSQL."""
    return engine_of(request, engine)


SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


def landscape(traces: range = range(1, 4), spread_ms: int = 1000) -> list[dict]:
    """Traces of shop → orders (with a DB and an external call), and a message to billing; every
    third fails. Trace ``t`` starts at ``t * spread_ms``."""
    shop, orders, billing = [], [], []
    for t in traces:
        shop.append(
            otlp.span(
                t,
                1,
                kind=SERVER,
                name="GET /cart",
                http__route="/cart",
                http__request__method="GET",
                start_ms=t * spread_ms,
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
                start_ms=t * spread_ms + 1,
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
                start_ms=t * spread_ms + 2,
                duration_ms=40,
                error=t % 3 == 0,
                **{
                    "http.route": "/orders",
                    "http.request.method": "POST",
                    "http.response.status_code": 500 if t % 3 == 0 else 201,
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
                start_ms=t * spread_ms + 3,
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
                start_ms=t * spread_ms + 9,
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
                start_ms=t * spread_ms + 30,
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
                start_ms=t * spread_ms + 40,
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
        ("orders", "kafka/orders", "messaging_system"),  # producer → topic → consumer
        ("kafka/orders", "billing", "messaging_system"),
    }
    direct = edges[("shop", "orders", "direct")]
    assert (direct["count"], direct["errors"], direct["error_ratio"]) == (3, 1, round(1 / 3, 6))
    assert abs(direct["p50_ms"] - 50) / 50 <= 0.02  # the caller's latency
    tax = edges[("orders", "tax-api", "virtual_node")]
    assert (tax["errors"], tax["client_errors"]) == (0, 3)  # 4xx are counted apart
    consumed = edges[("kafka/orders", "billing", "messaging_system")]
    assert abs(consumed["p99_ms"] - 15) / 15 <= 0.02  # the consumer's processing time
    assert abs(edges[("orders", "kafka/orders", "messaging_system")]["p99_ms"] - 2) / 2 <= 0.02
    with engine.connect() as conn:
        lags = conn.execute(
            text("SELECT lag_count, lag_sum_ns, lag_histogram FROM edge_rollups WHERE client = :t"),
            {"t": "kafka/orders"},
        ).all()
    assert sum(n for n, _, _ in lags) == 3  # consumer start − producer end: 40 − (30 + 2) ms
    assert sum(total for _, total, _ in lags) == 3 * 8_000_000
    assert kinds_of(engine) == {
        "shop": "service",
        "orders": "service",
        "billing": "service",
        "orders-db": "database",
        "tax-api": "external",
        "client": "client",
        "kafka": "broker",
        "kafka/orders": "topic",
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


ROLLUP_COLUMNS = (
    "minute, client, server, connection_type, endpoint, source, count, errors, client_errors,"
    " duration_sum_ns, duration_max_ns, histogram, lag_count, lag_sum_ns, lag_histogram"
)


def rollup_table(engine) -> dict[tuple, dict]:
    """Every stored rollup cell: key → its sums, maximum, histogram and queue lag."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {ROLLUP_COLUMNS} FROM edge_rollups")).all()
    return {
        tuple(r[:6]): {
            "sums": tuple(r[6:10]),
            "max": r[10],
            "histogram": histogram.loads(r[11]),
            "lag": (r[12], r[13], histogram.loads(r[14])),
        }
        for r in rows
    }


def assert_same_rollups(got: dict, want: dict) -> None:
    """Equal cells, maxima included, named cell by cell."""
    assert got.keys() == want.keys()
    for key, cell in want.items():
        assert got[key] == cell, key


def single_span_requests(requests: list[dict]) -> list[dict]:
    """Each span of ``requests`` as a request of its own, under its own resource."""
    singles = []
    for req in requests:
        for resource_spans in req["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    singles.append(
                        {
                            "resourceSpans": [
                                {
                                    "resource": resource_spans["resource"],
                                    "scopeSpans": [
                                        {"scope": scope_spans["scope"], "spans": [span]}
                                    ],
                                }
                            ]
                        }
                    )
    return singles


def ingest_shuffled(
    engine,
    registry,
    folder: Path,
    requests: list[dict],
    seed: int,
    cuts: int = 4,
    batch: int = 6,
    worker: bool | None = None,
) -> int:
    """Every span of ``requests`` as a request of its own, shuffled, ingested as ``cuts + 1``
    files in batches of 1 to ``batch`` spans (parsed in a worker process with ``worker``);
    returns how many files."""
    shuffled = single_span_requests(requests)
    rng = random.Random(seed)
    rng.shuffle(shuffled)
    cut = sorted(rng.sample(range(1, len(shuffled)), cuts))
    for part, (start, end) in enumerate(zip([0, *cut], [*cut, len(shuffled)], strict=True)):
        path = otlp.write_lines(folder / f"part{part}.jsonl", shuffled[start:end])
        ingest(engine, [path], registry, batch_spans=rng.randint(1, batch), worker=worker)
    return cuts + 1


def clean_pass(folder: Path, requests: list[dict], registry):
    """A fresh store under ``folder`` holding ``requests`` ingested in one pass."""
    folder.mkdir()
    clean = store.open_engine(str(folder / "clew.db"))
    store.upgrade(clean)
    ingest(clean, [otlp.write_lines(folder / "all.jsonl", requests)], registry)
    return clean


def more_traces() -> list[dict]:
    """Twelve traces over five minutes: more cells to get right."""
    return landscape(range(1, 13), spread_ms=25_000)


@pytest.mark.parametrize(
    ("engine", "seed", "worker"),
    [
        *(("sqlite", seed, seed > 4) for seed in range(1, 7)),
        # The orders are the same Python's on either store: two of them on PostgreSQL.
        *(
            pytest.param("postgresql", seed, seed > 4, marks=pytest.mark.postgres)
            for seed in (1, 5)
        ),
    ],
    indirect=["engine"],
)
def test_spans_in_any_order_and_batching_give_the_rollups_of_one_clean_pass(
    engine, registry, tmp_path: Path, seed: int, worker: bool
):
    """Also through the parse worker, whose batches carry their spans as encoded chunks."""
    parts = ingest_shuffled(engine, registry, tmp_path, more_traces(), seed, worker=worker)
    # a re-run of every file, renamed, adds nothing
    for part in range(parts):
        (tmp_path / f"part{part}.jsonl").rename(tmp_path / f"again{part}.jsonl")
    assert ingest(engine, [tmp_path], registry, worker=worker).inserted == 0
    late = rollup_table(engine)

    clean = clean_pass(tmp_path / "clean", more_traces(), registry)
    assert stored_spans(engine) == stored_spans(clean)
    want = rollup_table(clean)
    assert sum(cell["sums"][0] for cell in want.values()) == 12 * 6  # 6 edges per trace
    assert_same_rollups(late, want)

    rollups.rebuild(engine)
    assert rollup_table(engine) == want  # a rebuild reads whole traces


def test_parsing_in_a_worker_process_stores_the_same_as_parsing_here(
    engine, registry, tmp_path: Path
):
    path = otlp.write_lines(tmp_path / "t.jsonl", single_span_requests(more_traces()))
    result = ingest(engine, [path], registry, batch_spans=5, worker=True)
    assert (result.inserted, result.quarantined, result.problems) == (84, 0, [])

    here_dir = tmp_path / "here"
    here_dir.mkdir()
    here = store.open_engine(str(here_dir / "clew.db"))
    store.upgrade(here)
    ingest(here, [path], registry, batch_spans=5, worker=False)
    assert_same_rollups(rollup_table(engine), rollup_table(here))
    assert stored_spans(engine) == stored_spans(here)
    with engine.connect() as a, here.connect() as b:
        assert (
            a.execute(text(f"SELECT {SERVICE_COLUMNS} FROM services ORDER BY name")).all()
            == b.execute(text(f"SELECT {SERVICE_COLUMNS} FROM services ORDER BY name")).all()
        )


def test_a_maximum_taken_out_is_unknown_until_read_back_unless_a_copy_of_it_stays():
    cells = rollups.Contributions()
    row = [None] * len(rollups.Span._fields)
    row[rollups.KIND] = SERVER
    row[rollups.SERVICE] = "orders"
    row[rollups.NAME] = "GET /x"
    row[rollups.STATUS] = 0
    slow, fast = list(row), list(row)
    slow[rollups.TRACE], slow[rollups.SPAN], slow[rollups.START] = "a" * 32, "1" * 16, 0
    fast[rollups.TRACE], fast[rollups.SPAN], fast[rollups.START] = "b" * 32, "1" * 16, 0
    slow[rollups.DURATION], fast[rollups.DURATION] = 900_000_000, 10_000_000
    cells.add([slow, fast])
    (cell,) = cells.cells.values()
    assert (cell.count, cell.duration_max, cell.max_count) == (2, 900_000_000, 1)
    cells.add([slow], -1)  # the slow root span turned out to have a caller
    assert (cell.count, cell.taken_max, cell.taken_count) == (1, 900_000_000, 1)
    assert applied(None, cell)[4] is None  # the maximum went: read back from the traces
    slow_bucket = histogram.dumps({histogram.bucket_of(900_000_000): 3})
    stored = (3, 0, 0, 3 * 900_000_000, 900_000_000, slow_bucket, 0, 0, None)
    assert applied(stored, cell)[4] == 900_000_000  # the stored copy stays
    taken = rollups.Contributions()
    taken.add([slow], -1)
    (taken_cell,) = taken.cells.values()
    assert applied(stored, taken_cell)[4] is None  # it may have been the stored one
    cells.add([slow])  # the same span again (a correction adds the whole trace back)
    assert applied(None, cell)[4] == 900_000_000


def test_settled_extremes_are_exact_or_unknown():
    assert settled(500, 300, 1, 200, 1) == 500  # what went was below the maximum
    assert settled(500, 300, 1, 500, 1) is None  # the stored maximum (one copy known) went
    assert settled(500, 500, 1, 500, 1) == 500  # ...and came back with the change
    assert settled(None, 500, 2, 500, 1) == 500  # one of two copies added went
    assert settled(500, 300, 1, 600, 1) is None  # the store did not hold what went
    assert settled(500, 0, 0, 0, 0) == 500
    assert settled(None, 0, 0, 0, 0) is None
    assert settled(5, 7, 1, 5, 1, lowest=True) is None
    assert settled(5, 3, 1, 5, 1, lowest=True) == 3


@given(
    st.lists(st.integers(0, 6), max_size=6),
    st.lists(st.integers(0, 6), max_size=6),
    st.data(),
    st.booleans(),
)
def test_settled_extremes_are_those_of_the_values_left(
    stored: list[int], added: list[int], data: st.DataObject, lowest: bool
):
    """Whatever a change adds and takes out (of what was stored or added), ``settled`` gives the
    extreme of the values left or None, and None only when the extreme itself was taken out."""
    pool = stored + added
    drawn = data.draw(st.sets(st.integers(0, len(pool) - 1))) if pool else set()
    taken = [pool[i] for i in sorted(drawn)]
    left = [value for i, value in enumerate(pool) if i not in drawn]
    pick = min if lowest else max

    def extreme(values: list[int]) -> tuple[int, int]:
        best = pick(values, default=0)
        return best, values.count(best) if values else 0

    got = settled(pick(stored) if stored else None, *extreme(added), *extreme(taken), lowest=lowest)
    if got is not None:
        assert left and got == pick(left)
    if pool and (not taken or pick(taken) != pick(pool)):
        assert got == pick(pool)


UNSPECIFIED, INTERNAL = 0, 1


def test_spans_without_kinds_pair_in_the_relaxed_mode_recorded_as_such(
    engine, registry, tmp_path: Path
):
    """A Zipkin-like trace with no kinds: gateway → shop → stock, and shop's CLIENT call whose
    server side has no kind. Relaxed edges carry the source ``trace_relaxed``. A SERVER span
    under shop's INTERNAL span was called from shop's request too, with no client span to say so
    (Jaeger and Zipkin link it): a relaxed edge as well."""
    spans = {
        "gateway": [otlp.span(1, 1, kind=UNSPECIFIED, name="GET /", duration_ms=80)],
        "shop": [
            otlp.span(1, 2, 1, kind=UNSPECIFIED, name="GET /cart", start_ms=1, duration_ms=70),
            otlp.span(1, 4, 2, kind=CLIENT, name="GET", start_ms=2, duration_ms=30),
            otlp.span(1, 6, 2, kind=INTERNAL, name="render", start_ms=40, duration_ms=5),
        ],
        "stock": [
            otlp.span(1, 5, 4, kind=UNSPECIFIED, name="GET /stock", start_ms=3, duration_ms=25),
        ],
        "pricing": [
            otlp.span(1, 7, 6, kind=SERVER, name="GET /price", start_ms=41, duration_ms=3),
        ],
    }
    ingest(engine, [otlp.write_lines(tmp_path / "t.jsonl", [otlp.request(spans)])], registry)
    edges = edges_of(engine)
    assert {key: e["sources"] for key, e in edges.items()} == {
        ("client", "gateway", "virtual_node"): ["trace_relaxed"],  # a root without a kind
        ("gateway", "shop", "direct"): ["trace_relaxed"],
        ("shop", "stock", "direct"): ["trace_relaxed"],  # CLIENT → kind-less server side
        ("shop", "pricing", "direct"): ["trace_relaxed"],  # INTERNAL → SERVER: no client span
    }
    # the child's latency when the parent may be more than the call; the caller's for CLIENT
    assert abs(edges[("gateway", "shop", "direct")]["p50_ms"] - 70) / 70 <= 0.02
    assert abs(edges[("shop", "stock", "direct")]["p50_ms"] - 30) / 30 <= 0.02
    assert abs(edges[("shop", "pricing", "direct")]["p50_ms"] - 3) / 3 <= 0.02


def unpaired_kinds(trace: int = 1, start_ms: float = 0) -> list[dict]:
    """Parents and children across services whose kinds are not a caller and its callee, and
    kind-less spans that name their peer (shapes of the Zipkin and Jaeger corpus)."""
    t = start_ms
    spans = {
        "login": [
            otlp.span(
                trace, 1, kind=SERVER, name="POST /login", start_ms=t, duration_ms=100, error=True
            ),
            otlp.span(
                trace, 3, 1, kind=CLIENT, name="charge", start_ms=t + 30, duration_ms=40, error=True
            ),
            otlp.span(
                trace,
                7,
                1,
                kind=UNSPECIFIED,
                name="ledger",
                start_ms=t + 71,
                duration_ms=7,
                **{"peer.service": "ledger"},
            ),
            otlp.span(
                trace,
                8,
                1,
                kind=UNSPECIFIED,
                name="SELECT",
                start_ms=t + 80,
                duration_ms=2,
                **{"peer.service": "login-db", "db.system": "postgresql"},
            ),
            otlp.span(
                trace,
                9,
                1,
                kind=UNSPECIFIED,
                name="search",
                start_ms=t + 83,
                duration_ms=9,
                **{"peer.service": "search-lb"},
            ),
            otlp.span(
                trace,
                11,
                1,
                kind=UNSPECIFIED,
                name="cache",
                start_ms=t + 93,
                duration_ms=1,
                **{"server.address": "cache.internal"},
            ),
        ],
        # a redirect followed with the trace context but no client span (smartthings)
        "datamgmt": [
            otlp.span(
                trace,
                2,
                1,
                kind=SERVER,
                name="GET /authorize",
                start_ms=t + 5,
                duration_ms=20,
                **{"http.response.status_code": 302},
            ),
        ],
        # a CLIENT span under a CLIENT span of another service (sibling_errors)
        "payment": [otlp.span(trace, 4, 3, kind=CLIENT, name="charge", start_ms=t + 31)],
        "billing": [
            otlp.span(
                trace,
                5,
                1,
                kind=CONSUMER,
                name="orders process",
                start_ms=t + 50,
                **{"messaging.system": "kafka", "messaging.destination.name": "orders"},
            ),
        ],
        "audit": [otlp.span(trace, 6, 1, kind=CONSUMER, name="audit", start_ms=t + 60)],
        "search": [otlp.span(trace, 10, 9, kind=UNSPECIFIED, name="query", start_ms=t + 84)],
    }
    return [otlp.request({service: found}) for service, found in spans.items()]


def test_parents_and_children_whose_kinds_do_not_pair_are_relaxed_edges(
    engine, registry, tmp_path: Path
):
    ingest(engine, [otlp.write_lines(tmp_path / "t.jsonl", unpaired_kinds())], registry)
    edges = edges_of(engine)
    assert {key: (e["sources"], e["count"], e["errors"]) for key, e in edges.items()} == {
        ("client", "login", "virtual_node"): (["trace"], 1, 1),
        # SERVER → SERVER: the parent's error is its own request's, not this call's
        ("login", "datamgmt", "direct"): (["trace_relaxed"], 1, 0),
        # CLIENT → CLIENT: the parent is the call, and it failed
        ("login", "payment", "direct"): (["trace_relaxed"], 1, 1),
        # a consumer that names its topic is drawn from it, not paired with its parent
        ("kafka/orders", "billing", "messaging_system"): (["trace"], 1, 0),
        ("login", "audit", "direct"): (["trace_relaxed"], 1, 0),  # a consumer without a topic
        # kind-less spans naming their peer service; the search call has its server's span,
        # a bare address names no peer
        ("login", "ledger", "virtual_node"): (["trace_relaxed"], 1, 0),
        ("login", "login-db", "database"): (["trace_relaxed"], 1, 0),
        ("login", "search", "direct"): (["trace_relaxed"], 1, 0),
    }
    assert abs(edges[("login", "datamgmt", "direct")]["p50_ms"] - 20) / 20 <= 0.02  # the child's
    assert abs(edges[("login", "payment", "direct")]["p50_ms"] - 40) / 40 <= 0.02  # the call's
    assert edges[("login", "datamgmt", "direct")]["client_errors"] == 0  # a 302
    kinds = kinds_of(engine)
    assert (kinds["ledger"], kinds["login-db"]) == ("external", "database")
    assert "search-lb" not in kinds and "cache.internal" not in kinds


def test_a_call_its_own_service_answers_is_no_edge_and_names_no_virtual_peer(
    engine, registry, tmp_path: Path
):
    """datamgmt calling another datamgmt instance (smartthings' proxied calls): a service
    calling itself is not a dependency, and its server.address is not an external node."""
    spans = {
        "datamgmt": [
            otlp.span(1, 1, kind=SERVER, name="GET /api", duration_ms=50),
            otlp.span(
                1,
                2,
                1,
                kind=CLIENT,
                name="GET",
                start_ms=1,
                duration_ms=30,
                **{"server.address": "datamgmt.internal"},
            ),
            otlp.span(1, 3, 2, kind=SERVER, name="GET /proxied", start_ms=2, duration_ms=20),
        ]
    }
    ingest(engine, [otlp.write_lines(tmp_path / "t.jsonl", [otlp.request(spans)])], registry)
    assert set(edges_of(engine)) == {("client", "datamgmt", "virtual_node")}
    assert "datamgmt.internal" not in kinds_of(engine)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_relaxed_edges_come_out_the_same_whatever_order_the_spans_arrive_in(
    engine, registry, tmp_path: Path, seed: int
):
    requests = [r for t in range(1, 5) for r in unpaired_kinds(t, start_ms=t * 20_000)]
    ingest_shuffled(engine, registry, tmp_path, requests, seed, cuts=5, batch=4)
    late = rollup_table(engine)
    want = rollup_table(clean_pass(tmp_path / "clean", requests, registry))
    assert sum(cell["sums"][0] for cell in want.values()) == 4 * 8  # 8 edges per trace
    assert_same_rollups(late, want)
    rollups.rebuild(engine)
    assert rollup_table(engine) == want


def _message(trace: int, span: int, kind: int, service_start_ms: float, **extra) -> dict:
    return otlp.span(
        trace,
        span,
        kind=kind,
        name="orders " + ("publish" if kind == PRODUCER else "process"),
        start_ms=service_start_ms,
        duration_ms=2,
        **{"messaging.system": "kafka", "messaging.destination.name": "orders"},
        **extra,
    )


def _linked_consumer(trace: int, span: int, to: list[tuple[int, int]], start_ms: float) -> dict:
    consumer = _message(trace, span, CONSUMER, start_ms)
    consumer["links"] = [{"traceId": f"{t:032x}", "spanId": f"{s:016x}"} for t, s in to]
    return consumer


@pytest.mark.parametrize("order", ["producers first", "consumer first", "one batch"])
def test_span_links_measure_queue_lag_once_whatever_arrives_first(
    engine, registry, tmp_path: Path, order
):
    """A batch consumer (its own trace) takes two messages, each from another trace."""
    producers = otlp.request(
        {"orders": [_message(1, 1, PRODUCER, 0), _message(2, 2, PRODUCER, 100)]}
    )
    consumer = otlp.request({"billing": [_linked_consumer(3, 3, [(1, 1), (2, 2)], 500)]})
    parts = {
        "producers first": [[producers], [consumer]],
        "consumer first": [[consumer], [producers]],
        "one batch": [[producers, consumer]],
    }[order]
    for i, requests in enumerate(parts):
        ingest(engine, [otlp.write_lines(tmp_path / f"part{i}.jsonl", requests)], registry)
    ingest(engine, [otlp.write_lines(tmp_path / "again.jsonl", [producers, consumer])], registry)
    with engine.connect() as conn:
        (lags,) = conn.execute(
            text(
                "SELECT lag_count, lag_sum_ns, count FROM edge_rollups"
                " WHERE client = 'kafka/orders' AND server = 'billing'"
            )
        ).all()
    # lags: 500 − (0 + 2) and 500 − (100 + 2) ms, for one consumer span
    assert tuple(lags) == (2, 498_000_000 + 398_000_000, 1)
    kept = rollup_table(engine)
    rollups.rebuild(engine)
    assert rollup_table(engine) == kept


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_contributions_left_to_the_writer_for_any_share_of_traces_give_the_same_rollups(
    registry, tmp_path: Path, share: float
):
    """The worker computes some traces' contributions and the writer the rest, from the chunks
    the batch carried across the pipe."""
    requests = more_traces()
    path = otlp.write_lines(tmp_path / "t.jsonl", single_span_requests(requests))
    store_dir = tmp_path / "shared"
    store_dir.mkdir()
    engine = store.open_engine(str(store_dir / "clew.db"))
    store.upgrade(engine)
    source = Source(path)
    deferred = 0
    for item in pipeline.batches(registry["otlp_json"], source, 7, defer=lambda: share):
        if isinstance(item, pipeline.Batch):
            sent = pickle.loads(pickle.dumps(item))  # as the worker sends it
            assert sent.rows is None  # the spans came as chunks
            deferred += len(sent.deferred)
            with engine.begin() as conn:
                sent.write(conn, str(path))
    assert (deferred > 0) == (share > 0)
    clean = clean_pass(tmp_path / "c", requests, registry)
    assert stored_spans(engine) == stored_spans(clean)
    assert_same_rollups(rollup_table(engine), rollup_table(clean))
