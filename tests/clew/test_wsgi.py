"""Clew under gunicorn: several worker processes share logins, CSRF and the schema through the
database, receivers hold nothing that would make two of them store a trace differently, and
``clew serve --workers N`` serves both ports from one gunicorn."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from click.testing import CliRunner
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import text

from clew import metrics, receiver, store, wsgi
from clew.app import create_app
from clew.cli import main
from clew.store import accounts, queries
from tests.clew.test_receiver import ids_of, proto_body, sdk_spans, stored

TIMEOUT = 60  # generous: waits for completion, never a measure of speed
PROTOBUF = "application/x-protobuf"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    cookies: dict[str, str] | None = None,
    **headers: str,
) -> Answer:
    """One request on a connection of its own (so any worker may take it)."""
    sent = {k.replace("_", "-"): v for k, v in headers.items()} | {"Connection": "close"}
    if cookies:
        sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class Gunicorn:
    """``gunicorn TARGET`` in a subprocess on a free port, with an access log naming the worker
    (its pid) that answered each request."""

    target: str
    environment: dict[str, str]
    log: Path
    workers: int = 2
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            self.target,
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        command += ["--workers", str(self.workers), "--worker-class", "gthread", "--threads", "2"]
        command += ["--no-control-socket", "--access-logfile", str(self.log)]
        command += ["--access-logformat", "%(p)s %(m)s %(U)s?%(q)s %(s)s"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ | self.environment,
        )
        return self

    def wait_until_answering(self, path: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, stderr = self.process.communicate()
                pytest.fail(f"gunicorn exited with {self.process.returncode}: {stderr.decode()}")
            try:
                _request(self.port, "GET", path)
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer on port {self.port}")

    def workers_that_answered(self, pattern: str) -> dict[str, list[str]]:
        """pid → the statuses its worker answered to requests whose line matches ``pattern``."""
        answered: dict[str, list[str]] = {}
        for line in self.log.read_text().splitlines():
            if re.search(pattern, line):
                pid, *_, status = line.split()
                answered.setdefault(pid, []).append(status)
        return answered

    def stop(self) -> str:
        """SIGTERM (a graceful stop); returns what it wrote to stderr."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=TIMEOUT)
        assert self.process.returncode == 0, stderr.decode()
        return stderr.decode()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """An empty database of its own (no schema yet) on the test PostgreSQL server."""
    from tests.scratch_postgres import scratch_database

    with scratch_database(postgres_url, prefix="clew_wsgi") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path: Path) -> str:
    """The URL of a database with no schema yet: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return store.database_url(str(tmp_path / "clew.db"))
    return request.getfixturevalue("fresh_postgres")


def _until_both_workers(served: Gunicorn, send, marker: str) -> None:
    """Send pairs of requests at once (``send(n)`` each) until two workers have answered lines
    carrying ``marker`` (a worker still starting on a busy machine takes none at first)."""
    deadline = time.monotonic() + TIMEOUT
    n = 0
    while time.monotonic() < deadline:
        pair = [threading.Thread(target=send, args=(f"{n}-{side}",)) for side in "ab"]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
        if len(served.workers_that_answered(marker)) >= 2:
            return
        n += 1
    pytest.fail(f"one worker answered every request marked {marker!r}")


# --- The console under gunicorn --------------------------------------------------------------


@pytest.mark.slow
def test_a_login_made_through_one_worker_is_honoured_by_the_other(empty_database, tmp_path):
    served = Gunicorn(
        "clew.wsgi:console()", {"CLEW_DATABASE_URL": empty_database}, tmp_path / "access.log"
    ).start()
    try:
        # Two workers made the schema of an empty database as they started, one after the other.
        served.wait_until_answering("/healthz")
        engine = store.open_engine(empty_database)
        with engine.begin() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == (
                store.SCHEMA_HEAD
            )
            accounts.add_user(conn, "alice", "correct horse", "admin", store.utcnow())
            token = accounts.create_token(conn, "collector", "ingest", store.utcnow())[1]

        form = _request(served.port, "GET", "/login")
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', form.body).group(1).decode()
        login = _request(
            served.port,
            "POST",
            "/login",
            urlencode({"csrf_token": csrf, "username": "alice", "password": "correct horse"}),
            form.cookies(),
            Content_Type="application/x-www-form-urlencoded",
        )
        assert login.status == 302, login.body
        session = {"clew_session": login.cookies()["clew_session"]}
        csrf_after_login = login.cookies()["_csrf_token"]

        assert _request(served.port, "GET", "/api/waivers?anonymous").status == 401
        statuses: list[int] = []

        def read(n: str) -> None:
            statuses.append(
                _request(served.port, "GET", f"/api/waivers?n={n}", None, session).status
            )

        _until_both_workers(served, read, r"/api/waivers\?n=")
        assert set(statuses) == {200}
        for pid, answered in served.workers_that_answered(r"/api/waivers\?n=").items():
            assert set(answered) == {"200"}, pid

        # A state-changing request carries the session's CSRF token whichever worker takes it;
        # without it, every worker refuses.
        def log_out(n: str) -> None:
            answer = _request(
                served.port, "POST", f"/logout?n={n}", b"", session, X_CSRFToken=csrf_after_login
            )
            statuses.append(answer.status)

        statuses.clear()
        _until_both_workers(served, log_out, r"/logout\?n=")
        assert set(statuses) == {302}
        assert _request(served.port, "POST", "/logout?forged", b"", session).status == 403

        page = _request(served.port, "GET", "/", None, session)
        assert page.status == 200 and b"_dash-config" in page.body
        layout = _request(served.port, "GET", "/_dash-layout", None, session)
        assert layout.status == 200 and orjson.loads(layout.body)

        # The whole app carries the receiver too.
        spans = sdk_spans("beside-the-console")
        exporter = OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{served.port}{receiver.PATH}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        served.stop()
        assert stored(engine) == ids_of(spans)
        engine.dispose()
    finally:
        served.kill()


_ENSURE_SCHEMA_WHEN_TOLD = """
import sys
from clew import store
engine = store.open_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.ensure_schema(engine)
"""


@pytest.mark.slow
def test_processes_starting_together_make_the_schema_once(empty_database):
    # Without the lock, four processes creating one schema at the same instant collide
    # (PostgreSQL: a duplicate type; SQLite: "database is locked" or a duplicate stamp).
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _ENSURE_SCHEMA_WHEN_TOLD, empty_database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        for process in processes:  # as near to the same instant as four writes go
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            process.stdin.flush()
        failures = []
        for process in processes:
            _, stderr = process.communicate(timeout=TIMEOUT)
            if process.returncode:
                failures.append(stderr.decode().strip().splitlines()[-1])
        assert not failures
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    engine = store.open_engine(empty_database)
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [
            store.SCHEMA_HEAD
        ]
        assert conn.scalar(text("SELECT count(*) FROM users")) == 0
    engine.dispose()


# --- Receivers hold no state of their own ----------------------------------------------------


def _landscape_traces(count: int) -> list[ReadableSpan]:
    """SDK spans of ``count`` traces through three services: web → checkout → payments and a
    database, every third payment failing."""
    providers = {}
    memory = InMemorySpanExporter()
    for service in ("web", "checkout", "payments"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers[service] = provider
    web, checkout, payments = (providers[s].get_tracer("tests.wsgi") for s in providers)

    def start(tracer, name: str, parent, kind: SpanKind, **attributes):
        context = trace.set_span_in_context(parent) if parent is not None else None
        return tracer.start_span(name, context=context, kind=kind, attributes=attributes)

    for n in range(count):
        root = start(web, "GET /cart", None, SpanKind.SERVER, **{"http.route": "/cart"})
        call = start(web, "POST", root, SpanKind.CLIENT, **{"server.address": "checkout"})
        order = start(checkout, "POST /orders", call, SpanKind.SERVER, **{"http.route": "/orders"})
        start(checkout, "SELECT", order, SpanKind.CLIENT, **{"db.system.name": "postgresql"}).end()
        pay = start(checkout, "POST", order, SpanKind.CLIENT, **{"server.address": "payments"})
        charge = start(
            payments, "POST /charges", pay, SpanKind.SERVER, **{"http.route": "/charges"}
        )
        if n % 3 == 0:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
            pay.set_status(Status(StatusCode.ERROR, "payments answered 502"))
            order.set_status(Status(StatusCode.ERROR, "no payment"))
        for span in (charge, pay, order, call, root):
            span.end()
    for provider in providers.values():
        provider.shutdown()
    return list(memory.get_finished_spans())


def _by_trace(spans: list[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def _graph_and_paths(url: str, since: int, until: int) -> tuple[dict, list[dict]]:
    """What ``clew graph --json`` and ``clew paths --failing --json`` print for the window."""
    window = queries.window_between(str(since), str(until), time.time_ns())
    engine = store.open_engine(url)
    try:
        with engine.connect() as conn:
            return metrics.graph_view(conn, window), metrics.failing_paths(conn, window)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_receivers_store_a_split_trace_as_one_receiver_does(postgres_url, tmp_path):
    from tests.scratch_postgres import scratch_database

    since = int(time.time()) - 60
    spans = _landscape_traces(12)
    traces = _by_trace(spans)
    # Each trace's spans alternate between the receivers, so every parent is in the other half.
    halves: list[list[list[ReadableSpan]]] = [[], []]
    for trace_spans in traces.values():
        for side in (0, 1):
            halves[side].append(trace_spans[side::2])
    parents_elsewhere = {
        (span.context.trace_id, span.parent.span_id)
        for half in halves[1]
        for span in half
        if span.parent
    }
    assert parents_elsewhere <= {
        (s.context.trace_id, s.context.span_id) for h in halves[0] for s in h
    }

    with (
        scratch_database(postgres_url, "clew_split") as split_url,
        scratch_database(postgres_url, "clew_whole") as whole_url,
    ):
        environment = {"CLEW_DATABASE_URL": split_url, "CLEW_AUTH": "false"}
        receivers = [
            Gunicorn("clew.wsgi:receiver()", environment, tmp_path / f"r{side}.log", workers=1)
            for side in (0, 1)
        ]
        try:
            for served in receivers:
                served.start()
            for served in receivers:
                served.wait_until_answering(receiver.PATH)
            # A receiver's port answers a load balancer's health checks, and nothing else.
            assert _request(receivers[0].port, "GET", "/healthz").status == 200
            assert _request(receivers[0].port, "GET", "/api/graph").status == 404

            results: list[SpanExportResult] = []

            def send(side: int) -> None:
                url = f"http://127.0.0.1:{receivers[side].port}{receiver.PATH}"
                exporter = OTLPSpanExporter(endpoint=url, timeout=TIMEOUT)
                results.extend(exporter.export(part) for part in halves[side])
                exporter.shutdown()

            senders = [threading.Thread(target=send, args=(side,)) for side in (0, 1)]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            assert results == [SpanExportResult.SUCCESS] * (2 * len(traces))
            for served in receivers:
                served.stop()
        finally:
            for served in receivers:
                served.kill()

        whole = create_app({"DATABASE_URL": whole_url, "AUTH": False})
        store.ensure_schema(store.engine_of(whole))
        answer = whole.test_client().post(
            receiver.PATH, data=proto_body(spans), content_type=PROTOBUF
        )
        assert answer.status_code == 200
        receiver.stop(whole)
        store.engine_of(whole).dispose()

        until = int(time.time()) + 60
        split_graph, split_paths = _graph_and_paths(split_url, since, until)
        whole_graph, whole_paths = _graph_and_paths(whole_url, since, until)
        edges = {(e["client"], e["server"]): e["count"] for e in whole_graph["edges"]}
        assert edges[("web", "checkout")] == edges[("checkout", "payments")] == len(traces)
        assert split_graph == whole_graph
        assert whole_paths and split_paths == whole_paths
        split_engine = store.open_engine(split_url)
        assert stored(split_engine) == ids_of(spans)
        split_engine.dispose()


# --- clew serve --workers -------------------------------------------------------------------


def test_serve_help_offers_workers():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


@pytest.mark.slow
def test_clew_serve_with_workers_serves_both_ports_from_several_processes(tmp_path):
    db = tmp_path / "serve.db"
    engine = store.open_engine(str(db))
    store.ensure_schema(engine)
    with engine.begin() as conn:
        token = accounts.create_token(conn, "collector", "ingest", store.utcnow())[1]
    command = [sys.executable, "-c", "from clew.cli import main; main()", "serve", "--db", str(db)]
    command += ["--port", "0", "--otlp-port", str(_free_port()), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        otlp_line, console_line = (process.stdout.readline().decode() for _ in range(2))
        assert otlp_line.startswith("OTLP/HTTP receiver on http://127.0.0.1:"), otlp_line
        assert console_line.startswith("Clew console on http://127.0.0.1:"), console_line
        assert "2 worker processes" in console_line
        otlp_url = otlp_line.split()[-1]
        otlp_port = int(otlp_url.split(":")[2].split("/")[0])
        console_port = int(console_line.split()[3].rsplit(":", 1)[1].rstrip("/"))

        assert _request(console_port, "GET", "/healthz").status == 200
        assert _request(console_port, "GET", "/api/overview").status == 401  # logins are on
        assert _request(otlp_port, "GET", "/healthz").status == 200
        alone = _request(otlp_port, "GET", "/api/overview")
        assert alone.status == 404 and b"serves only POST /v1/traces" in alone.body
        spans = sdk_spans("through-the-otlp-port")
        exporter = OTLPSpanExporter(
            endpoint=otlp_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        # A body past the cap is refused before it is read, as waitress refuses it.
        too_large = _request(
            console_port,
            "POST",
            "/login",
            b"x",
            Content_Type="multipart/form-data; boundary=x",
            Content_Length=str(wsgi.MAX_CONTENT_LENGTH + 1),
        )
        assert too_large.status == 413

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, stderr.decode()
        booted = set(re.findall(r"Booting worker with pid: (\d+)", stderr.decode()))
        assert len(booted) == 2, stderr.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert stored(engine) == ids_of(spans)
    engine.dispose()
