"""Real NGINX and HAProxy in front of a small upstream: every request of a known mix is found in
Clew, counted per route and status, in the stored requests and in the rollups.

Each gateway runs as this module's own process on a free loopback port, its configuration, logs
and temporary files in a temporary folder; it is stopped gracefully (so every log line is
written) before its log is ingested. Skipped when a binary is missing, unless
CLEW_REQUIRE_GATEWAYS=1 (then it fails): CI installs both.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from clew.pipeline import ingest
from clew.records import ROOT_CALLER, ConnectionType, GatewayRequest
from clew.routes import template_of
from clew.store import gateway_requests
from collectors import Registry
from collectors.access_logs import AccessLogCollector, Settings, haproxy, nginx
from tests.clew.test_rollups import rollup_table

pytestmark = pytest.mark.gateways

SECOND = 1_000_000_000
#: Seconds a gateway may take to accept connections, and to exit once told to stop.
START_TIMEOUT = 10
STOP_TIMEOUT = 10
USER_AGENT = "clew-gateway-test/1.0"
#: Where a gateway answers its start-up token itself, without logging the request.
READY_PATH = "/clew-ready"
TRACE_OF_AN_ORDER = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_OF_A_FAILURE = "0af7651916cd43dd8448eb211c80319c"


@dataclass(frozen=True)
class Call:
    """One request of the mix, and the status the upstream answers it with."""

    method: str
    target: str
    status: int
    trace_id: str | None = None

    def headers(self) -> dict[str, str]:
        """The request's headers: ours as a client, and its trace context where it has one."""
        headers = {"User-Agent": USER_AGENT}
        if self.trace_id is not None:
            headers["traceparent"] = f"00-{self.trace_id}-00f067aa0ba902b7-01"
        return headers


MIX = [
    *(Call("GET", f"/api/v1/orders/{number}", 200) for number in range(100, 132)),
    Call("GET", "/api/v1/orders/132?expand=items", 200),
    Call("GET", "/api/v1/orders/133", 200, TRACE_OF_AN_ORDER),
    *[Call("GET", "/health", 200)] * 3,
    *[Call("POST", "/api/v1/orders", 201)] * 11,
    *(Call("GET", f"/api/v1/orders/{number}", 404) for number in range(900, 907)),
    *[Call("GET", "/api/v1/fail", 503)] * 4,
    Call("GET", "/api/v1/fail", 503, TRACE_OF_A_FAILURE),
]
#: The mix as Clew must count it: requests per method, route template and status.
EXPECTED = {
    ("GET", "/api/v1/orders/{id}", 200): 34,
    ("GET", "/health", 200): 3,
    ("POST", "/api/v1/orders", 201): 11,
    ("GET", "/api/v1/orders/{id}", 404): 7,
    ("GET", "/api/v1/fail", 503): 5,
}
#: And per endpoint of an edge: requests, errors (5xx) and client errors (4xx).
EXPECTED_ENDPOINTS = {
    "GET /api/v1/orders/{id}": (41, 0, 7),
    "GET /health": (3, 0, 0),
    "POST /api/v1/orders": (11, 0, 0),
    "GET /api/v1/fail": (5, 5, 0),
}
#: The requests that carried a traceparent, per trace id: consumer, method, path and status.
TRACED = {
    TRACE_OF_AN_ORDER: (None, "GET", "/api/v1/orders/133", 200),
    TRACE_OF_A_FAILURE: (None, "GET", "/api/v1/fail", 503),
}

NGINX_CONFIG = """\
daemon off;
{user}
pid {folder}/nginx.pid;
error_log stderr;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    log_format timed '$remote_addr - $remote_user [$time_local] "$request" $status '
                     '$body_bytes_sent "$http_referer" "$http_user_agent" '
                     '$request_time $upstream_response_time '
                     'ua="$upstream_addr" traceparent="$http_traceparent"';
    server {{
        listen 127.0.0.1:{port};
        access_log {folder}/combined.log combined;
        access_log {folder}/timed.log timed;
        location / {{ proxy_pass http://{upstream}; }}
        location = {ready_path} {{ access_log off; return 200 "{token}"; }}
    }}
}}
"""
# The accept date is in the process's timezone: TZ=UTC below.
HAPROXY_CONFIG = """\
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend edge
    bind 127.0.0.1:{port}
    capture request header User-Agent len 64
    capture request header traceparent len 55
    http-request set-log-level silent if {{ path {ready_path} }}
    http-request return status 200 content-type text/plain string {token} if {{ path {ready_path} }}
    default_backend orders
backend orders
    server orders-1 {upstream}
"""
HAPROXY_SETTINGS = Settings(fields={"request_headers": "user-agent,traceparent"})


class Upstream(BaseHTTPRequestHandler):
    """The service behind the gateways: orders (none numbered 900 or more), a route that always
    fails, and a health check."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        order = re.fullmatch(r"/api/v1/orders/(\d+)", path)
        if path == "/health":
            self._answer(200)
        elif path == "/api/v1/fail":
            self._answer(503)
        elif order is not None:
            self._answer(200 if int(order[1]) < 900 else 404)
        else:
            self._answer(404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(201 if urlsplit(self.path).path == "/api/v1/orders" else 404)

    def _answer(self, status: int) -> None:
        body = b'{"status": %d}' % status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the gateways' logs are the ones under test."""


@dataclass(frozen=True)
class Traffic:
    """The logs a gateway wrote while the mix went through it, and when the mix was sent."""

    logs: Mapping[str, Path]
    since_ns: int
    until_ns: int


def _binary(name: str) -> str:
    """A gateway's executable (Debian puts both in /usr/sbin, off a user's PATH). Missing, it
    skips the test, or fails it when CLEW_REQUIRE_GATEWAYS=1."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is not None:
        return found
    message = f"{name} is missing: apt-get install nginx haproxy"
    if os.environ.get("CLEW_REQUIRE_GATEWAYS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The upstream's ``host:port``, served from a thread of this process."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def nginx_traffic(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """NGINX as a reverse proxy writing two logs of every request, ``combined`` and ``timed``
    (the request and upstream times, the upstream's address and the traceparent added)."""
    binary = _binary("nginx")
    folder = tmp_path_factory.mktemp("nginx")
    # Run as root, NGINX would hand its workers to `nobody`, who cannot enter the test's private
    # temporary folder that holds the proxy's buffers.
    user = "user root;" if os.geteuid() == 0 else ""

    def command(port: int, token: str) -> list[str]:
        config = folder / "nginx.conf"
        config.write_text(
            NGINX_CONFIG.format(
                user=user,
                folder=folder,
                port=port,
                upstream=upstream,
                ready_path=READY_PATH,
                token=token,
            )
        )
        # -e: where errors go before the configuration is read (a build may say /var/log/nginx)
        return [binary, "-p", str(folder), "-c", str(config), "-e", "stderr"]

    since_ns = time.time_ns()
    with serving("nginx", command, signal.SIGQUIT, folder / "nginx.out") as port:
        send(MIX, port)
    return Traffic(
        {"combined": folder / "combined.log", "timed": folder / "timed.log"},
        since_ns,
        time.time_ns(),
    )


@pytest.fixture(scope="module")
def haproxy_traffic(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """HAProxy in front of the upstream, logging ``option httplog`` with the User-Agent and
    traceparent captured, to its standard output, which goes to a file."""
    binary = _binary("haproxy")
    folder = tmp_path_factory.mktemp("haproxy")

    def command(port: int, token: str) -> list[str]:
        config = folder / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(port=port, upstream=upstream, ready_path=READY_PATH, token=token)
        )
        return [binary, "-db", "-f", str(config)]  # -db: in the foreground

    since_ns = time.time_ns()
    log = folder / "access.log"
    # SIGUSR1, HAProxy's soft stop: it closes its listeners, finishes what is in flight, exits.
    with serving("haproxy", command, signal.SIGUSR1, log, env={"TZ": "UTC"}) as port:
        send(MIX, port)
    return Traffic({"httplog": log}, since_ns, time.time_ns())


@contextmanager
def serving(
    name: str,
    command: Callable[[int, str], list[str]],
    stop_signal: signal.Signals,
    stdout: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[int]:
    """A gateway serving on a free loopback port; yields the port. ``command(port, token)``
    starts it configured to answer ``READY_PATH`` with the token, unlogged. Leaving, it is
    stopped by ``stop_signal`` and must exit cleanly; it is stopped also when the body fails.

    A port found free may be taken by another process before the gateway binds it: the gateway
    then fails to start (the token tells its answers from another listener's), and it is started
    again on another port.
    """
    stderr = stdout.with_suffix(".err")
    for _attempt in range(3):
        port, token = _free_port(), secrets.token_hex(8)
        with stdout.open("ab") as out, stderr.open("ab") as err:
            # a session of its own: should it hang, its workers are killed with it
            process = subprocess.Popen(
                command(port, token),
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        if _answers(process, port, token):
            break
        _kill(process)
    else:
        pytest.fail(f"{name} did not start:\n{stderr.read_text()}")
    try:
        yield port
    finally:
        status = _stop(process, stop_signal)
    if status != 0:
        pytest.fail(f"{name} exited with {status} when stopped:\n{stderr.read_text()}")


def _free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(process: subprocess.Popen, port: int, token: str) -> bool:
    """Whether the process came to answer ``READY_PATH`` with its token on the port (False: it
    exited, or did not in ``START_TIMEOUT``)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", READY_PATH)
            if connection.getresponse().read() == token.encode():
                return True
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or someone else is
        finally:
            connection.close()
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen, stop_signal: signal.Signals) -> int:
    """Stop the process with ``stop_signal``, or kill it when it does not exit in time; its exit
    status."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill(process)
    return process.returncode


def _kill(process: subprocess.Popen) -> None:
    """Kill the process and its workers: its session, while the process is not reaped (so the
    session's id is still its own)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def send(calls: list[Call], port: int) -> None:
    """Send each call on a connection of its own, checking the status the gateway answers."""
    for call in calls:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            body = b'{"item": "book", "quantity": 1}' if call.method == "POST" else None
            connection.request(call.method, call.target, body=body, headers=call.headers())
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status == call.status, f"{call}: the gateway answered {response.status}"


def ingested(engine, log: Path, collector: AccessLogCollector) -> tuple[int, list[str]]:
    """Ingest one log with only ``collector`` registered: how many records it gave and the
    reasons of the lines it quarantined."""
    result = ingest(engine, [log], Registry([collector]))
    assert result.problems == []
    with engine.connect() as conn:
        reasons = list(conn.scalars(text("SELECT reason FROM quarantine ORDER BY id")))
    assert len(reasons) == result.quarantined
    return result.inserted, reasons


def stored_requests(engine, traffic: Traffic) -> list[GatewayRequest]:
    """Every stored request, checked to have started while the mix was sent. NGINX logs the
    end time to the second, so a start it gives may fall up to a second before ``since_ns``
    (which is taken before the gateway starts, ahead of the millisecond ``$request_time``
    rounds to)."""
    with engine.connect() as conn:
        every = list(gateway_requests.in_window(conn, 0, 2**63 - 1))
        sent = list(gateway_requests.in_window(conn, traffic.since_ns - SECOND, traffic.until_ns))
    assert len(sent) == len(every)
    return every


def counts_per_route(requests: list[GatewayRequest]) -> Counter:
    """Requests per method, route template and status."""
    return Counter((r.method, template_of(r.path), r.status) for r in requests)


def edges(engine) -> dict[tuple[str, str, str, str], tuple[int, int, int]]:
    """The gateway rollup cells summed over their minutes (the mix may straddle one): (caller,
    callee, connection type, endpoint) → (requests, errors, client errors)."""
    totals: dict[tuple[str, str, str, str], tuple[int, int, int]] = {}
    for key, cell in rollup_table(engine).items():
        _minute, caller, callee, connection_type, endpoint, source = key
        assert source == "gateway", key
        count, errors, client_errors, _duration = cell["sums"]
        before = totals.get((caller, callee, connection_type, endpoint), (0, 0, 0))
        totals[(caller, callee, connection_type, endpoint)] = (
            before[0] + count,
            before[1] + errors,
            before[2] + client_errors,
        )
    return totals


def expected_edges(
    gateway: str, upstream: str | None
) -> dict[tuple[str, str, str, str], tuple[int, int, int]]:
    """The mix's edges: the generic client → the gateway (no consumer is logged), and the
    gateway → its upstream where the log names one."""
    expected = {
        (ROOT_CALLER, gateway, ConnectionType.VIRTUAL, endpoint): counts
        for endpoint, counts in EXPECTED_ENDPOINTS.items()
    }
    if upstream is not None:
        expected |= {
            (gateway, upstream, ConnectionType.DIRECT, endpoint): counts
            for endpoint, counts in EXPECTED_ENDPOINTS.items()
        }
    return expected


def traced(engine) -> dict[str, list[tuple]]:
    """The stored requests of the mix's trace ids, without their start times."""
    with engine.connect() as conn:
        found = gateway_requests.by_trace_ids(conn, TRACED)
    return {trace_id: [row[2:] for row in rows] for trace_id, rows in found.items()}


def test_nginx_combined_log_counts_every_request_per_route_and_status(engine, nginx_traffic):
    inserted, quarantined = ingested(engine, nginx_traffic.logs["combined"], nginx.collector())
    assert (inserted, quarantined) == (len(MIX), [])
    requests = stored_requests(engine, nginx_traffic)
    assert counts_per_route(requests) == EXPECTED
    assert {(r.gateway, r.upstream) for r in requests} == {("nginx", None)}
    assert edges(engine) == expected_edges("nginx", None)  # combined names no upstream


def test_nginx_timed_log_adds_times_the_upstream_and_trace_ids(engine, nginx_traffic, upstream):
    inserted, quarantined = ingested(engine, nginx_traffic.logs["timed"], nginx.collector())
    assert (inserted, quarantined) == (len(MIX), [])
    requests = stored_requests(engine, nginx_traffic)
    assert counts_per_route(requests) == EXPECTED
    assert {r.upstream for r in requests} == {upstream}
    assert all(r.duration_ns >= 0 and r.upstream_duration_ns >= 0 for r in requests)
    assert edges(engine) == expected_edges("nginx", upstream)
    assert traced(engine) == {
        trace_id: [("nginx", *request)] for trace_id, request in TRACED.items()
    }


def test_haproxy_httplog_counts_every_request_with_its_backend_and_trace_ids(
    engine, haproxy_traffic
):
    collector = haproxy.collector().configured(HAPROXY_SETTINGS)
    inserted, quarantined = ingested(engine, haproxy_traffic.logs["httplog"], collector)
    assert inserted == len(MIX)
    # On its soft stop HAProxy logs "Proxy edge stopped (cumulated conns: ...)" to the same
    # target as a warning, which a `log` level cannot keep out (it drops only the less severe):
    # those lines, and only those, are quarantined, as what they are.
    assert quarantined
    assert all(
        re.fullmatch(r"haproxy_httplog: a proxy event \(Proxy \S+ stopped .*", reason)
        for reason in quarantined
    ), quarantined
    requests = stored_requests(engine, haproxy_traffic)
    assert counts_per_route(requests) == EXPECTED
    assert {(r.gateway, r.upstream) for r in requests} == {("haproxy", "orders")}
    assert all(r.duration_ns >= 0 and r.upstream_duration_ns >= 0 for r in requests)
    assert {json.loads(r.attributes)["user_agent"] for r in requests} == {USER_AGENT}
    assert edges(engine) == expected_edges("haproxy", "orders")
    assert traced(engine) == {
        trace_id: [("haproxy", *request)] for trace_id, request in TRACED.items()
    }
