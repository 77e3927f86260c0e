"""Hostile input: slow clients against ``clew serve``, secrets kept out of logs, SQL-injection
strings in every API and URL parameter, and file sources that try to leave their folder."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest
from click.testing import CliRunner
from markupsafe import escape
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy import inspect, text

from clew import cli, receiver, store
from clew.app import create_app
from clew.cli import main
from tests.clew.test_receiver import ids_of, proto_body, sdk_spans, status_of, stored
from tests.conftest import interruptible
from tests.stored import stored_spans

PROTOBUF = "application/x-protobuf"
TIMEOUT = 60  # generous: these wait for completion, they never measure speed


# --- Slow clients against `clew serve` ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Serving:
    """``clew serve`` in a subprocess on free ports: the console port and an OTLP port."""

    def __init__(self, db: Path) -> None:
        command = [sys.executable, "-c", "from clew.cli import main; main()", "serve"]
        command += ["--db", str(db), "--port", "0", "--otlp-port", str(_free_port())]
        # Without logins: these tests are about the server, not about who may use it.
        environment = os.environ | {"CLEW_AUTH": "false"}
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            preexec_fn=interruptible,
        )
        assert self.process.stdout is not None
        otlp_line, console_line = (self.process.stdout.readline().decode() for _ in range(2))
        assert otlp_line.startswith("OTLP/HTTP receiver on http://127.0.0.1:"), otlp_line
        self.otlp_port = int(otlp_line.split()[-1].split(":")[2].split("/")[0])
        self.port = int(console_line.split()[3].rsplit(":", 1)[1].rstrip("/"))

    def stop(self) -> str:
        """SIGINT, as Ctrl-C; returns what it wrote to stderr."""
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=TIMEOUT)
        assert self.process.returncode == 0, stderr.decode()
        return stderr.decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    served = Serving(tmp_path / "serve.db")
    try:
        yield served
    finally:
        served.kill()


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _head(length: int, port: int) -> bytes:
    return (
        f"POST {receiver.PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {PROTOBUF}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _answer(connection: socket.socket) -> tuple[int, bytes]:
    """The status and body of the one HTTP response on ``connection``."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response.status, response.read()


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": PROTOBUF})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_slow_and_stalled_clients_hold_no_thread_and_others_are_answered(serving, tmp_path):
    # More slow clients than `clew serve` has threads (8), on both ports: some trickle a body
    # byte by byte, some stopped inside their headers, some after their headers.
    trickled = sdk_spans("trickled")
    body = proto_body(trickled)
    slow: list[tuple[socket.socket, int]] = []
    for n in range(12):
        port = serving.port if n % 2 else serving.otlp_port
        connection = _connect(port)
        head = _head(len(body), port)
        if n % 3 == 0:
            connection.sendall(head[: len(head) // 2])  # stalls inside its headers
        elif n % 3 == 1:
            connection.sendall(head)  # stalls after its headers
        else:
            connection.sendall(head)
            for byte in body[: len(body) // 2]:
                connection.send(bytes([byte]))  # trickles, one byte a segment
        slow.append((connection, n))

    # Normal exports, on both ports, and the console, all answered while those hang.
    for port, service in ((serving.otlp_port, "otlp-port"), (serving.port, "console-port")):
        spans = sdk_spans(service)
        url = f"http://127.0.0.1:{port}{receiver.PATH}"
        exporter = OTLPSpanExporter(endpoint=url, timeout=TIMEOUT)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    status, graph = _request(serving.port, "GET", "/api/graph?window=all")
    assert status == 200
    assert {"otlp-port", "console-port"} <= {node["id"] for node in json.loads(graph)["nodes"]}

    # The trickling clients finish, byte by byte still, and are answered as anyone else.
    for connection, n in slow:
        if n % 3 == 2:
            for byte in body[len(body) // 2 :]:
                connection.send(bytes([byte]))
            status, _ = _answer(connection)
            assert status == 200
        connection.close()
    serving.stop()
    engine = store.open_engine(str(tmp_path / "serve.db"))
    services = {s.service for s in stored_spans(engine)}
    assert services == {"otlp-port", "console-port", "trickled"}
    assert ids_of(trickled) <= stored(engine)
    engine.dispose()


@pytest.mark.slow
def test_clew_serve_refuses_an_oversized_body_before_reading_it(serving):
    # Past waitress's cap (twice the receiver's limit), the headers alone are answered 413.
    too_large = 2 * receiver.MAX_BODY_BYTES + 1
    for port in (serving.port, serving.otlp_port):
        connection = _connect(port)
        connection.sendall(_head(too_large, port) + b"\0" * 1024)
        status, answer = _answer(connection)
        connection.close()
        assert status == 413 and b"exceeds max_body" in answer
    # Under it, the receiver's own limit answers 413 with a google.rpc.Status.
    length = receiver.MAX_BODY_BYTES + 1
    status, answer = _request(serving.otlp_port, "POST", receiver.PATH, bytes(length))
    assert status == 413
    assert "larger than 20 MiB" in status_of(answer, PROTOBUF).message
    serving.stop()


def test_clew_serve_sets_its_waitress_settings_on_every_port(tmp_path, monkeypatch):
    import waitress

    made: list[dict] = []

    class Server:
        effective_port = 1234

        def run(self) -> None:
            pass

    def create_server(app, **settings):
        made.append(settings)
        return Server()

    monkeypatch.setattr(waitress, "create_server", create_server)
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(main, ["serve", "--db", db, "--port", "0", "--otlp-port", "9"])
    assert result.exit_code == 0, result.output
    chosen = {
        "threads": 8,
        "ident": "clew",
        "channel_timeout": cli.CHANNEL_TIMEOUT_S,
        "max_request_body_size": 2 * receiver.MAX_BODY_BYTES,
    }
    assert made == [
        {"host": "127.0.0.1", "port": 0, **chosen},
        {"host": "127.0.0.1", "port": 9, **chosen},
    ]
    assert cli.CHANNEL_TIMEOUT_S == 60


# --- No secrets in logs or messages ------------------------------------------------------------

OTLP_SECRET = "otlp-s3cret-7f3a9c"
REGISTRY_SECRET = "registry-s3cret-41be07"


def _fresh_app(tmp_path: Path, **config):
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.upgrade(engine)
    engine.dispose()
    return create_app({"DATABASE_URL": str(tmp_path / "clew.db"), "AUTH": False, **config})


def test_the_otlp_token_and_a_wrong_one_are_in_no_log_or_answer(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CLEW_OTLP_TOKEN", OTLP_SECRET)
    app = _fresh_app(tmp_path)
    assert app.config["OTLP_TOKEN"] == OTLP_SECRET  # read from the environment
    client = app.test_client()
    body = proto_body(sdk_spans(traces=1))
    wrong = "wrong-s3cret-0d1e"
    answers = [
        client.post(receiver.PATH, data=body, content_type=PROTOBUF),
        client.post(
            receiver.PATH, data=body, content_type=PROTOBUF, headers={"Authorization": wrong}
        ),
        client.post(
            receiver.PATH,
            data=body,
            content_type=PROTOBUF,
            headers={"Authorization": f"Bearer {wrong}"},
        ),
        client.post(
            receiver.PATH,
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Basic {OTLP_SECRET}"},
        ),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    # The right token, then a failing store: the 500 path logs its exception.
    rx = receiver.receiver_of(app)

    def failing(engine, batches):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(rx, "write", failing)
    bearer = {"Authorization": f"Bearer {OTLP_SECRET}"}
    answers.append(client.post(receiver.PATH, data=body, content_type=PROTOBUF, headers=bearer))
    answers.append(client.post(receiver.PATH, data=b"\xff", content_type=PROTOBUF, headers=bearer))
    assert [a.status_code for a in answers[4:]] == [500, 400]
    assert "OTLP batch could not be written" in caplog.text  # the log was captured
    for secret in (OTLP_SECRET, wrong):
        assert secret not in caplog.text
        for answer in answers:
            assert secret.encode() not in answer.data
            assert secret not in str(answer.headers)
    receiver.stop(app)
    store.engine_of(app).dispose()


def test_a_bad_otlp_token_setting_is_refused_without_showing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEW_OTLP_TOKEN", "918273645")  # read as a JSON number
    with pytest.raises(ValueError) as refused:
        _fresh_app(tmp_path)
    assert "CLEW_OTLP_TOKEN" in str(refused.value) and "918273645" not in str(refused.value)


class EchoingRegistry(BaseHTTPRequestHandler):
    """A registry that refuses every request and, carelessly, quotes its Authorization header
    (and the URL asked) in its error message."""

    def do_GET(self) -> None:
        status = 401 if "Bearer" in self.headers.get("Authorization", "") else 500
        message = f"bad credentials {self.headers.get('Authorization')} for {self.path}"
        body = json.dumps({"error": {"name": "AuthenticationError", "message": message}})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format, *args) -> None:
        logging.getLogger("tests.registry").info(format, *args)


@pytest.fixture
def echoing_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingRegistry)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("kind", ["backstage", "apicurio", "ccompat"])
def test_clew_pull_names_no_registry_token_when_it_fails(
    tmp_path, monkeypatch, caplog, echoing_registry, kind
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CLEW_REGISTRY_TOKEN", REGISTRY_SECRET)
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(main, ["pull", echoing_registry, "--kind", kind, "--db", db])
    assert result.exit_code == 1
    # The failure is reported, but the registry's message is not: it quotes the token.
    assert "HTTP 401 Unauthorized: (the registry's message quotes the token sent: not shown)" in (
        result.output
    )
    assert REGISTRY_SECRET not in result.output
    assert REGISTRY_SECRET not in caplog.text
    assert "GET /" in caplog.text  # the registry's own log was captured


# --- SQL injection ------------------------------------------------------------------------------

INJECTIONS = (
    "' OR 1=1 --",
    '"; DROP TABLE spans; --',
    "1) UNION SELECT name, sql, 1, 1 FROM sqlite_master --",
    "payments-api' UNION SELECT * FROM waivers --",
    "%27",
    "1; DELETE FROM findings",
)
UNKNOWN = "no-such-value-3c9e"


def _some(turn: int, many: int = 2) -> tuple[str, ...]:
    """``many`` of the injection strings, a different pair each turn: every page and key meets
    two of them, and every string meets every key on some page (the full product took 40 s)."""
    return tuple(INJECTIONS[(turn * many + i) % len(INJECTIONS)] for i in range(many))


#: Every GET route of the JSON API (and the report download), its parameters, and values that
#: make it answer (required ones) — the test fails when a route is added without it here.
API_ROUTES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "/api/graph": ({}, ("since", "until")),
    "/api/overview": ({}, ("since", "until")),
    "/api/edge-series": (
        {"client": "storefront-web", "server": "payments-api"},
        ("client", "server", "since", "until"),
    ),
    "/api/node": ({"name": "payments-api"}, ("name", "since", "until")),
    "/api/edge-endpoints": (
        {"client": "storefront-web", "server": "payments-api"},
        ("client", "server", "since", "until"),
    ),
    "/api/blast-radius": ({"node": "payments-api"}, ("node", "since", "until")),
    "/api/graph-diff": ({"since": "30d"}, ("since", "until")),
    "/api/paths": ({}, ("since", "until")),
    "/api/traces/<trace_id>": ({}, ()),
    "/api/findings": ({}, ("team", "system", "state", "severity")),
    "/api/waivers": ({}, ("team",)),  # takes none: a stray one is ignored
    "/api/governance": ({}, ("team", "system")),
    "/reports/governance.<fmt>": ({}, ("team", "system")),
    "/api/users": ({}, ("team",)),  # takes none
    "/api/tokens": ({}, ("team",)),  # takes none
}


def _row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            for table in inspect(conn).get_table_names()
        }


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def _same_as(value: str, data: object) -> object:
    """``data`` with ``value`` (as itself, quoted by ``repr`` or in a URL) written as one
    marker, so that an answer for an injection and one for an unknown value compare."""
    if isinstance(data, str):
        data = _TIMESTAMP.sub("<time>", data)  # when the answer was made
        forms = (json.dumps(value), repr(value), quote_plus(value), quote(value, safe=""), value)
        for form in forms:  # the longest first: each quoted form before the bare value
            data = data.replace(str(escape(form)), "<value>").replace(form, "<value>")
        return data
    if isinstance(data, dict):
        return {_same_as(value, k): _same_as(value, v) for k, v in data.items()}
    if isinstance(data, list):
        return [_same_as(value, v) for v in data]
    return data


@pytest.fixture
def sample_copy(sample_db, tmp_path) -> Iterator[tuple]:
    """An app on a copy of the sample landscape (the session's own is read-only)."""
    path = tmp_path / "sample.db"
    shutil.copyfile(sample_db, path)
    app = create_app({"DATABASE_URL": str(path), "AUTH": False})
    yield app, store.engine_of(app)
    receiver.stop(app)
    store.engine_of(app).dispose()


def _url(route: str, value: str) -> str:
    return route.replace("<trace_id>", quote(value, safe="")).replace("<fmt>", "csv")


def _answer_of(response) -> object:
    if response.is_json:
        return response.get_json()
    return response.get_data(as_text=True)


def test_injection_strings_in_every_api_parameter_change_and_leak_nothing(sample_copy):
    app, engine = sample_copy
    get_routes = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.rule.startswith(("/api/", "/reports/"))
    }
    assert get_routes == set(API_ROUTES)
    client = app.test_client()
    assert client.get("/api/graph").status_code == 200  # what the app writes once is written
    before = _row_counts(engine)
    assert before["span_chunks"] > 0 and before["findings"] > 0
    answered: dict[int, int] = {}
    for route, (required, params) in API_ROUTES.items():
        slots = [*params, *(["<path>"] if "<" in route else [])]
        for slot in slots:

            def ask(value: str, slot=slot, route=route, required=required):
                query = required | ({} if slot == "<path>" else {slot: value})
                url = _url(route, value if slot == "<path>" else "0" * 32)
                return client.get(url + "?" + urlencode(query))

            unknown = ask(UNKNOWN)
            for injection in INJECTIONS:
                response = ask(injection)
                where = f"{route} {slot}={injection!r}"
                answered[response.status_code] = answered.get(response.status_code, 0) + 1
                if response.status_code == 400:
                    assert response.get_data(as_text=True).strip(), where  # says why
                    continue
                assert response.status_code == unknown.status_code, where
                if route.startswith("/reports/"):  # a report is dated to the second it is made
                    assert response.get_data().count(b"\n") == unknown.get_data().count(b"\n")
                    continue
                got = _same_as(injection, _answer_of(response))
                assert got == _same_as(UNKNOWN, _answer_of(unknown)), where
    assert 500 not in answered and answered.get(200, 0) > 0 and answered.get(400, 0) > 0
    # The raw forms too: a quote sent percent-encoded, and a bare one.
    for raw in ("team=%27%20OR%201=1%20--", "team='", "name=%27&since=%27"):
        assert client.get("/api/findings?" + raw).status_code == 200
        assert client.get("/api/node?" + raw).status_code in (200, 400)
    # An account named by an injection string in a writing route's path is no account.
    for injection in INJECTIONS:
        for action in ("disable", "enable"):
            url = f"/api/users/{quote(injection, safe='')}/{action}"
            assert client.post(url).status_code == 404, url
        role = client.post(f"/api/users/{quote(injection, safe='')}/role", json={"role": "admin"})
        assert role.status_code == 404, injection
    assert _row_counts(engine) == before


#: The URL parameters the console's pages read, beside the window and filters of every view.
PAGE_KEYS = ("node", "client", "server", "blast", "labels", "diff", "declared", "path")
PAGE_KEYS += ("team", "system", "severity", "state", "trace", "api", "version")


class Router:
    """The console's router callback, posted as the browser does (its dependency read once)."""

    def __init__(self, client) -> None:
        from console import ids

        self.client, self.page = client, ids.PAGE
        dependencies = client.get("/_dash-dependencies").get_json()
        self.dep = next(d for d in dependencies if d["output"] == f"{ids.PAGE}.children")

    def __call__(self, path: str, query: dict[str, str]) -> object:
        """The page drawn for ``path?query`` (a URL the page did not write itself)."""
        values = {"pathname": path, "search": "?" + urlencode(query) if query else ""}
        body = {
            "output": self.dep["output"],
            "outputs": {"id": self.page, "property": "children"},
            "inputs": [{**spec, "value": values[spec["property"]]} for spec in self.dep["inputs"]],
            "state": [{**spec, "value": ""} for spec in self.dep["state"]],
            "changedPropIds": [f"{spec['id']}.{spec['property']}" for spec in self.dep["inputs"]],
        }
        response = self.client.post("/_dash-update-component", json=body)
        assert response.status_code == 200, (path, query)  # a 500 included
        return response.get_json()["response"][self.page]["children"]


@pytest.mark.slow
def test_injection_strings_in_console_urls_are_drawn_as_for_unknown_values(sample_copy):
    from console.shell import PAGES
    from console.state import STATE_KEYS

    app, engine = sample_copy
    route = Router(app.test_client())
    route("/", {})  # what the app writes once is written
    before = _row_counts(engine)
    keys = (*STATE_KEYS, *PAGE_KEYS)
    assert len(PAGES) >= len(INJECTIONS)
    for page_number, path in enumerate(PAGES):
        for key_number, key in enumerate(keys):
            unknown = _same_as(UNKNOWN, route(path, {key: UNKNOWN}))
            # One string a page and key: over the pages (more of them than strings), every
            # string still meets every key.
            for injection in _some(page_number + key_number, many=1):
                drawn = route(path, {key: injection})
                assert _same_as(injection, drawn) == unknown, (path, key)
    assert _row_counts(engine) == before


def _find_data(tree: object, component_id: str) -> object:
    """The ``data`` of the component ``component_id`` in a rendered layout (None: not there)."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if isinstance(props, dict) and props.get("id") == component_id:
            return props.get("data")
        return next(
            (d for v in tree.values() if (d := _find_data(v, component_id)) is not None), None
        )
    if isinstance(tree, list):
        return next((d for v in tree if (d := _find_data(v, component_id)) is not None), None)
    return None


@pytest.mark.slow
def test_injection_strings_reach_each_pages_data_callbacks_as_unknown_values(sample_copy):
    """The URL's values, through each page's state store, into every callback that queries
    the store with them: answered 200, as for an unknown value, with no table changed."""
    from console.shell import PAGES
    from tests.console.test_http import _outputs

    app, engine = sample_copy
    client = app.test_client()
    route = Router(client)
    route("/", {})
    before = _row_counts(engine)
    dependencies = client.get("/_dash-dependencies").get_json()
    called, states = 0, []
    for path, page in PAGES.items():
        state_id = getattr(getattr(page, "ID", None), "STATE", None)
        if state_id is None:
            continue
        readers = [
            d
            for d in dependencies
            if {"id": state_id, "property": "data"} in d["inputs"]
            and not d.get("clientside_function")
        ]
        keys = ("window", "since", "q", "namespace", "node", "client", "path", "team")
        for key_number, key in enumerate(keys):
            answers = {}
            for value in (UNKNOWN, *_some(len(states) + key_number)):
                state = _find_data(route(path, {key: value}), state_id)
                assert state is not None, (path, key)
                states.append(state)
                for dep in readers:
                    body = {
                        "output": dep["output"],
                        "outputs": _outputs(dep["output"]),
                        "inputs": [
                            {**spec, "value": state if spec["id"] == state_id else None}
                            for spec in dep["inputs"]
                        ],
                        "state": [{**spec, "value": None} for spec in dep["state"]],
                        "changedPropIds": [f"{state_id}.data"],
                    }
                    response = client.post("/_dash-update-component", json=body)
                    assert response.status_code == 200, (path, key, value, dep["output"])
                    called += 1
                    answer = _same_as(value, response.get_json())
                    answers.setdefault(dep["output"], []).append(answer)
            for output, seen in answers.items():
                assert all(a == seen[0] for a in seen[1:]), (path, key, output)
    assert called >= len(PAGES) * 8 * 2
    assert any(INJECTIONS[0] in json.dumps(s) for s in states)  # the values reached them
    assert _row_counts(engine) == before


# --- File sources cannot leave their folder -----------------------------------------------------


def _settled(*paths: Path) -> None:
    """Files last changed a minute ago: a growing read (a worker's folder job) reads them now."""
    for path in paths:
        then = path.lstat().st_mtime - 60
        os.utime(path, (then, then), follow_symlinks=False)
        if path.is_symlink():
            os.utime(path.resolve(), (then, then))


def _landscape(tmp_path: Path) -> tuple[Path, Path]:
    """A watched folder with one trace file of its own (a line of OTLP/JSON, as the Collector
    writes them), and beside it (outside) a secret trace
    file, a secret folder, and links to both inside the watched folder."""
    from tests.clew.test_receiver import json_body

    folder, outside = tmp_path / "watched", tmp_path / "outside"
    (folder / "nested").mkdir(parents=True)
    (outside / "more").mkdir(parents=True)
    (folder / "nested" / "inside.json").write_bytes(json_body(sdk_spans("inside")) + b"\n")
    (outside / "secret.json").write_bytes(json_body(sdk_spans("secret")) + b"\n")
    (outside / "more" / "other.json").write_bytes(json_body(sdk_spans("other-secret")) + b"\n")
    (folder / "leak.json").symlink_to(outside / "secret.json")
    (folder / "nested" / "up.json").symlink_to(Path("..") / ".." / "outside" / "secret.json")
    (folder / "linked-folder").symlink_to(outside / "more", target_is_directory=True)
    (folder / "alias.json").symlink_to(Path("nested") / "inside.json")  # stays inside: read
    return folder, outside


def test_clew_ingest_of_a_folder_refuses_links_leading_out_of_it(tmp_path):
    folder, outside = _landscape(tmp_path)
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(main, ["ingest", str(folder), "--db", db])
    assert result.exit_code == 1  # something was refused, and it says what and why
    refusals = [line for line in result.output.splitlines() if "outside" in line]
    assert refusals == [
        f"error: {folder / 'leak.json'}: a link to {outside / 'secret.json'}, outside {folder}:"
        " not read",
        f"error: {folder / 'nested' / 'up.json'}: a link to {outside / 'secret.json'}, outside"
        f" {folder}: not read",
    ]
    engine = store.open_engine(db)
    assert {s.service for s in stored_spans(engine)} == {"inside"}
    with engine.connect() as conn:
        read = {row[0] for row in conn.execute(text("SELECT source FROM ingest_checkpoints"))}
    assert read == {str(folder / "alias.json"), str(folder / "nested" / "inside.json")}
    engine.dispose()


def test_a_workers_folder_job_refuses_links_leading_out_of_it(tmp_path, engine):
    from clew import pull_cli

    folder, outside = _landscape(tmp_path)
    _settled(*folder.rglob("*"))
    report = pull_cli.read_folder(engine, folder)
    assert report.problems == [
        f"{folder / 'leak.json'}: a link to {outside / 'secret.json'}, outside {folder}: not read",
        f"{folder / 'nested' / 'up.json'}: a link to {outside / 'secret.json'}, outside {folder}:"
        " not read",
    ]
    assert {s.service for s in stored_spans(engine)} == {"inside"}


def test_a_catalogs_text_placeholder_reads_nothing_outside_its_folder(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    (tmp_path / "orders.yaml").write_text("openapi: 3.0.0\ninfo: {title: Leak, version: '1'}\n")
    (folder / "linked.yaml").symlink_to(tmp_path / "orders.yaml")
    entities = [
        ("passwd", "../../etc/passwd"),
        ("absolute", "/etc/passwd"),
        ("parent", "../orders.yaml"),
        ("link", "linked.yaml"),
        ("encoded", "..%2F..%2Fetc%2Fpasswd"),
    ]
    documents = [
        "apiVersion: backstage.io/v1alpha1\nkind: API\n"
        f"metadata: {{name: {name}}}\n"
        "spec: {type: openapi, lifecycle: production, owner: team-a,\n"
        f"  definition: {{$text: '{location}'}}}}\n"
        for name, location in entities
    ]
    (folder / "catalog-info.yaml").write_text("---\n".join(documents))
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(main, ["ingest", str(folder / "catalog-info.yaml"), "--db", db])
    assert result.exit_code == 0, result.output  # the entities are read; their $text is not
    engine = store.open_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT api_ref, location, content_hash, problems FROM api_definitions")
        ).all()
        versions = conn.execute(text("SELECT count(*) FROM contract_versions")).scalar_one()
    engine.dispose()
    found = {
        ref.split("/")[-1]: (location, digest, json.loads(problems))
        for ref, location, digest, problems in rows
    }
    leaves = "leaves the catalog file's folder: not read"
    assert found == {
        "passwd": ("../../etc/passwd", None, [f"$text '../../etc/passwd' {leaves}"]),
        "absolute": ("/etc/passwd", None, [f"$text '/etc/passwd' {leaves}"]),
        "parent": ("../orders.yaml", None, [f"$text '../orders.yaml' {leaves}"]),
        "link": ("linked.yaml", None, [f"$text 'linked.yaml' {leaves}"]),
        "encoded": (
            "..%2F..%2Fetc%2Fpasswd",
            None,
            ["$text '..%2F..%2Fetc%2Fpasswd': cannot read: No such file or directory"],
        ),
    }
    assert versions == 0  # nothing was read as a contract
