"""Fixtures for the console: apps on the sample landscape, and a landscape with a hostile name."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from clew import store
from clew.app import create_app
from clew.pipeline import ingest
from clew.store.queries import Window
from collectors import load_registry

#: A service name that would run script if anything rendered names as HTML.
HOSTILE = "<img src=x onerror=window.__clew_xss=1>"
#: Services of the sample landscape every console view over all of it must show.
SAMPLE_SERVICES = (
    "storefront-web",
    "payments-api",
    "orders-db",
    "integration-hub",
    "warehouse-service",
)


def _span(
    trace: str,
    span: str,
    parent: str | None,
    name: str,
    kind: int,
    start_s: int,
    error: bool = False,
    attributes: dict[str, str] | None = None,
) -> dict:
    out = {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_s * 1_000_000_000),
        "endTimeUnixNano": str(start_s * 1_000_000_000 + 25_000_000),
        "status": {"code": 2 if error else 1},
    }
    if parent:
        out["parentSpanId"] = parent
    if attributes:
        out["attributes"] = [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]
    return out


def _resource(service: str, spans: list[dict]) -> dict:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }


def hostile_landscape(path: Path, service: str = HOSTILE) -> Path:
    """OTLP/JSON: ``shop`` is called from outside and calls ``service``, a hostile name."""
    resources = []
    for i in range(6):
        trace = f"{i + 1:032x}"
        root, call, serve = (
            f"{i + 1:04x}000000000001",
            f"{i + 1:04x}000000000002",
            f"{i + 1:04x}000000000003",
        )
        start = 1_794_999_000 + i * 30
        resources.append(
            _resource(
                "shop",
                [
                    _span(trace, root, None, "GET /", 2, start),
                    _span(trace, call, root, "GET /x", 3, start),
                ],
            )
        )
        resources.append(
            _resource(service, [_span(trace, serve, call, "GET /x", 2, start, error=i == 0)])
        )
    path.write_text(json.dumps({"resourceSpans": resources}))
    return path


@pytest.fixture(scope="session")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database whose graph is client → shop → HOSTILE."""
    folder = tmp_path_factory.mktemp("hostile")
    engine = store.open_engine(str(folder / "clew.db"))
    store.upgrade(engine)
    result = ingest(engine, [hostile_landscape(folder / "traces.json")], load_registry())
    assert result.inserted == 18
    engine.dispose()
    return str(folder / "clew.db")


#: Hostile text for each place a name reaches the console, each setting its own window global
#: (``__clew_xss…``) if it ever ran: ``<img>``, ``<script>`` and attribute-breaking variants, their
#: attributes quoted so that they are HTML to a Markdown renderer too (CommonMark takes no ``=``
#: in an unquoted attribute). The catalog lower-cases refs and splits them at ``:`` and ``/``:
#: the team and the system hold neither.
HOSTILE_SERVICE = '<img src="x" onerror="window.__clew_xss_service=1">'
HOSTILE_ROUTE = "/items/<script>window.__clew_xss_route=1</script>"
HOSTILE_CONSUMER = '"><svg onload="window.__clew_xss_consumer=1">'
HOSTILE_TEAM = '<img src="x" onerror="window.__clew_xss_team=1">'
HOSTILE_SYSTEM = '"><svg onload="window.__clew_xss_system=1">'
HOSTILE_CONTRACT = "<script>window.__clew_xss_contract=1</script>"
HOSTILE_OPERATION = '/orders/<img src="x" onerror="window.__clew_xss_operation=1">'
HOSTILE_FILE = '<img src="x" onerror="window.__clew_xss_file=1">.json'
HOSTILE_REASON = '<img src="x" onerror="window.__clew_xss_reason=1">'
HOSTILE_APPROVER = '"><img src="x" onerror="window.__clew_xss_approver=1">'
#: The finding the hostile waiver waives (expiring within the console's 14 days).
WAIVED = ("undeclared-dependency", f"shop → {HOSTILE_SERVICE}")


def _consumer_calls(path: Path) -> Path:
    """OTLP/JSON: the hostile consumer calls the hostile service on the hostile route, the first
    call failing."""
    resources = []
    for i in range(4):
        trace = f"{i + 101:032x}"
        call, serve = f"{i + 101:04x}000000000001", f"{i + 101:04x}000000000002"
        start = 1_794_999_010 + i * 30
        resources.append(_resource(HOSTILE_CONSUMER, [_span(trace, call, None, "GET", 3, start)]))
        attributes = {"http.request.method": "GET", "http.route": HOSTILE_ROUTE}
        served = _span(
            trace, serve, call, f"GET {HOSTILE_ROUTE}", 2, start, i == 0, attributes=attributes
        )
        resources.append(_resource(HOSTILE_SERVICE, [served]))
    path.write_text(json.dumps({"resourceSpans": resources}))
    return path


def hostile_contract(version: str) -> dict:
    """The hostile service's OpenAPI contract, titled with hostile text: version 1 documents the
    route the consumer calls, which version 2 removes (a breaking change that breaks it)."""
    ok = {"get": {"responses": {"200": {"description": "ok"}}}}
    paths = {HOSTILE_OPERATION: ok} | ({HOSTILE_ROUTE: ok} if version == "1.0.0" else {})
    return {
        "openapi": "3.0.3",
        "info": {"title": HOSTILE_CONTRACT, "version": version},
        "paths": paths,
    }


def hostile_catalog(path: Path, definition: str) -> Path:
    """A Backstage catalog (JSON documents): the hostile team owns the hostile system, whose
    components are shop, the hostile service (providing the API whose definition is the file
    ``definition`` beside it) and the hostile consumer, none declaring a dependency."""
    owned = {"owner": HOSTILE_TEAM, "system": HOSTILE_SYSTEM}
    entities = [
        ("Group", HOSTILE_TEAM, {"type": "team"}),
        ("System", HOSTILE_SYSTEM, {"owner": HOSTILE_TEAM}),
        ("API", "orders-api", {"type": "openapi", "definition": {"$text": definition}} | owned),
        ("Component", "shop", {"type": "service"} | owned),
        ("Component", HOSTILE_SERVICE, {"type": "service", "providesApis": ["orders-api"]} | owned),
        ("Component", HOSTILE_CONSUMER, {"type": "service"} | owned),
    ]
    path.write_text(
        "\n---\n".join(
            json.dumps(
                {
                    "apiVersion": "backstage.io/v1alpha1",
                    "kind": kind,
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
            for kind, name, spec in entities
        )
        + "\n"
    )
    return path


def hostile_waivers(path: Path, expires: date) -> Path:
    """A waivers file whose one waiver, of ``WAIVED``, has a hostile reason and approver."""
    rule, subject = WAIVED
    waiver = {
        "rule": rule,
        "subject": subject,
        "reason": HOSTILE_REASON,
        "approver": HOSTILE_APPROVER,
        "expires": expires.isoformat(),
    }
    path.write_text(json.dumps({"waivers": [waiver]}))
    return path


@pytest.fixture(scope="session")
def hostile_governed_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database where hostile text names a service, a route, a consumer, the catalog's
    team and system, a contract's title, an operation's path and a file, and a waiver's reason
    and approver; the policies evaluated into it as the demo does, so findings carry them in
    their subjects, messages, teams and systems."""
    from policies import run

    folder = tmp_path_factory.mktemp("hostile-governed")
    (folder / HOSTILE_FILE).write_text(json.dumps(hostile_contract("1.0.0")))
    (folder / "orders-api.json").write_text(json.dumps(hostile_contract("2.0.0")))
    engine = store.open_engine(str(folder / "clew.db"))
    store.upgrade(engine)
    registry = load_registry()
    for paths in (  # as the demo: contracts, then the catalog, then traffic
        [folder / HOSTILE_FILE],
        [hostile_catalog(folder / "catalog-info.yaml", "orders-api.json")],
        [
            hostile_landscape(folder / "traces.json", HOSTILE_SERVICE),
            _consumer_calls(folder / "calls.json"),
        ],
    ):
        result = ingest(engine, paths, registry)
        assert result.quarantined == 0
    now = store.utcnow()
    waivers = hostile_waivers(folder / "waivers.json", now.date() + timedelta(days=7))
    run.check_store(engine, run.rules(), Window(), now, waivers=waivers)
    engine.dispose()
    return str(folder / "clew.db")


@pytest.fixture
def sample_app(sample_db):
    """The web app on the sample landscape."""
    app = create_app({"DATABASE_URL": "sqlite:///" + sample_db, "DEMO": True, "AUTH": False})
    yield app
    store.engine_of(app).dispose()
