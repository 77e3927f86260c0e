"""The sample landscape's declarations: contracts that describe the routes the traffic uses, with
the planted gaps, and a Backstage catalog that declares what the traffic shows but one
dependency; all of it as the manifest says, checked against the generated files alone."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import safe_yaml
from tests.conftest import examples
from tests.sample_data.conftest import END_NS, SAMPLE_DATA, load

SERVER, CLIENT, CONSUMER = 2, 3, 5
STATUSES = {"documented", "shadow", "zombie", "orphan", "unversioned"}


@pytest.fixture(scope="module")
def declarations():
    return load(SAMPLE_DATA / "declarations.py")


def _documents(out: Path, name: str) -> list:
    return safe_yaml.load_all((out / name).read_bytes(), name)


def _contracts(landscape) -> dict[str, dict]:
    """Each contract file of the manifest, parsed: by its path."""
    manifest, _, _, out = landscape
    return {c["file"]: _documents(out, c["file"])[0] for c in manifest["contracts"]["files"]}


def _operations(document: dict) -> dict[str, dict]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def _kong_lines(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "kong-access.log").read_bytes().splitlines()]


def _served(spans: list[dict]) -> Counter:
    """Server spans by (service, method, route)."""
    return Counter(
        (
            s["service"],
            s["attrs"].get("http.request.method", s["attrs"].get("http.method")),
            s["attrs"]["http.route"],
        )
        for s in spans
        if s["kind"] == SERVER
    )


# --- YAML written as text -----------------------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.text()
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.dictionaries(st.text(), _DATA, max_size=5), min_size=1, max_size=3))
def test_yaml_written_as_text_reads_back_as_the_data_it_was_given(declarations, documents):
    text = declarations.to_yaml(*documents)
    assert safe_yaml.load_all(text, "generated") == documents


def test_yaml_of_the_contracts_is_plain_where_it_can_be(declarations):
    text = declarations.to_yaml(declarations.payments_api("2.3.0"))
    assert "\n  /v2/payments/{paymentId}:\n" in text  # paths as people write them
    assert '\n        "200":\n' in text and 'openapi: "3.0.3"\n' in text  # not numbers
    assert '$ref: "#/components/schemas/Payment"' in text  # not a comment


# --- the contracts ------------------------------------------------------------------------------


def test_contract_files_are_the_versions_the_manifest_names(landscape):
    manifest = landscape[0]
    for contract in manifest["contracts"]["files"]:
        document = _contracts(landscape)[contract["file"]]
        kind = contract["kind"]
        assert document[kind] == contract["spec_version"], contract["file"]
        assert (document["info"]["title"], document["info"]["version"]) == (
            contract["title"],
            contract["version"],
        )
        count = len(_operations(document)) if kind == "openapi" else len(document["operations"])
        assert count == contract["operations"]
    payments = [
        c["version"] for c in manifest["contracts"]["files"] if c["title"] == "Payments API"
    ]
    assert payments == ["2.3.0", "2.4.0"]


def test_each_contract_documents_what_its_service_serves_but_the_planted_routes(landscape):
    """The difference between a service's routes in the traces and its contract is the planted
    shadow route (served, undocumented) and orphan operation (documented, never called)."""
    manifest, _, spans, _ = landscape
    served = _served(spans)
    statuses = manifest["endpoint_statuses"]["endpoints"]
    latest = {
        c["service"]: c["file"] for c in manifest["contracts"]["files"] if c["kind"] == "openapi"
    }
    assert sorted(latest) == manifest["endpoint_statuses"]["services"]
    for service, file in latest.items():
        documented = set(_operations(_contracts(landscape)[file]))
        routes = {f"{m} {r}" for s, m, r in served if s == service}

        def planted(status, service=service):
            return {
                f"{e['method']} {e['route']}"
                for e in statuses
                if e["service"] == service and e["status"] == status
            }

        assert routes - documented == planted("shadow"), service
        assert documented - routes == planted("orphan"), service
    shadows = [e for e in statuses if e["status"] == "shadow"]
    orphans = [e for e in statuses if e["status"] == "orphan"]
    assert [(e["service"], e["route"]) for e in shadows] == [
        ("order-service", "/orders/backorders/{sku}")
    ]
    assert [(e["service"], e["route"]) for e in orphans] == [
        ("payments-api", "/v2/payments/{paymentId}/refunds")
    ]


def test_every_status_is_planted_and_counts_the_server_spans_of_its_route(landscape):
    manifest, _, spans, _ = landscape
    served = _served(spans)
    endpoints = manifest["endpoint_statuses"]["endpoints"]
    assert {e["status"] for e in endpoints} == STATUSES
    for e in endpoints:
        assert e["calls"] == served[(e["service"], e["method"], e["route"])], e
        assert (e["calls"] == 0) == (e["status"] == "orphan"), e
    # scanners asking for a list of payments: Kong refuses them (no key), payments-api never
    # sees them, and its contract has no such operation
    (only,) = manifest["endpoint_statuses"]["answered_by_gateway_only"]
    assert (only["gateway"], only["method"], only["route"]) == (
        "api-gateway",
        "GET",
        "/v2/payments",
    )
    refused = [
        line
        for line in _kong_lines(landscape[3])
        if (line["request"]["method"], line["request"]["uri"]) == ("GET", "/v2/payments")
    ]
    assert only["requests"] == len(refused) > 0
    assert {line["response"]["status"] for line in refused} == {401}


def test_the_zombie_is_deprecated_past_its_sunset_and_still_called(landscape):
    manifest = landscape[0]
    (zombie,) = [e for e in manifest["endpoint_statuses"]["endpoints"] if e["status"] == "zombie"]
    assert zombie["calls"] > 0
    for file in ("contracts/payments-api.2.3.0.yaml", "contracts/payments-api.2.4.0.yaml"):
        operation = _operations(_contracts(landscape)[file])[f"POST {zombie['route']}"]
        assert operation["deprecated"] is True
        end_date = time.strftime("%Y-%m-%d", time.gmtime(END_NS // 10**9))
        assert operation["x-sunset"] < end_date


_VERSION_MARK = re.compile(r"/v[0-9]+(/|$)")


def _pins(document: dict) -> set[str]:
    """How a client can pin a version of the API: its paths, its servers' paths, a header."""
    found = set()
    if all(_VERSION_MARK.search(path) for path in document["paths"]):
        found.add("path")
    if any(
        _VERSION_MARK.search(re.sub(r"^\w+://[^/]*", "", s["url"])) for s in document["servers"]
    ):
        found.add("server")
    parameters = document.get("components", {}).get("parameters", {}).values()
    if any(p["in"] == "header" and "version" in p["name"].lower() for p in parameters):
        found.add("header")
    return found


def test_the_unversioned_api_gives_its_clients_no_way_to_pin_a_version(landscape):
    manifest = landscape[0]
    contracts = _contracts(landscape)
    pins = {
        c["file"]: _pins(contracts[c["file"]])
        for c in manifest["contracts"]["files"]
        if c["kind"] == "openapi"
    }
    assert pins == {
        c["file"]: {c["versioning"]} - {None}
        for c in manifest["contracts"]["files"]
        if c["kind"] == "openapi"
    }
    unversioned = {
        e["service"]
        for e in manifest["endpoint_statuses"]["endpoints"]
        if e["status"] == "unversioned"
    }
    assert unversioned == {"catalog-service"}


def _differences(old, new, where=()):
    """Where two parsed documents differ: (path, "removed" | "added" | "changed")."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            if key not in new:
                yield (*where, key), "removed"
            elif key not in old:
                yield (*where, key), "added"
            else:
                yield from _differences(old[key], new[key], (*where, key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _differences(a, b, (*where, index))
    elif old != new:
        yield where, "changed"


def test_the_next_payments_version_differs_only_by_the_planted_changes(landscape):
    manifest = landscape[0]
    diff = manifest["contracts"]["diff"]
    contracts = _contracts(landscape)
    found = set(_differences(contracts[diff["old"]], contracts[diff["new"]]))
    details = ("components", "schemas", "PaymentDetails", "allOf", 1, "properties")
    assert found == {
        (("info", "version"), "changed"),
        ((*details, "settlement_date"), "removed"),
        ((*details, "settlement"), "added"),
    }
    # PaymentDetails is the answer of one operation only
    users = [
        operation
        for operation, body in _operations(contracts[diff["new"]]).items()
        if "PaymentDetails" in str(body)
    ]
    assert users == ["GET /v2/payments/{paymentId}"]
    assert [(c["id"], c["breaking"], c["operation"]) for c in diff["changes"]] == [
        ("response-property-removed", True, "GET /v2/payments/{paymentId}"),
        ("response-property-added", False, "GET /v2/payments/{paymentId}"),
    ]
    assert diff["breaking"] == 1


def test_the_breaking_changes_consumers_are_the_partners_calls_in_the_kong_log(landscape):
    """Every request for a payment by id is a partner's, through Kong: those it passed on and
    the burst it refused (the partner called all the same)."""
    manifest, _, spans, out = landscape
    lines = _kong_lines(out)
    by_id = re.compile(r"/v2/payments/pay_[0-9a-f]{16}")
    calls = Counter(
        line["consumer"]["username"]
        for line in lines
        if line["request"]["method"] == "GET" and by_id.fullmatch(line["request"]["uri"])
    )
    (breaking,) = [c for c in manifest["contracts"]["diff"]["changes"] if c["breaking"]]
    assert {c["name"]: c["calls"] for c in breaking["consumers"]} == calls
    assert len(calls) == 4 and set(calls) == set(
        manifest["gateway_logs"]["kong-access.log"]["consumers"]
    )
    ordered = [(c["calls"], c["name"]) for c in breaking["consumers"]]
    assert ordered == sorted(ordered, key=lambda i: (-i[0], i[1]))
    # no service of the shop asks for a payment by id: the partners are its only consumers
    by_span = {s["spanId"]: s for s in spans}
    internal = [
        s
        for s in spans
        if s["kind"] == SERVER
        and s["service"] == "payments-api"
        and s["attrs"]["http.route"] == "/v2/payments/{paymentId}"
        and "parentSpanId" in s
        and s["parentSpanId"] in by_span
    ]
    assert internal == []
    assert manifest["contracts"]["diff"]["gateways"] == ["api-gateway"]


# --- the catalog --------------------------------------------------------------------------------


def _catalog(landscape) -> list[dict]:
    manifest, _, _, out = landscape
    return [e for name in manifest["catalog"]["files"] for e in _documents(out, name)]


def test_the_catalog_names_an_owner_and_a_system_for_every_service(landscape):
    manifest, _, _, out = landscape
    entities = _catalog(landscape)
    assert len(entities) == manifest["catalog"]["entities"]
    assert Counter(e["kind"] for e in entities) == manifest["catalog"]["by_kind"]
    names = {(e["kind"], e["metadata"]["name"]) for e in entities}
    components = {e["metadata"]["name"]: e for e in entities if e["kind"] == "Component"}
    assert sorted(components) == manifest["services"]
    for name, component in components.items():
        spec = component["spec"]
        assert ("Group", spec["owner"]) in names and ("System", spec["system"]) in names
        assert manifest["catalog"]["owners"][name] == f"group:default/{spec['owner']}"
    assert {e["metadata"]["name"] for e in entities if e["kind"] == "System"} == {
        "retail",
        "payments",
        "logistics",
    }
    # each API's definition is a contract file beside the catalog file that declares it
    contract_files = {c["file"] for c in manifest["contracts"]["files"]}
    definitions = [
        (Path(name).parent / api["spec"]["definition"]["$text"]).as_posix()
        for name in manifest["catalog"]["files"]
        for api in _documents(out, name)
        if api["kind"] == "API"
    ]
    assert len(definitions) == manifest["catalog"]["by_kind"]["API"]
    assert set(definitions) <= contract_files


def _declared(entities: list[dict]) -> set[tuple[str, str]]:
    """(service, what it depends on), from dependsOn and from the APIs a component consumes
    (the component providing the API)."""
    provider = {
        api: e["metadata"]["name"]
        for e in entities
        if e["kind"] == "Component"
        for api in e["spec"].get("providesApis", [])
    }
    found = set()
    for e in entities:
        spec = e["spec"]
        for ref in spec.get("dependsOn", []):
            found.add((e["metadata"]["name"], ref.split(":", 1)[1]))
        for api in spec.get("consumesApis", []):
            found.add((e["metadata"]["name"], provider[api]))
    return found


def _observed(spans: list[dict], externals: list[str]) -> set[tuple[str, str]]:
    """(service, what it depends on), from the traces: a CLIENT span's server span in another
    service, a database command's server, a third party's API called, and a consumer's
    producer."""
    by_id = {s["spanId"]: s for s in spans}
    found = set()
    for span in spans:
        parent = by_id.get(span.get("parentSpanId"))
        if span["kind"] == SERVER and parent and parent["kind"] == CLIENT:
            found.add((parent["service"], span["service"]))
        elif span["kind"] == CONSUMER:
            found.add((span["service"], parent["service"]))
        attrs = span["attrs"]
        host = attrs.get("server.address", attrs.get("net.peer.name"))
        database = "db.system.name" in attrs or "db.system" in attrs
        if span["kind"] == CLIENT and (database or host in externals):
            found.add((span["service"], host))
    return found


def test_the_catalog_declares_what_the_traces_show_but_the_planted_dependency(landscape):
    manifest, _, spans, _ = landscape
    declared = _declared(_catalog(landscape))
    observed = _observed(spans, manifest["externals"])
    undeclared = manifest["catalog"]["undeclared_dependency"]
    assert observed - declared == {(undeclared["client"], undeclared["server"])}
    assert declared - observed == {
        (d["client"], d["server"]) for d in manifest["catalog"]["declared_unobserved"]
    }
    callers = {s["spanId"] for s in spans if s["service"] == undeclared["client"]}
    assert undeclared["calls"] == sum(
        s["kind"] == SERVER
        and s["service"] == undeclared["server"]
        and s.get("parentSpanId") in callers
        for s in spans
    )
