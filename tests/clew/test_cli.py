"""The command line: JSON shapes, exit codes and the demo database's graph."""

from __future__ import annotations

import sqlite3

import orjson
from click.testing import CliRunner

from clew import pipeline
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


def record_forks(monkeypatch) -> list:
    """Every input from now on is large enough for the parse worker; the forked workers made are
    listed (each with its exit status once done)."""
    forked: list = []
    original = pipeline._Forked

    def recording(*args):
        forked.append(original(*args))
        return forked[-1]

    monkeypatch.setattr(pipeline, "WORKER_BYTES", 0)
    monkeypatch.setattr(pipeline, "_Forked", recording)
    return forked


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


def test_ingest_of_large_input_forks_a_parse_worker_with_the_same_result(tmp_path, monkeypatch):
    """Large input is parsed in a forked worker (here everything counts as large): the same
    spans, quarantine and graph as parsing in this process."""
    here = str(tmp_path / "here.db")
    code, alone = run("ingest", str(corpus("otlp_json")), "--db", here, "--json")
    assert code == 0
    forked = record_forks(monkeypatch)
    there = str(tmp_path / "there.db")
    code, with_worker = run("ingest", str(corpus("otlp_json")), "--db", there, "--json")
    assert code == 0 and len(forked) == 1 and forked[0].returncode == 0
    assert with_worker == alone
    assert (with_worker["inserted"], with_worker["quarantined"]) == (38, 1)
    since = ("--since", "2000-01-01")
    graphs = [run("graph", "--db", db, "--json", *since)[1] for db in (here, there)]
    assert graphs[0] == graphs[1] and graphs[0]["edges"]


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
        conn.execute("DELETE FROM edge_rollup_blocks")
    _, emptied = run("graph", "--db", db, "--json")
    assert emptied["edges"] == []
    code, rebuilt = run("db", "rebuild-rollups", "--db", db, "--json")
    assert code == 0 and rebuilt["rollup_rows"] > 0 and rebuilt["seconds"] >= 0
    _, after = run("graph", "--db", db, "--json")
    assert after == before and len(after["edges"]) >= 6


def test_paths_trace_and_diff_say_what_is_wrong_with_their_input(tmp_path):
    db = str(tmp_path / "c.db")
    runner = CliRunner()
    unknown = runner.invoke(main, ["trace", "00ff", "--db", db])
    assert unknown.exit_code == 1 and "Trace 00ff is not in the store" in unknown.output
    no_kind = runner.invoke(main, ["paths", "--db", db])
    assert no_kind.exit_code == 2 and "--failing" in no_kind.output
    bad_time = runner.invoke(main, ["graph", "--diff", "--baseline-since", "yesterday", "--db", db])
    assert bad_time.exit_code == 2 and "'yesterday' is not a time" in bad_time.output
    assert run("paths", "--failing", "--db", db, "--json") == (0, {"paths": []})
    code, empty = run("graph", "--diff", "--since", "1h", "--db", db, "--json")
    assert code == 0 and (empty["added"], empty["removed"], empty["changed"]) == ([], [], [])


def test_trace_text_marks_the_failing_span_and_the_critical_path(tmp_path):
    from tests import otlp
    from tests.clew.test_rollups import landscape

    db = str(tmp_path / "c.db")
    path = otlp.write_lines(tmp_path / "t.jsonl", landscape(range(3, 4)))
    assert run("ingest", str(path), "--db", db, "--json")[0] == 0
    code, text_out = run("trace", f"{3:032x}", "--db", db)
    lines = text_out.splitlines()
    assert code == 0 and lines[0].startswith(f"trace {3:032x}: 7 spans, 3 services")
    failing = [line for line in lines if line.startswith("!")]
    assert len(failing) == 1 and "orders: POST /orders" in failing[0] and failing[0][1] == "*"
    paths_text = run("paths", "--failing", "--db", db)[1]
    assert (
        "shop GET /cart: shop -> orders" in paths_text
        and "failing edge shop -> orders" in paths_text
    )


def test_ingest_refuses_access_log_settings_it_cannot_honour(tmp_path, monkeypatch):
    db = str(tmp_path / "c.db")
    monkeypatch.delenv("CLEW_HASH_KEY", raising=False)
    cases = {
        ("--hash-clients",): "CLEW_HASH_KEY",
        ("--consumer", "cookie"): "auto, client or header:NAME",
        ("--consumer", "header:"): "auto, client or header:NAME",
        ("--timezone", "CET"): "an offset such as +01:00",
    }
    for options, reason in cases.items():
        result = CliRunner().invoke(main, ["ingest", str(tmp_path), "--db", db, *options])
        assert result.exit_code == 2 and reason in result.output, options


def test_access_log_settings_from_the_options(monkeypatch):
    from clew.cli import _access_log_settings

    monkeypatch.setenv("CLEW_HASH_KEY", "s3cret")
    settings = _access_log_settings("edge", "header:X-Consumer", True, "-05:30")
    assert (settings.gateway, settings.consumer, settings.timezone) == (
        "edge",
        "header:X-Consumer",
        -330,
    )
    assert settings.hash_clients and settings.hash_key == "s3cret"
    hashed = settings.client("203.0.113.7")
    assert hashed.startswith("client-") and "203.0.113.7" not in hashed
    assert hashed == settings.client("203.0.113.7") != settings.client("203.0.113.8")
    assert settings.consumer_of("203.0.113.7", None, {"x-consumer": "partner-a"}) == "partner-a"
    assert settings.consumer_of("203.0.113.7", "kong-user", {}) == hashed
