"""``clew ingest --log-format FILE``: access logs in the operator's own format, from the command
line to the stored requests and the graph."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from clew import store
from clew.cli import main
from clew.store import gateway_requests
from tests.clew.test_cli import record_forks, run

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MAPPING = """\
format = "nginx"
gateway = "edge-proxy"
log_format = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent \
"$http_referer" "$http_user_agent" rt=$request_time urt="$upstream_response_time" \
ua=$upstream_addr trace=$http_traceparent'
"""
LINES = [
    '203.0.113.7 - partner-a [10/Oct/2024:13:55:36 +0000] "GET /v1/payments/42 HTTP/1.1" 200 120'
    ' "-" "curl/8.5.0" rt=0.250 urt="0.200" ua=10.0.0.5:8080'
    f" trace=00-{TRACE}-00f067aa0ba902b7-01",
    '203.0.113.7 - partner-a [10/Oct/2024:13:55:37 +0000] "GET /v1/payments/43 HTTP/1.1" 503 0'
    ' "-" "curl/8.5.0" rt=1.000 urt="0.500, 0.480" ua=10.0.0.5:8080, 10.0.0.6:8080 trace=-',
    '198.51.100.4 - - [10/Oct/2024:13:55:38 +0000] "POST /v1/refunds HTTP/1.1" 201 10 "-" "-"'
    ' rt=0.100 urt="0.090" ua=10.0.0.5:8080 trace=-',
    "a line of some other log",
]


def files(tmp_path: Path) -> tuple[str, str]:
    mapping = tmp_path / "edge.toml"
    mapping.write_text(MAPPING)
    log = tmp_path / "access.log"
    log.write_text("".join(line + "\n" for line in LINES))
    return str(mapping), str(log)


def stored(db: str) -> list:
    engine = store.open_engine(db)
    try:
        with engine.connect() as conn:
            return sorted(gateway_requests.in_window(conn, 0, 2**63 - 1))
    finally:
        engine.dispose()


def test_ingest_with_a_log_format_stores_the_requests_and_their_edges(tmp_path):
    mapping, log = files(tmp_path)
    db = str(tmp_path / "c.db")
    code, result = run("ingest", log, "--log-format", mapping, "--db", db, "--json")
    assert code == 0
    assert (result["files"], result["records"], result["inserted"], result["quarantined"]) == (
        1,
        4,
        3,
        1,
    )
    requests = stored(db)
    assert [(r.gateway, r.consumer, r.method, r.path, r.status) for r in requests] == [
        ("edge-proxy", "partner-a", "GET", "/v1/payments/42", 200),
        ("edge-proxy", "partner-a", "GET", "/v1/payments/43", 503),
        ("edge-proxy", None, "POST", "/v1/refunds", 201),
    ]
    assert [(r.duration_ns, r.upstream_duration_ns, r.upstream) for r in requests] == [
        (250_000_000, 200_000_000, "10.0.0.5:8080"),
        (1_000_000_000, 980_000_000, "10.0.0.6:8080"),
        (100_000_000, 90_000_000, "10.0.0.5:8080"),
    ]
    assert requests[0].trace_id == TRACE
    assert requests[0].start_ns == 1_728_568_536_000_000_000 - 250_000_000

    code, graph = run("graph", "--since", "2000-01-01", "--db", db, "--json")
    edges = {(e["client"], e["server"]): (e["count"], e["errors"]) for e in graph["edges"]}
    assert edges == {
        ("partner-a", "edge-proxy"): (2, 1),
        ("client", "edge-proxy"): (1, 0),  # no user logged: the generic caller
        ("edge-proxy", "10.0.0.5:8080"): (2, 0),
        ("edge-proxy", "10.0.0.6:8080"): (1, 1),
    }
    again = run("ingest", log, "--log-format", mapping, "--db", db, "--json")[1]
    assert (again["records"], again["inserted"]) == (0, 0)


def test_the_line_that_does_not_match_is_shown_with_where_it_differs(tmp_path):
    mapping, log = files(tmp_path)
    result = CliRunner().invoke(
        main, ["ingest", log, "--log-format", mapping, "--db", str(tmp_path / "c.db")]
    )
    assert result.exit_code == 0
    assert "1 files, 4 records: 3 inserted, 0 duplicates, 1 quarantined" in result.output
    assert (
        f"{log}: line 4: edge.toml: not in the log_format: expected ' - ' after $remote_addr"
        " at column 2, found ' line of some other log'"
    ) in result.output


def test_the_gateway_and_consumer_options_apply_to_a_log_format(tmp_path):
    mapping, log = files(tmp_path)
    db = str(tmp_path / "c.db")
    options = ("--gateway", "edge-2", "--consumer", "client")
    assert run("ingest", log, "--log-format", mapping, *options, "--db", db, "--json")[0] == 0
    assert [(r.gateway, r.consumer) for r in stored(db)] == [
        ("edge-2", "203.0.113.7"),
        ("edge-2", "203.0.113.7"),
        ("edge-2", "198.51.100.4"),
    ]


def test_a_log_format_is_read_the_same_in_a_forked_parse_worker(tmp_path, monkeypatch):
    """Large input is parsed in a forked worker, which receives the collector pickled."""
    mapping, log = files(tmp_path)
    here = str(tmp_path / "here.db")
    assert run("ingest", log, "--log-format", mapping, "--db", here, "--json")[0] == 0
    forked = record_forks(monkeypatch)
    there = str(tmp_path / "there.db")
    code, result = run("ingest", log, "--log-format", mapping, "--db", there, "--json")
    assert code == 0 and len(forked) == 1 and forked[0].returncode == 0
    assert (result["inserted"], result["quarantined"]) == (3, 1)
    assert stored(there) == stored(here)


def test_ingest_refuses_a_bad_mapping_file_and_a_second_format(tmp_path):
    mapping, log = files(tmp_path)
    db = str(tmp_path / "c.db")
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "nginx"\nlog_format = "$remote_addr$status [$time_local]"\n')
    cases = {
        ("--log-format", str(bad)): f"{bad}: log_format: $remote_addr and $status have nothing",
        ("--log-format", str(tmp_path / "none.toml")): "does not exist",
        ("--log-format", mapping, "--format", "nginx"): "--format and --log-format both",
    }
    for options, reason in cases.items():
        result = CliRunner().invoke(main, ["ingest", log, "--db", db, *options])
        assert result.exit_code == 2 and reason in " ".join(result.output.split()), options
    assert not Path(db).exists()  # refused before the store is opened
