"""Contracts through ``clew ingest``: each version stored once by its content, with its
operations, in the order versions were first read; ``clew contracts`` lists them."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from click.testing import CliRunner
from sqlalchemy import text

from clew.cli import main
from clew.pipeline import ingest
from clew.store import contracts
from tests.conftest import corpus


def operation_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.source, count(o.id) FROM contract_versions v"
                " LEFT JOIN operations o ON o.version_id = v.id GROUP BY v.source"
            )
        )
        return {Path(source).name: n for source, n in rows}


def test_the_corpus_contracts_are_stored_once_each(engine, registry):
    folder = corpus() / "openapi"
    first = ingest(engine, [folder], registry, worker=False)
    assert (first.files, first.quarantined, first.problems) == (8, 0, [])
    assert first.inserted == first.records == 8 + 610
    counts = operation_counts(engine)
    assert counts["stripe_spec3.json"] == 417 and counts["netlify_swagger.yml"] == 174
    assert counts["v3.1_webhook-example.json"] == 1 and len(counts) == 8
    again = ingest(engine, [folder], registry, worker=False)
    assert (again.records, again.inserted) == (0, 0)  # checkpoints: nothing read twice


def test_the_same_text_elsewhere_is_the_same_version_and_a_new_text_a_new_one(
    engine, registry, tmp_path: Path
):
    source = corpus() / "openapi" / "v3.0_petstore-expanded.json"
    copy = shutil.copy(source, tmp_path / "copy.json")
    ingest(engine, [source], registry, worker=False)
    again = ingest(engine, [copy], registry, worker=False)
    assert (again.records, again.inserted, again.duplicates) == (5, 0, 5)
    document = orjson.loads(source.read_bytes())
    document["info"]["version"] = "1.1.0"
    del document["paths"]["/pets/{id}"]["delete"]
    newer = tmp_path / "petstore-1.1.json"
    newer.write_bytes(orjson.dumps(document))
    untitled = tmp_path / "inventory-api.json"
    untitled.write_bytes(orjson.dumps({"openapi": "3.1.0", "info": {"version": "1"}}))
    ingest(engine, [newer, untitled], registry, worker=False)
    with engine.connect() as conn:
        found = contracts.versions(conn)
    petstore = [v for v in found if v.title == "Swagger Petstore"]
    assert [(v.version, v.operations) for v in petstore] == [("1.0.0", 4), ("1.1.0", 3)]
    assert [v.title for v in found if v.operations == 0] == ["inventory-api"]


def test_clew_contracts_lists_versions_for_people_and_scripts(tmp_path: Path):
    db = str(tmp_path / "clew.db")
    runner = CliRunner()
    assert runner.invoke(main, ["contracts", "--db", db]).output.startswith("no contracts read")
    result = runner.invoke(main, ["ingest", str(corpus() / "openapi"), "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    listed = orjson.loads(runner.invoke(main, ["contracts", "--db", db, "--json"]).stdout)
    stripe = next(v for v in listed if v["title"] == "Stripe API")
    assert (stripe["version"], stripe["spec_version"], stripe["operations"]) == (
        "2020-08-27",
        "3.0.0",
        417,
    )
    assert stripe["deprecated"] == 15 and stripe["servers"] == ["https://api.stripe.com/"]
    shown = runner.invoke(main, ["contracts", "--db", db]).output
    assert "Swagger Petstore (openapi)\n  1.0.0  2.0  4 operations" in shown


def test_contracts_on_postgresql(pg_engine, registry):
    result = ingest(pg_engine, [corpus() / "openapi"], registry, worker=False)
    assert (result.inserted, result.quarantined) == (618, 0)
    with pg_engine.connect() as conn:
        assert sum(v.operations for v in contracts.versions(conn)) == 610
