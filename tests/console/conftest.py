"""Fixtures for the console: apps on the sample landscape, and a landscape with a hostile name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clew import store
from clew.app import create_app
from clew.pipeline import ingest
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
    return out


def _resource(service: str, spans: list[dict]) -> dict:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }


def hostile_landscape(path: Path) -> Path:
    """OTLP/JSON: ``shop`` is called from outside and calls the hostile-named service."""
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
            _resource(HOSTILE, [_span(trace, serve, call, "GET /x", 2, start, error=i == 0)])
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


@pytest.fixture
def sample_app(sample_db):
    """The web app on the sample landscape."""
    app = create_app({"DATABASE_URL": "sqlite:///" + sample_db, "DEMO": True, "AUTH": False})
    yield app
    store.engine_of(app).dispose()
