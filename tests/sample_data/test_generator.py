"""The sample landscape generator: real OTLP/JSON and gateway logs of the same requests,
reproducible, with its problems planted."""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from tests.conftest import corpus
from tests.sample_data.conftest import END_NS, SAMPLE_DATA, read_traces

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@pytest.fixture(scope="module")
def by_id(landscape) -> dict[str, dict]:
    return {span["spanId"]: span for span in landscape[2]}


@pytest.fixture(scope="module")
def edges(landscape, by_id) -> dict[tuple[str, str], list[dict]]:
    """Server spans grouped by (calling service, called service), from CLIENT → SERVER parents."""
    grouped = defaultdict(list)
    for span in landscape[2]:
        parent = by_id.get(span.get("parentSpanId"))
        if span["kind"] == SERVER and parent and parent["kind"] == CLIENT:
            grouped[(parent["service"], span["service"])].append(span)
    return grouped


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_arguments_give_byte_identical_files(generator, tmp_path):
    first = generator.generate(tmp_path / "a", end_ns=END_NS, traces=200)
    second = generator.generate(tmp_path / "b", end_ns=END_NS, traces=200)
    assert first == second
    written = _files(tmp_path / "a")
    assert written == _files(tmp_path / "b")
    declared = [c["file"] for c in first["contracts"]["files"]] + first["catalog"]["files"]
    names = ["traces.otlp.jsonl", "kong-access.log", "nginx-access.log", "manifest.json"]
    names.append(first["waivers"]["file"])
    assert sorted(written) == sorted(names + declared)


def test_the_direct_encoder_writes_what_the_sdk_encoder_writes(generator, tmp_path, monkeypatch):
    """The traces file, byte for byte, whether its lines come from ``encode_otlp_json`` or from
    the SDK's OTLP encoder and protobuf's JSON mapping (``to_otlp_json``)."""
    direct = generator.generate(tmp_path / "direct", end_ns=END_NS, traces=150)
    monkeypatch.setattr(generator, "encode_otlp_json", generator.to_otlp_json)
    through_sdk = generator.generate(tmp_path / "sdk", end_ns=END_NS, traces=150)
    assert direct == through_sdk
    assert (tmp_path / "direct" / "traces.otlp.jsonl").read_bytes() == (
        tmp_path / "sdk" / "traces.otlp.jsonl"
    ).read_bytes()


def test_the_direct_encoder_agrees_on_what_the_landscape_never_draws(generator):
    """Events, links (to a remote and a local context), trace state, a status message, every
    attribute type (empty ones too), several resources and scopes, no scope at all."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_state=TraceState([("k", "v")]))
    local = SpanContext(0xABC, 0x123, is_remote=False)
    attributes = {
        "s": "",
        "b": False,
        "i": 0,
        "f": 0.0,
        "big": 2**62,
        "neg": -1.5,
        "arr": ("a", "b"),
        "ints": (1, 2),
        "empty": (),
    }
    spans = [
        ReadableSpan(
            name=name,
            context=SpanContext(0xABC, span_id, is_remote=False, trace_state=state),
            parent=parent,
            resource=Resource({"service.name": service}, schema_url=schema),
            attributes=attributes if span_id == 1 else {},
            events=[Event("e", {"x": 1}, timestamp=5), Event("", timestamp=0)]
            if span_id == 1
            else (),
            links=[Link(remote, {"why": "batch"}), Link(local)] if span_id == 2 else (),
            kind=kind,
            status=status,
            start_time=10 + span_id,
            end_time=20 + span_id if span_id != 3 else None,
            instrumentation_scope=scope,
        )
        for name, span_id, parent, service, schema, kind, status, scope, state in [
            (
                "a",
                1,
                remote,
                "one",
                "https://s/1",
                SpanKind.SERVER,
                Status(StatusCode.ERROR, "broke"),
                InstrumentationScope("lib", "1.0", "https://x"),
                TraceState([("a", "b")]),
            ),
            (
                "b",
                2,
                local,
                "one",
                "https://s/1",
                SpanKind.CLIENT,
                Status(StatusCode.OK),
                None,
                None,
            ),
            (
                "",
                3,
                None,
                "two",
                "",
                SpanKind.INTERNAL,
                Status(StatusCode.UNSET),
                InstrumentationScope("", None, None, {"scope.attr": True}),
                None,
            ),
            (
                "d",
                4,
                None,
                "one",
                "https://s/1",
                SpanKind.CONSUMER,
                Status(StatusCode.UNSET),
                InstrumentationScope("lib", "1.0", "https://x"),
                None,
            ),
        ]
    ]
    assert generator.encode_otlp_json(spans) == generator.to_otlp_json(spans)
    assert orjson.dumps(generator.encode_otlp_json(spans)) == orjson.dumps(
        generator.to_otlp_json(spans)
    )
    assert generator.encode_otlp_json([]) == generator.to_otlp_json([])


@pytest.mark.parametrize("module", ["generator.py", "declarations.py"])
def test_the_generator_imports_only_the_standard_library_opentelemetry_protobuf_and_orjson(
    module,
):
    tree = ast.parse((SAMPLE_DATA / module).read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
        )
    }
    allowed = {"opentelemetry", "google", "orjson"}
    assert imported - allowed <= sys.stdlib_module_names, imported - allowed


def test_another_end_time_gives_other_ids(generator, tmp_path):
    generator.generate(tmp_path / "a", end_ns=END_NS, traces=50)
    generator.generate(tmp_path / "b", end_ns=END_NS + 60_000_000_000, traces=50)
    ids = [{s["traceId"] for s in read_traces(tmp_path / d / "traces.otlp.jsonl")[1]} for d in "ab"]
    assert ids[0] and ids[1] and not ids[0] & ids[1]


def test_every_line_is_an_export_trace_service_request_with_hex_ids(landscape):
    manifest, requests, spans, _ = landscape
    assert all(set(request) == {"resourceSpans"} for request in requests)
    assert len(requests) < len(spans) / 20  # spans are batched, as a Collector writes them
    assert len(spans) == manifest["spans"]
    for span in spans:
        assert HEX32.fullmatch(span["traceId"]) and HEX16.fullmatch(span["spanId"])
        assert "parentSpanId" not in span or HEX16.fullmatch(span["parentSpanId"])
        for link in span.get("links", []):
            assert HEX32.fullmatch(link["traceId"]) and HEX16.fullmatch(link["spanId"])
        assert span["startTimeUnixNano"].isdigit() and span["kind"] in {1, 2, 3, 4, 5}
    assert len({span["traceId"] for span in spans if "parentSpanId" not in span}) == 1000


def test_resources_name_at_least_15_services_in_three_areas(landscape):
    manifest, _, spans, _ = landscape
    resources = {span["service"]: span["resource"] for span in spans}
    assert len(resources) >= 15
    assert sorted(resources) == manifest["services"]
    areas = {r["service.namespace"] for r in resources.values()}
    assert areas == {"retail", "payments", "logistics"}
    assert all(
        r["deployment.environment.name"] == "production" and r["service.version"]
        for r in resources.values()
    )


def test_both_semantic_convention_generations_are_present(landscape):
    spans = landscape[2]
    keys = {key for span in spans for key in span["attrs"]}
    assert {
        "http.request.method",
        "http.response.status_code",
        "url.full",
        "db.system.name",
        "messaging.destination.name",
        "service.peer.name",
    } <= keys
    assert {
        "http.method",
        "http.status_code",
        "http.url",
        "net.peer.name",
        "db.system",
        "messaging.destination",
        "peer.service",
    } <= keys
    legacy = {span["service"] for span in spans if "http.method" in span["attrs"]}
    current = {span["service"] for span in spans if "http.request.method" in span["attrs"]}
    assert 2 <= len(legacy) <= 3 and not legacy & current


def test_failing_edge_fails_a_quarter_of_its_calls_in_the_last_45_minutes(landscape, edges):
    manifest = landscape[0]
    edge = manifest["failing_edge"]
    assert edge["since_ns"] == END_NS - 45 * 60_000_000_000
    served = edges[(edge["client"], edge["server"])]
    recent = [s for s in served if s["start"] >= edge["since_ns"]]
    earlier = [s for s in served if s["start"] < edge["since_ns"]]
    assert len(recent) > 50
    assert 0.15 < sum(s["error"] for s in recent) / len(recent) < 0.35
    assert sum(s["error"] for s in earlier) / len(earlier) < 0.02
    assert all(s["attrs"]["http.status_code"] == 503 for s in recent if s["error"])


def test_failures_reach_the_entry_span_as_bad_gateway(landscape, by_id, edges):
    edge = landscape[0]["failing_edge"]
    failed = [s for s in edges[(edge["client"], edge["server"])] if s["error"]]
    for span in failed:
        root = span
        while "parentSpanId" in root:
            root = by_id[root["parentSpanId"]]
            assert root["error"]
        assert root["kind"] == SERVER and root["service"] in landscape[0]["entry_services"]
        attrs = root["attrs"]
        assert attrs.get("http.response.status_code", attrs.get("http.status_code")) == 502


def test_background_errors_stay_below_one_percent(edges, landscape):
    planted = (landscape[0]["failing_edge"]["client"], landscape[0]["failing_edge"]["server"])
    errors = [
        s["error"]
        for edge, spans in edges.items()
        if edge != planted
        for s in spans
        if s["attrs"].get("http.response.status_code") != 502
    ]
    assert 0 < sum(errors) / len(errors) < 0.01


def test_slow_edge_has_a_heavy_tail_while_other_edges_are_fast(landscape, edges):
    slow = landscape[0]["slow_edge"]

    def p(edge, q):
        durations = sorted(s["end"] - s["start"] for s in edges[edge])
        return durations[int(len(durations) * q)] / 1e6

    assert p((slow["client"], slow["server"]), 0.95) > 1000
    # Most edges take tens of milliseconds; the few slower ones wait on the card network.
    medians = sorted(p(edge, 0.5) for edge in edges if slow["client"] not in edge)
    assert medians[len(medians) // 2] < 50


def test_cycle_is_observed(landscape, edges):
    cycle = landscape[0]["cycle"]
    for client, server in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert edges[(client, server)], (client, server)


def test_databases_externals_and_broker_appear_as_real_instrumentation_draws_them(landscape, by_id):
    manifest, _, spans, _ = landscape
    children = Counter(s.get("parentSpanId") for s in spans)
    peers = {
        s["attrs"].get("server.address", s["attrs"].get("net.peer.name"))
        for s in spans
        if s["kind"] == CLIENT and not children[s["spanId"]]
    }
    assert set(manifest["databases"]) | set(manifest["externals"]) <= peers
    assert {s["attrs"].get("db.system.name") for s in spans} >= {"postgresql", "redis"}
    broker = manifest["broker"]
    consumers = [s for s in spans if s["kind"] == CONSUMER]
    assert {s["service"] for s in consumers} == set(broker["consumers"])
    for span in consumers:
        producer = by_id[span["parentSpanId"]]
        assert producer["kind"] == PRODUCER and producer["service"] == broker["producer"]
        assert producer["traceId"] == span["traceId"] and span["start"] >= producer["end"]
        assert span["links"][0]["spanId"] == producer["spanId"]


def test_children_start_within_their_parent_and_callees_end_within_it(landscape, by_id):
    for span in landscape[2]:
        parent = by_id.get(span.get("parentSpanId"))
        if parent is None or span["kind"] == CONSUMER:
            continue
        assert parent["traceId"] == span["traceId"]
        assert parent["start"] <= span["start"] < span["end"] <= parent["end"]


def test_traffic_fills_the_window_with_uneven_minutes(landscape):
    manifest, _, spans, _ = landscape
    roots = [s for s in spans if "parentSpanId" not in s]
    assert all(manifest["start_ns"] <= s["start"] < manifest["end_ns"] for s in roots)
    per_minute = Counter((s["start"] - manifest["start_ns"]) // 60_000_000_000 for s in roots)
    assert len(per_minute) > 150 and max(per_minute.values()) > 2 * min(per_minute.values())


def test_manifest_records_every_planted_problem(landscape):
    manifest, _, _, out = landscape
    assert orjson.loads((out / "manifest.json").read_bytes()) == manifest
    assert manifest["start_ns"] == END_NS - 3 * 3_600_000_000_000 and manifest["traces"] == 1000
    for key in (
        "services",
        "entry_services",
        "failing_edge",
        "slow_edge",
        "cycle",
        "databases",
        "externals",
        "broker",
    ):
        assert manifest[key], key
    assert all(manifest["failing_edge"].values()) and all(manifest["broker"].values())
    assert {"storefront-web", "pos-api", "payments-api"} <= set(manifest["entry_services"])


# --- the gateway logs -------------------------------------------------------------------------

MS = 1_000_000


def _kong_lines(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "kong-access.log").read_bytes().splitlines()]


def _nginx_lines(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "nginx-access.log").read_bytes().splitlines()]


def _nginx_ms(text: str) -> int:
    seconds, millis = text.split(".")
    return int(seconds) * 1000 + int(millis)


@pytest.fixture(scope="module")
def proxied(landscape) -> dict[str, list[dict]]:
    """Each log's proxied lines as (method, path, status, logged start, trace id, line), by the
    entry service behind it."""
    out = landscape[3]
    kong = [
        {
            "method": line["request"]["method"],
            "path": line["request"]["uri"],
            "status": line["response"]["status"],
            "start": line["started_at"] * MS,
            "trace_id": line["request"]["headers"].get("traceparent", "--").split("-")[1] or None,
            "line": line,
        }
        for line in _kong_lines(out)
        if line["source"] == "upstream"
    ]
    nginx = []
    for line in _nginx_lines(out):
        if line["upstream"]:
            method, target, _ = line["request"].split(" ")
            start_ms = _nginx_ms(line["msec"]) - _nginx_ms(line["request_time"])
            nginx.append(
                {
                    "method": method,
                    "path": target.split("?")[0],
                    "status": int(line["status"]),
                    "start": start_ms * MS,
                    "trace_id": line["trace_id"] or None,
                    "line": line,
                }
            )
    return {"payments-api": kong, "storefront-web": nginx}


@pytest.mark.parametrize(
    ("log", "service"),
    [("kong-access.log", "payments-api"), ("nginx-access.log", "storefront-web")],
)
def test_each_entry_span_behind_a_gateway_is_one_proxied_line_of_it(
    landscape, proxied, log, service
):
    """Same method, path and status, logged as starting a little before the span (the manifest's
    lead), and the span's trace id wherever the line has one."""
    manifest, _, spans, _ = landscape
    entries = manifest["gateway_logs"][log]["entry_requests"]
    lead = entries["start_lead_ns"]
    assert 0 < lead["min"] <= lead["max"] < 6 * MS
    roots = [
        s
        for s in spans
        if "parentSpanId" not in s
        and s["service"] == service
        and s["attrs"]["server.address"] in ("api.payments.example", "www.shop.example")
    ]
    lines = proxied[service]
    assert len(roots) == len(lines) == entries["count"] > 50
    by_request = defaultdict(list)
    for index, line in enumerate(lines):
        by_request[(line["method"], line["path"], line["status"])].append(index)
    matched = set()
    for root in roots:
        attrs = root["attrs"]
        key = (
            attrs["http.request.method"],
            attrs["url.path"],
            attrs["http.response.status_code"],
        )
        (index,) = [
            i
            for i in by_request[key]
            if lead["min"] <= root["start"] - lines[i]["start"] <= lead["max"]
        ]
        matched.add(index)
        assert lines[index]["trace_id"] in (None, root["traceId"])
    assert len(matched) == len(lines)
    traced = sum(line["trace_id"] is not None for line in lines)
    assert traced == entries["with_trace_id"]
    assert len(lines) - traced == entries["without_trace_id"] > 0


def test_gateway_times_hold_the_span_and_add_a_few_milliseconds(landscape, proxied):
    spans = {s["traceId"]: s for s in landscape[2] if "parentSpanId" not in s}
    checked = 0
    for service, lines in proxied.items():
        for entry in lines:
            if entry["trace_id"] is None:
                continue
            span_ms = (spans[entry["trace_id"]]["end"] - spans[entry["trace_id"]]["start"]) / MS
            line = entry["line"]
            if service == "payments-api":
                latencies = line["latencies"]
                total, upstream = latencies["request"], latencies["proxy"]
                assert latencies["kong"] == total - upstream
            else:
                total = _nginx_ms(line["request_time"])
                upstream = _nginx_ms(line["upstream_response_time"])
            assert span_ms - 1 <= upstream <= total
            if service == "payments-api":
                assert total - upstream <= 5  # Kong's plugins and the hops either side
            checked += 1
    assert checked > 100


def test_web_shop_lines_without_a_trace_id_are_about_a_third(landscape):
    entries = landscape[0]["gateway_logs"]["nginx-access.log"]["entry_requests"]
    assert 0.2 < entries["without_trace_id"] / entries["count"] < 0.45
    kong = landscape[0]["gateway_logs"]["kong-access.log"]["entry_requests"]
    assert kong["with_trace_id"] / kong["count"] > 0.8


def test_gateway_log_counts_are_the_manifests(landscape):
    manifest, _, _, out = landscape
    kong, nginx = _kong_lines(out), _nginx_lines(out)
    logs = manifest["gateway_logs"]
    assert (logs["kong-access.log"]["lines"], logs["nginx-access.log"]["lines"]) == (
        len(kong),
        len(nginx),
    )
    consumers = Counter(line["consumer"]["username"] for line in kong if "consumer" in line)
    assert logs["kong-access.log"]["consumers"] == dict(consumers)
    assert 3 <= len(consumers) <= 4 and max(consumers.values()) > 3 * min(consumers.values())
    assert logs["kong-access.log"]["without_consumer"] == len(kong) - consumers.total()
    assert logs["kong-access.log"]["with_trace_id"] == sum(
        "traceparent" in line["request"]["headers"] for line in kong
    )
    assert logs["nginx-access.log"]["with_trace_id"] == sum(
        bool(line["trace_id"]) for line in nginx
    )
    assert logs["nginx-access.log"]["without_consumer"] == len(nginx)
    kong_answered = Counter(
        str(line["response"]["status"]) for line in kong if line["source"] == "kong"
    )
    nginx_answered = Counter(line["status"] for line in nginx if not line["upstream"])
    assert logs["kong-access.log"]["answered_by_gateway"] == {
        "count": kong_answered.total(),
        "by_status": dict(sorted(kong_answered.items())),
    }
    assert logs["nginx-access.log"]["answered_by_gateway"] == {
        "count": nginx_answered.total(),
        "by_status": dict(sorted(nginx_answered.items())),
    }
    assert set(kong_answered) == {"401", "429"} and set(nginx_answered) == {"200", "304"}
    for name, log in logs.items():
        edges = {(e["client"], e["server"]): e["count"] for e in log["edges"]}
        callers = {c: n for (c, s), n in edges.items() if s == log["gateway"]}
        assert sum(callers.values()) == log["lines"], name
        assert edges[(log["gateway"], log["upstream"])] == log["entry_requests"]["count"], name
        assert log["lines"] == log["entry_requests"]["count"] + log["answered_by_gateway"]["count"]


def test_kong_lines_have_the_shape_of_its_file_log_plugin(landscape):
    """Kong 3.8's documented record (tags of its docs' templating dropped), plus the consumer,
    its credential and the TLS details a partner's HTTPS request has; "/" escaped as lua-cjson
    escapes it."""
    documented = corpus("kong", "log-format.md").read_text().split("```json", 1)[1]
    documented = "\n".join(
        line for line in documented.split("```", 1)[0].splitlines() if "{%" not in line
    )
    sample = orjson.loads(documented)
    out = landscape[3]
    raw = (out / "kong-access.log").read_bytes().splitlines()
    assert all(b"/" not in line.replace(b"\\/", b"") for line in raw)
    for line in _kong_lines(out):
        if line["source"] == "upstream":
            assert set(line) == set(sample) | {"consumer", "authenticated_entity"}
            assert set(line["tries"][0]) == set(sample["tries"][0])
            assert line["upstream_status"] == str(line["response"]["status"])
        else:  # answered by Kong: no upstream was tried
            assert set(sample) - set(line) == {"tries", "upstream_uri", "upstream_status"}
            assert line["latencies"]["proxy"] == -1
            assert "traceparent" not in line["request"]["headers"]
        assert set(line["request"]) == set(sample["request"]) | {"tls"}
        for key in ("latencies", "response", "service", "route"):
            assert set(line[key]) == set(sample[key]), key
        assert line["service"]["name"] == "payments-api"


def test_kong_answers_bad_keys_and_a_noisy_partners_bursts_itself(landscape):
    """401s name no consumer; each 429 is the noisy partner's, in a second whose one allowed
    request (its plan allows one a second) went through to payments-api."""
    kong = _kong_lines(landscape[3])
    unauthorized = [line for line in kong if line["response"]["status"] == 401]
    limited = [line for line in kong if line["response"]["status"] == 429]
    assert unauthorized and all("consumer" not in line for line in unauthorized)
    assert len(limited) > 5
    assert {line["consumer"]["username"] for line in limited} == {"kestrel-subscriptions"}
    allowed = Counter(
        line["started_at"] // 1000
        for line in kong
        if line["source"] == "upstream" and line["consumer"]["username"] == "kestrel-subscriptions"
    )
    assert all(allowed[line["started_at"] // 1000] >= 1 for line in limited)


def test_nginx_serves_static_files_itself_and_proxies_the_rest_to_the_storefront(landscape):
    nginx = _nginx_lines(landscape[3])
    static = [line for line in nginx if not line["upstream"]]
    assert len(static) > 100
    for line in static:
        method, target, protocol = line["request"].split(" ")
        assert (method, protocol) == ("GET", "HTTP/2.0") and target.startswith("/static/")
        assert line["status"] in ("200", "304") and not line["trace_id"]
        assert line["upstream_response_time"] == line["upstream_status"] == ""
    assert {line["upstream"] for line in nginx} == {"", "storefront-web"}
    assert {line["host"] for line in nginx} == {"www.shop.example"}
    starts = [_nginx_ms(line["msec"]) - _nginx_ms(line["request_time"]) for line in nginx]
    assert all(start * MS < END_NS for start in starts)
