"""Root spans joined with the gateway requests that carried them, whichever is read first: by trace
id, else by method, path and time; the edges of both kinds of evidence counted once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from clew import metrics, store
from clew.pipeline import ingest, joins, rollups
from clew.records import GatewayRequest
from clew.store import queries, route_aliases, route_parameters
from collectors import Registry, load_registry
from tests import otlp
from tests.clew.test_gateway_ingest import LinesOfRequests, request
from tests.clew.test_rollups import CLIENT, SERVER, assert_same_rollups, kinds_of, rollup_table

MS = 1_000_000
MINUTE = 60_000 * MS
GET = "GET /v1/payments/{id}"


def payment_trace(t: int, start_ms: float, *, failed: bool = False) -> dict:
    """One request into payments-api (its root span, with the path the gateway logged) and its
    call to the ledger, which fails when ``failed``."""
    path = f"/v1/payments/{8800 + t}"
    status = 502 if failed else 200
    return otlp.request(
        {
            "payments-api": [
                otlp.span(
                    t,
                    1,
                    kind=SERVER,
                    name="GET /v1/payments/{id}",
                    start_ms=start_ms,
                    duration_ms=20,
                    error=failed,
                    **{
                        "http.request.method": "GET",
                        "http.route": "/v1/payments/{id}",
                        "url.path": path,
                        "http.response.status_code": status,
                    },
                ),
                otlp.span(
                    t,
                    2,
                    1,
                    kind=CLIENT,
                    name="POST",
                    start_ms=start_ms + 1,
                    duration_ms=15,
                    error=failed,
                    **{"http.request.method": "POST"},
                ),
            ],
            "ledger": [
                otlp.span(
                    t,
                    3,
                    2,
                    kind=SERVER,
                    name="POST /entries",
                    start_ms=start_ms + 2,
                    duration_ms=12,
                    error=failed,
                    **{
                        "http.request.method": "POST",
                        "http.route": "/entries",
                        "http.response.status_code": 500 if failed else 201,
                    },
                ),
            ],
        }
    )


def logged(t: int, start_ms: float, *, traced: bool, **fields) -> GatewayRequest:
    """The gateway's log of trace ``t``'s request: it began 3 ms before the root span."""
    values = {
        "start_ns": otlp.BASE_NS + int((start_ms - 3) * MS),
        "path": f"/v1/payments/{8800 + t}",
        "duration_ns": 26 * MS,
        "upstream_duration_ns": 21 * MS,
        "trace_id": f"{t:032x}" if traced else None,
    }
    return request(0, **(values | fields))


def landscape(tmp_path: Path) -> tuple[list[dict], dict[int, GatewayRequest]]:
    """Six traces 100 ms apart (the fourth fails); the gateway logged traces 1–4 with their trace
    ids, 5 without, 6 not at all (it came from inside), and request 7 that it answered itself."""
    traces = [payment_trace(t, t * 100, failed=t == 4) for t in range(1, 7)]
    requests = {t: logged(t, t * 100, traced=t <= 4) for t in range(1, 6)}
    requests[4] = requests[4]._replace(status=502)
    requests[7] = request(7, start_ns=otlp.BASE_NS + 50 * MS, status=401, upstream=None)
    return traces, requests


def registry_with(requests: dict[int, GatewayRequest]) -> Registry:
    otlp_json = load_registry()["otlp_json"]
    return Registry([otlp_json, LinesOfRequests(requests)])


def write_files(tmp_path: Path, traces: list[dict], requests: dict) -> tuple[Path, Path]:
    spans = otlp.write_lines(tmp_path / "traces.jsonl", traces)
    log = tmp_path / "access.log"
    log.write_text("".join(f"{n}\n" for n in requests))
    return spans, log


def ingest_in_turn(engine, registry: Registry, paths: list[Path]) -> None:
    for path in paths:
        ingest(engine, [path], registry, format_name=_format(path), worker=False)


def _format(path: Path) -> str:
    return "otlp_json" if path.suffix == ".jsonl" else "test_gateway"


@pytest.mark.parametrize("logs_first", [True, False], ids=["logs-first", "traces-first"])
def test_a_logged_request_names_its_root_span_s_caller(engine, tmp_path: Path, logs_first):
    traces, requests = landscape(tmp_path)
    spans, log = write_files(tmp_path, traces, requests)
    ingest_in_turn(engine, registry_with(requests), [log, spans] if logs_first else [spans, log])

    cells = rollup_table(engine)
    minute = otlp.BASE_NS // MINUTE
    # Traces 1–4 by trace id and 5 by method, path and time: the gateway is their caller.
    named = cells[(minute, "edge", "payments-api", "direct", GET, "trace")]
    assert named["sums"][:2] == (5, 1)
    # Trace 6, which no gateway logged, keeps the generic caller.
    assert cells[(minute, "client", "payments-api", "virtual_node", GET, "trace")]["sums"][:2] == (
        1,
        0,
    )
    # The gateway's own evidence: what it logged, per consumer and upstream.
    assert cells[(minute, "partner-a", "edge", "virtual_node", GET, "gateway")]["sums"][:2] == (
        6,
        1,
    )
    assert cells[(minute, "edge", "payments-api", "direct", GET, "gateway")]["sums"][:2] == (5, 1)
    assert kinds_of(engine)["edge"] == "gateway"
    with engine.connect() as conn:
        (path,) = queries.failing_paths(conn, queries.Window())
    assert path.path[0] == "payments-api"
    assert (path.failing_client, path.failing_server) == ("payments-api", "ledger")


def test_the_join_holds_whichever_file_is_read_first_and_a_rebuild_keeps_it(tmp_path: Path, engine):
    traces, requests = landscape(tmp_path)
    spans, log = write_files(tmp_path, traces, requests)
    registry = registry_with(requests)
    tables = []
    for n, order in enumerate(([log, spans], [spans, log])):
        other = store.open_engine(str(tmp_path / f"order{n}.db"))
        store.upgrade(other)
        ingest_in_turn(other, registry, order)
        tables.append(rollup_table(other))
        if n == 1:
            rollups.rebuild(other, root_callers=joins.callers)
            assert_same_rollups(rollup_table(other), tables[0])
        other.dispose()
    assert_same_rollups(tables[1], tables[0])


def test_spans_in_several_batches_are_joined_once(engine, tmp_path: Path):
    traces, requests = landscape(tmp_path)
    spans, log = write_files(tmp_path, traces, requests)
    registry = registry_with(requests)
    ingest(engine, [log], registry, format_name="test_gateway", worker=False)
    ingest(engine, [spans], registry, format_name="otlp_json", batch_spans=2, worker=False)
    cells = rollup_table(engine)
    minute = otlp.BASE_NS // MINUTE
    assert cells[(minute, "edge", "payments-api", "direct", GET, "trace")]["sums"][:2] == (5, 1)


def test_time_matches_pair_nearest_first_and_one_to_one():
    """Two requests for one path 5 ms apart and two root spans: each span its own request; a span
    outside every request's time (beyond the clock skew allowed) none."""

    def root(t: int, start_ns: int) -> tuple:
        row = [None] * 22
        row[:8] = [f"{t:032x}", "1" * 16, None, "payments-api", "GET", 2, start_ns, 20 * MS]
        row[10], row[13] = "GET", "/v1/payments/1"
        return tuple(row)

    base = 10**18
    a = request(1, start_ns=base, gateway="gw-a", path="/v1/payments/1", duration_ns=30 * MS)
    b = request(2, start_ns=base + 5 * MS, gateway="gw-b", path="/v1/payments/1")
    spans = [
        root(1, base + 6 * MS),  # nearer b's start, so b; a goes to the other
        root(2, base + 2 * MS),
        root(3, base + 40 * MS + joins.SKEW_NS + 1),  # after both ended, beyond the skew
    ]
    by_key = {("GET", "/v1/payments/1"): [a, b]}
    found = joins._pair_by_time(spans, by_key)
    assert found == {(f"{1:032x}", "1" * 16): b, (f"{2:032x}", "1" * 16): a}


def test_an_edge_both_evidences_saw_is_counted_once(engine, tmp_path: Path):
    traces, requests = landscape(tmp_path)
    spans, log = write_files(tmp_path, traces, requests)
    ingest_in_turn(engine, registry_with(requests), [spans, log])
    with engine.connect() as conn:
        edges = {(e.client, e.server): e for e in queries.edge_totals(conn, queries.Window())}
        series = queries.minute_series(conn, queries.Window(), "edge", "payments-api")
        endpoints = queries.endpoint_totals(conn, queries.Window(), server="payments-api")
        entries = metrics.entry_operations(conn, queries.Window())
    both = edges[("edge", "payments-api")]
    assert both.sources == {"trace", "gateway"}
    assert (both.count, both.errors) == (5, 1)  # not 10 and 2
    assert [(m.count, m.errors) for m in series] == [(5, 1)]
    by_client = {(t.client, endpoint): t.count for endpoint, t in endpoints}
    assert by_client == {("edge", GET): 5, ("client", GET): 1}
    # Entry operations are the root spans, whoever called them: all six.
    (entry,) = entries
    assert (entry["service"], entry["count"], entry["errors"]) == ("payments-api", 6, 1)
    assert entry["callers"] == ["client", "edge"]


def test_the_gateway_s_overhead_is_its_whole_time_less_the_upstream_s(engine, tmp_path: Path):
    traces, requests = landscape(tmp_path)
    requests[5] = requests[5]._replace(upstream_duration_ns=None)  # this line gives one time
    spans, log = write_files(tmp_path, traces, requests)
    ingest_in_turn(engine, registry_with(requests), [spans, log])
    with engine.connect() as conn:
        view = metrics.graph_view(conn, queries.Window())
    edges = {(e["client"], e["server"]): e for e in view["edges"]}
    upstream = edges[("edge", "payments-api")]
    # Requests 1-4 logged both times (26 and 21 ms); the histogram holds 5 ms within 2 %.
    assert upstream["overhead_count"] == 4
    assert upstream["overhead_p50_ms"] == pytest.approx(5.0, rel=0.02)
    assert upstream["overhead_p95_ms"] == pytest.approx(5.0, rel=0.02)
    assert upstream["lag_count"] == 0  # not a queue's lag
    assert edges[("partner-a", "edge")]["overhead_count"] == 0


def test_the_family_that_saw_more_of_an_edge_s_requests_is_the_one_counted():
    """A sampled trace stream sees fewer of a gateway's requests; a gateway log missing for part of
    the window fewer than the traces."""
    trace = queries.EdgeTotals("edge", "api", "direct", {"trace"}, count=3, errors=1)
    gateway = queries.EdgeTotals("edge", "api", "direct", {"gateway"}, count=7, errors=2)
    chosen = queries.one_family({"trace": trace, "gateway": gateway})
    assert (chosen.count, chosen.errors, chosen.sources) == (7, 2, {"trace", "gateway"})
    more_traces = queries.EdgeTotals("edge", "api", "direct", {"trace_relaxed"}, count=9)
    chosen = queries.one_family({"trace": more_traces, "gateway": gateway})
    assert (chosen.count, chosen.sources) == (9, {"trace_relaxed", "gateway"})
    tie = queries.EdgeTotals("edge", "api", "direct", {"trace"}, count=7)
    assert queries.one_family({"trace": tie, "gateway": gateway}).errors == 2  # the gateway's


def test_requests_carrying_other_traces_ids_name_nothing(engine, tmp_path: Path):
    traces, _ = landscape(tmp_path)
    strangers = {
        n: logged(n, n * 100, traced=True, trace_id=f"{n + 100:032x}", path="/elsewhere")
        for n in range(1, 7)
    }
    spans, log = write_files(tmp_path, traces, strangers)
    ingest_in_turn(engine, registry_with(strangers), [spans, log])
    cells = rollup_table(engine)
    assert not [key for key in cells if key[1] == "edge" and key[5] == "trace"]
    minute = otlp.BASE_NS // MINUTE
    assert cells[(minute, "client", "payments-api", "virtual_node", GET, "trace")]["sums"][0] == 6


def test_paths_with_many_values_at_one_position_collapse_and_stay_collapsed(engine, tmp_path):
    """Names in paths (no heuristic knows them) become ``{param}`` once cardinality has seen 50 at
    one position under a gateway; the decision is kept, so a later file's paths are templated
    with it from their first line."""
    names = [f"user{chr(97 + n % 26)}{chr(97 + n // 26)}" for n in range(80)]
    made = {
        n: request(n, path=f"/users/{name}/profile", trace_id=None) for n, name in enumerate(names)
    }
    registry = Registry([LinesOfRequests(made)])
    first = tmp_path / "first.log"
    first.write_text("".join(f"{n}\n" for n in range(60)))
    ingest(engine, [first], registry, batch_spans=10, worker=False)
    cells = rollup_table(engine)
    upstream = {
        k[4]: v["sums"][0] for k, v in cells.items() if k[1] == "edge" and k[5] == "gateway"
    }
    collapsed = "GET /users/{param}/profile"
    # The 50th distinct name tips the position; it and the ten after it are templated with it.
    assert upstream[collapsed] == 11
    assert sum(1 for endpoint in upstream if endpoint != collapsed) == 49
    with engine.connect() as conn:
        kept = route_parameters.load(conn)
    assert kept == [("edge", "GET", "/users")]

    later = tmp_path / "later.log"
    later.write_text("".join(f"{n}\n" for n in range(60, 80)))
    ingest(engine, [later], registry, worker=False)
    cells = rollup_table(engine)
    upstream = {
        k[4]: v["sums"][0] for k, v in cells.items() if k[1] == "edge" and k[5] == "gateway"
    }
    assert upstream[collapsed] == 31
    with engine.connect() as conn:
        endpoints = {
            route
            for (route,) in conn.execute(
                text("SELECT route FROM endpoints WHERE service = 'payments-api'")
            )
        }
    assert "/users/{param}/profile" in endpoints


def test_an_ingest_stopped_between_files_counts_on_where_it_stopped(engine, tmp_path):
    """What cardinality has counted but not decided yet is kept with each batch: an ingest of two
    files and two ingests of one file each (a run killed between them, then resumed) decide
    alike. Thirty names in each: the 50th, in the second file, tips the position either way."""
    names = [f"user{chr(97 + n % 26)}{chr(97 + n // 26)}" for n in range(60)]
    made = {
        n: request(n, path=f"/users/{name}/profile", trace_id=None) for n, name in enumerate(names)
    }
    registry = Registry([LinesOfRequests(made)])
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    first.write_text("".join(f"{n}\n" for n in range(30)))
    second.write_text("".join(f"{n}\n" for n in range(30, 60)))
    ingest(engine, [first], registry, worker=False)
    ingest(engine, [second], registry, worker=False)
    at_once = store.open_engine(str(tmp_path / "at-once.db"))
    store.upgrade(at_once)
    ingest(at_once, [first, second], registry, worker=False)
    learnt = []
    for target in (engine, at_once):
        with target.connect() as conn:
            assert route_parameters.load(conn) == [("edge", "GET", "/users")]
            counting = route_parameters.load_counting(conn)
        learnt.append([(position, digests) for position, digests, _ in counting])
        assert ("edge", "GET", "/users") not in dict(learnt[-1])  # decided: no longer counted
    assert learnt[0] == learnt[1]
    assert rollup_table(engine) == rollup_table(at_once)
    at_once.dispose()


def test_a_gateway_s_endpoints_take_the_route_its_upstream_names(engine, tmp_path: Path):
    """The gateway templates ``/v1/payments/8801`` as ``/v1/payments/{id}``; the span that served
    it says ``/v1/payments/{payment_id}``: the endpoint is one, by the span's name, whichever was
    read first."""
    for order in ("logs-first", "traces-first"):
        traces, requests = landscape(tmp_path)
        renamed = orjson.loads(orjson.dumps(traces).replace(b"{id}", b"{payment_id}"))
        spans, log = write_files(tmp_path, renamed, requests)
        other = store.open_engine(str(tmp_path / f"{order}.db"))
        store.upgrade(other)
        ingest_in_turn(
            other, registry_with(requests), [log, spans] if order == "logs-first" else [spans, log]
        )
        with other.connect() as conn:
            endpoints = queries.endpoint_totals(conn, queries.Window(), server="payments-api")
            taught = route_aliases.load(conn)
        other.dispose()
        assert taught == {("edge", "GET", "/v1/payments/{id}"): "/v1/payments/{payment_id}"}
        by_client = {(t.client, endpoint): (t.count, t.sources) for endpoint, t in endpoints}
        assert by_client == {
            ("edge", "GET /v1/payments/{payment_id}"): (5, {"gateway", "trace"}),
            ("client", "GET /v1/payments/{payment_id}"): (1, {"trace"}),
        }, order
