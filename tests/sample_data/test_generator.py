"""The sample landscape generator: real OTLP/JSON, reproducible, with its problems planted."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import orjson
import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "sample_data" / "generator.py"
# A whole minute, so the window is the same whichever way a caller floors it.
END_NS = 1_795_000_000_000_000_000 // 60_000_000_000 * 60_000_000_000
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
ERROR = 2


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_generator_under_test", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(any_value: dict) -> object:
    ((kind, value),) = any_value.items()
    return int(value) if kind == "intValue" else value


def _read(path: Path) -> tuple[list[dict], list[dict]]:
    """The file's lines as parsed requests, and its spans flattened with service and attributes."""
    requests, spans = [], []
    for line in path.read_bytes().splitlines():
        request = orjson.loads(line)
        requests.append(request)
        for resource_spans in request["resourceSpans"]:
            attributes = resource_spans["resource"]["attributes"]
            resource = {a["key"]: _value(a["value"]) for a in attributes}
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    spans.append(
                        {
                            **span,
                            "resource": resource,
                            "service": resource["service.name"],
                            "attrs": {
                                a["key"]: _value(a["value"]) for a in span.get("attributes", [])
                            },
                            "start": int(span["startTimeUnixNano"]),
                            "end": int(span["endTimeUnixNano"]),
                            "error": span["status"].get("code") == ERROR,
                        }
                    )
    return requests, spans


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load()


@pytest.fixture(scope="module")
def landscape(generator, tmp_path_factory):
    """One 1000-trace run shared by the read-only tests: (manifest, requests, spans, out dir)."""
    out = tmp_path_factory.mktemp("landscape")
    manifest = generator.generate(out, end_ns=END_NS, traces=1000)
    requests, spans = _read(out / "traces.otlp.jsonl")
    return manifest, requests, spans, out


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


def test_same_arguments_give_byte_identical_files(generator, tmp_path):
    first = generator.generate(tmp_path / "a", end_ns=END_NS, traces=200)
    second = generator.generate(tmp_path / "b", end_ns=END_NS, traces=200)
    assert first == second
    for name in ("traces.otlp.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_end_time_gives_other_ids(generator, tmp_path):
    generator.generate(tmp_path / "a", end_ns=END_NS, traces=50)
    generator.generate(tmp_path / "b", end_ns=END_NS + 60_000_000_000, traces=50)
    ids = [{s["traceId"] for s in _read(tmp_path / d / "traces.otlp.jsonl")[1]} for d in "ab"]
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
