"""The JSON API: the same documents as the CLI and the console."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from clew.app import create_app
from clew.cli import main


def test_api_graph_equals_clew_graph_json(sample_db):
    client = create_app({"DATABASE_URL": f"sqlite:///{sample_db}", "AUTH": False}).test_client()
    api = client.get("/api/graph").get_json()
    cli = orjson.loads(CliRunner().invoke(main, ["graph", "--db", sample_db, "--json"]).stdout)
    assert api["edges"] == cli["edges"] and api["nodes"] == cli["nodes"]
    assert (
        api["cycles"]
        == cli["cycles"]
        == [["integration-hub", "inventory-service", "order-service"]]
    )


def test_api_overview_and_edge_series(sample_db):
    client = create_app({"DATABASE_URL": f"sqlite:///{sample_db}", "AUTH": False}).test_client()
    overview = client.get("/api/overview").get_json()
    assert overview["figures"]["services"] >= 15 and overview["figures"]["calls"] > 0
    series = client.get(
        "/api/edge-series?client=integration-hub&server=warehouse-service"
    ).get_json()
    assert series and all({"minute", "rps", "error_ratio", "p95_ms"} <= set(p) for p in series)
    assert sum(p["errors"] for p in series) > 0
    assert client.get("/api/edge-series?client=x").status_code == 400
    bad = client.get("/api/graph?since=someday")
    assert bad.status_code == 400 and b"is not a time" in bad.data
    assert client.get("/healthz").get_json() == {"status": "ok"}
