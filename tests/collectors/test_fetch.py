"""Remote references and ``$text`` URLs: fetched only under a prefix ``CLEW_FETCH_ALLOW`` names,
with redirects kept inside it; whatever is not fetched, or fails, is a problem noted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from clew.records import ApiDefinition, Contract, Operation
from collectors import Source, fetch
from collectors.backstage import BackstageCollector
from collectors.openapi import OpenApiCollector

COMMON = {"parameters": {"limit": {"name": "limit", "in": "query", "required": True}}}
SPEC = (
    "openapi: 3.0.3\ninfo: {title: Remote, version: '1'}\n"
    "paths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n"
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {
            "/schemas/common.json": (200, orjson.dumps(COMMON)),
            "/schemas/spec.yaml": (200, SPEC.encode()),
        }
        if self.path == "/schemas/moved.json":
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/common.json")
            self.end_headers()
            return
        status, body = routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fetch._fetch.cache_clear()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def contract_with(tmp_path: Path, ref: str) -> tuple[Contract, Operation]:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Refs", "version": "1"},
        "paths": {"/items": {"get": {"parameters": [{"$ref": ref}], "responses": {}}}},
    }
    path = tmp_path / "api.json"
    path.write_bytes(orjson.dumps(document))
    records = list(OpenApiCollector().collect(Source(path)))
    (contract,) = [r for r in records if type(r) is Contract]
    (operation,) = [r for r in records if type(r) is Operation]
    return contract, operation


def test_a_remote_ref_is_fetched_only_where_allowed(tmp_path, server, monkeypatch):
    ref = f"{server}/schemas/common.json#/parameters/limit"
    monkeypatch.delenv(fetch.ALLOW_ENV, raising=False)
    contract, operation = contract_with(tmp_path, ref)
    assert orjson.loads(operation.details)["parameters"] == []
    assert contract.problems == (
        f"GET /items parameter: $ref {ref!r} is in another document (not fetched)",
    )

    monkeypatch.setenv(fetch.ALLOW_ENV, f"{server}/schemas/")
    contract, operation = contract_with(tmp_path, ref)
    assert contract.problems == ()
    assert orjson.loads(operation.details)["parameters"] == [
        {"name": "limit", "in": "query", "required": True, "type": None}
    ]

    monkeypatch.setenv(fetch.ALLOW_ENV, f"{server}/other/")  # another prefix of the same host
    contract, _ = contract_with(tmp_path, ref)
    assert "not fetched" in contract.problems[0]


def test_fetch_failures_are_problems_not_crashes(tmp_path, server, monkeypatch):
    monkeypatch.setenv(fetch.ALLOW_ENV, f"{server}/schemas/")
    contract, _ = contract_with(tmp_path, f"{server}/schemas/missing.json#/x")
    assert "HTTP 404" in contract.problems[0]
    contract, _ = contract_with(tmp_path, f"{server}/schemas/moved.json#/parameters/limit")
    assert (
        "redirected to http://example.invalid/common.json, which is not allowed"
        in (contract.problems[0])
    )
    with pytest.raises(fetch.FetchError, match="not fetched"):
        fetch.fetch("https://elsewhere.example/x")


def test_a_catalog_text_url_is_read_where_allowed(tmp_path, server, monkeypatch):
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: remote}\n"
        "spec: {type: openapi, lifecycle: production, owner: team-a,"
        f" definition: {{$text: '{server}/schemas/spec.yaml'}}}}\n"
    )
    monkeypatch.delenv(fetch.ALLOW_ENV, raising=False)
    (definition,) = [
        r for r in BackstageCollector().collect(Source(catalog)) if type(r) is ApiDefinition
    ]
    assert definition.text is None and "is a URL: not fetched" in definition.problems[0]
    monkeypatch.setenv(fetch.ALLOW_ENV, server + "/")
    records = list(BackstageCollector().collect(Source(catalog)))
    (definition,) = [r for r in records if type(r) is ApiDefinition]
    assert definition.text == SPEC and definition.problems == ()
    assert [r.title for r in records if type(r) is Contract] == ["Remote"]
