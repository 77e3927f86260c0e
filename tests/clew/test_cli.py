"""The command line: JSON shapes, exit codes and the demo database's graph."""

from __future__ import annotations

import sqlite3

import orjson
from click.testing import CliRunner

from clew.cli import main
from tests.conftest import corpus

INGEST_KEYS = {"files", "records", "inserted", "duplicates", "quarantined"}
EDGE_KEYS = {
    "client",
    "server",
    "connection_type",
    "sources",
    "count",
    "errors",
    "error_ratio",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
}


def run(*args: str) -> tuple[int, dict | str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    try:
        return result.exit_code, orjson.loads(result.stdout)
    except orjson.JSONDecodeError:
        return result.exit_code, result.output


def test_ingest_json_reports_every_span_and_a_rerun_inserts_nothing(tmp_path):
    db = str(tmp_path / "c.db")
    code, first = run("ingest", str(corpus("otlp_json")), "--db", db, "--json")
    assert code == 0 and set(first) >= INGEST_KEYS
    assert (first["files"], first["inserted"], first["quarantined"]) == (6, 38, 1)
    code, again = run("ingest", str(corpus("otlp_json")), "--db", db, "--json")
    assert code == 0 and (again["inserted"], again["quarantined"]) == (0, 0)


def test_ingest_names_the_quarantined_file_position_and_reason(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"resourceSpans": []}\n{not json}\n')
    result = CliRunner().invoke(main, ["ingest", str(bad), "--db", str(tmp_path / "c.db")])
    assert result.exit_code == 0
    assert f"{bad}: line 2: invalid JSON" in result.output
    assert "1 quarantined" in result.output


def test_ingest_rejects_an_unknown_format_and_a_missing_file(tmp_path):
    db = str(tmp_path / "c.db")
    result = CliRunner().invoke(main, ["ingest", str(tmp_path), "--format", "nope", "--db", db])
    assert result.exit_code == 2 and "unknown format 'nope'" in result.output
    code, out = run("ingest", str(tmp_path / "missing.json"), "--db", db, "--json")
    assert code == 1 and out["problems"] == [f"{tmp_path / 'missing.json'}: no such file"]


def test_graph_json_has_the_documented_shape(tmp_path):
    db = str(tmp_path / "c.db")
    run("ingest", str(corpus("otlp_json")), "--db", db)
    code, view = run("graph", "--db", db, "--json")
    assert code == 0
    assert view["edges"] and all(set(e) >= EDGE_KEYS for e in view["edges"])
    assert all({"id", "kind"} <= set(n) for n in view["nodes"])
    result = CliRunner().invoke(main, ["graph", "--db", db, "--since", "yesterday-ish"])
    assert result.exit_code == 2 and "is not a time" in result.output


def test_graph_window_excludes_traffic_outside_it(tmp_path):
    db = str(tmp_path / "c.db")
    run("ingest", str(corpus("otlp_json", "error_timeout_masked.json")), "--db", db)
    # the capture is from 2026-08-06; a window in 2025 is empty, one around the capture is not
    code, empty = run(
        "graph", "--db", db, "--json", "--since", "2025-01-01", "--until", "2025-02-01"
    )
    assert code == 0 and empty["edges"] == []
    code, full = run(
        "graph", "--db", db, "--json", "--since", "2026-08-01", "--until", "2026-09-01"
    )
    assert len(full["edges"]) == 6


def test_db_upgrade(tmp_path):
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", str(tmp_path / "u.db")])
    assert result.exit_code == 0 and "is at head" in result.output


def test_db_rebuild_rollups_recomputes_the_same_graph(tmp_path):
    db = str(tmp_path / "c.db")
    run("ingest", str(corpus("otlp_json")), "--db", db, "--json")
    _, before = run("graph", "--db", db, "--json")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM edge_rollups")  # as if the rules had changed
    _, emptied = run("graph", "--db", db, "--json")
    assert emptied["edges"] == []
    code, rebuilt = run("db", "rebuild-rollups", "--db", db, "--json")
    assert code == 0 and rebuilt["rollup_rows"] > 0 and rebuilt["seconds"] >= 0
    _, after = run("graph", "--db", db, "--json")
    assert after == before and len(after["edges"]) >= 6
