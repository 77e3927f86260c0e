"""Security headers on every response: a Content-Security-Policy the console works under, no
framing, no sniffing, no referrer; the browser part checks every page under the policy."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from clew import receiver, store
from clew.app import create_app

from .test_browser import (
    MAP_DRAWN,
    browser,  # noqa: F401 (the fixture, one Chromium for this module)
    serving,
    wait,
)

FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: Every page of the console, with a script true once its content has been drawn.
PAGES = {
    "/": "return document.querySelectorAll('#overview-cards .card').length === 6",
    "/map": MAP_DRAWN,
    "/paths": "return document.querySelectorAll('#paths-waterfall .wf-row.failing').length > 0",
    "/endpoints": "return document.querySelectorAll('#endpoints-grid .ag-row').length > 0",
    "/governance": "return document.querySelectorAll('#page .ag-row').length > 0",
    "/contracts": "return document.querySelector('#page h1')?.innerText === 'Contracts'",
    "/sources": "return document.querySelector('#page h1')?.innerText === 'Sources'",
}
#: Records every CSP violation the page reports, from before its first script runs.
RECORD_VIOLATIONS = """
window.__csp_violations = [];
document.addEventListener('securitypolicyviolation', e => window.__csp_violations.push(
    e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));
"""


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as directive → its sources."""
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


def assert_secured(response, where: str) -> None:
    for name, value in FIXED_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name}"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], where


@pytest.fixture
def app(tmp_path: Path):
    """A web app on a fresh store (the receiver writes to it)."""
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.upgrade(engine)
    app = create_app({"DATABASE_URL": str(tmp_path / "clew.db"), "AUTH": False})
    yield app
    receiver.stop(app)
    store.engine_of(app).dispose()
    engine.dispose()


def test_every_kind_of_response_carries_the_security_headers(app):
    client = app.test_client()
    index = client.get("/")
    scripts = re.findall(r'<script src="([^"]+)"', index.get_data(as_text=True))
    assert scripts, "the console's page names its scripts"
    responses = {
        "console page": index,
        "another console page": client.get("/governance?team=%27"),
        "unknown page": client.get("/no-such-page"),
        "stylesheet": client.get("/assets/clew.css"),
        "component script": client.get(scripts[0]),
        "dash layout": client.get("/_dash-layout"),
        "dash dependencies": client.get("/_dash-dependencies"),
        "json api": client.get("/api/graph?window=all"),
        "json api refusal": client.get("/api/node"),
        "json api not found": client.get("/api/traces/" + "0" * 32),
        "report": client.get("/reports/governance.csv"),
        "health": client.get("/healthz"),
        "receiver": client.post(receiver.PATH, data=b"", content_type="application/x-protobuf"),
        "receiver refusal": client.post(receiver.PATH, data=b"x", content_type="text/plain"),
        "method not allowed": client.delete("/api/graph"),
    }
    for response in responses.values():
        response.close()  # files are sent as streams
    statuses = {where: r.status_code for where, r in responses.items()}
    assert statuses == {
        "console page": 200,
        "another console page": 200,
        "unknown page": 200,  # the console's router shows "Page not found"
        "stylesheet": 200,
        "component script": 200,
        "dash layout": 200,
        "dash dependencies": 200,
        "json api": 200,
        "json api refusal": 400,
        "json api not found": 404,
        "report": 200,
        "health": 200,
        "receiver": 200,
        "receiver refusal": 415,
        "method not allowed": 405,
    }
    for where, response in responses.items():
        assert_secured(response, where)
    policies = {r.headers["Content-Security-Policy"] for r in responses.values()}
    assert len(policies) == 1  # one policy for the whole app


def test_the_policy_allows_nothing_from_elsewhere_and_no_inline_script_but_dashs_own(app):
    page = app.test_client().get("/")
    policy = directives(page.headers["Content-Security-Policy"])
    assert policy.pop("script-src")[0] == "'self'"
    assert policy == {
        "default-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    script_src = directives(page.headers["Content-Security-Policy"])["script-src"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    # The page's one inline script (Dash starting its renderer) is allowed by its hash alone.
    html = page.get_data(as_text=True)
    inline = re.findall(r'<script id="_dash-renderer"[^>]*>(.*?)</script>', html, re.S)
    assert inline == ["var renderer = new DashRenderer();"]
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert script_src[1:] == [f"'sha256-{digest}'"]


@pytest.mark.browser
def test_every_page_renders_under_the_policy_with_no_violation(
    browser,  # noqa: F811 (the fixture imported above)
    sample_db,
    monkeypatch,
):
    monkeypatch.setenv("CLEW_AUTH", "false")  # the pages themselves, not the login in front
    added = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS}
    )
    try:
        with serving(sample_db) as url:
            browser.get_log("browser")  # what earlier tests left
            for path, drawn in PAGES.items():
                browser.get(f"{url}{path}?window=all")
                wait(browser, drawn)
                violations = browser.execute_script("return window.__csp_violations")
                assert violations == [], path
                logged = [
                    entry["message"]
                    for entry in browser.get_log("browser")
                    if "Content Security Policy" in entry["message"]
                ]
                assert logged == [], path
                assert browser.execute_script("return document.title") == "Clew"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", added)


def test_with_auth_on_the_login_page_and_its_redirects_carry_them_too(tmp_path: Path):
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.upgrade(engine)
    app = create_app({"DATABASE_URL": str(tmp_path / "clew.db"), "AUTH": True})
    client = app.test_client()
    responses = {
        "page before login": client.get("/"),
        "login page": client.get("/login"),
        "api before login": client.get("/api/graph"),
        "receiver without a token": client.post(
            receiver.PATH, data=b"", content_type="application/x-protobuf"
        ),
    }
    assert {where: r.status_code for where, r in responses.items()} == {
        "page before login": 302,
        "login page": 200,
        "api before login": 401,
        "receiver without a token": 401,
    }
    for where, response in responses.items():
        assert_secured(response, where)
    # The login page runs no script of its own, so the policy's hashes cover it.
    assert "<script" not in responses["login page"].get_data(as_text=True)
    receiver.stop(app)
    store.engine_of(app).dispose()
    engine.dispose()


def test_the_receivers_own_port_answers_with_them_too(app):
    from werkzeug.test import Client

    client = Client(receiver.receiver_only(app))
    elsewhere = client.get("/api/graph")
    assert elsewhere.status_code == 404
    assert_secured(elsewhere, "another path on the OTLP port")
    assert (
        elsewhere.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    export = client.post(receiver.PATH, data=b"", content_type="application/x-protobuf")
    assert export.status_code == 200
    assert_secured(export, "an export on the OTLP port")
    assert "script-src 'self'" in export.headers["Content-Security-Policy"]  # the app's own
