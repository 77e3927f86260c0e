"""The Paths page when retention has removed a failing path's exemplar trace from the store:
fetched from a Tempo query API (a local server answering with the sample's own spans) and drawn
as the stored trace was; or, with no query API configured, the page says how to configure one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from clew import store
from clew.app import create_app
from console import ids
from tests import trace_apis
from tests.trace_apis import PROTOBUF, Answer, QueryApiFake

from .test_http import call

ID = ids.Paths


@pytest.fixture
def api() -> Iterator[QueryApiFake]:
    yield from trace_apis.serve()


def _detail(app) -> list:
    response = call(
        app.test_client(), f"{ID.DETAIL}.children", {f"{ID.STATE}.data": {"window": "all"}}
    )
    return response[ID.DETAIL]["children"]


def _parts(detail: list) -> tuple[list, dict, str]:
    """The waterfall section's children, the failing span's panel, and the section's classes."""
    _, grid, body = detail
    assert body["props"]["id"] == ID.WATERFALL
    children = body["props"]["children"]
    children = children if isinstance(children, list) else [children]
    return children, grid["props"]["children"][1], body["props"].get("className") or ""


def _trace_request(folder: Path, trace_id: str) -> dict:
    """The OTLP/JSON of one trace's spans, gathered from the sample's export (the SDK's)."""
    resource_spans = []
    with (folder / "traces.otlp.jsonl").open("rb") as lines:
        for line in lines:
            if trace_id.encode() not in line:
                continue
            for batch in orjson.loads(line)["resourceSpans"]:
                scopes = [
                    {**scope, "spans": [s for s in scope["spans"] if s["traceId"] == trace_id]}
                    for scope in batch["scopeSpans"]
                ]
                scopes = [scope for scope in scopes if scope["spans"]]
                if scopes:
                    resource_spans.append({**batch, "scopeSpans": scopes})
    return {"resourceSpans": resource_spans}


@pytest.fixture
def retained(sample_db, sample_folder, tmp_path) -> tuple[str, str, dict, list]:
    """A copy of the sample whose worst failing path's exemplar trace retention has removed:
    the database, the trace id, its OTLP/JSON and the path's detail as drawn while stored."""
    db = str(tmp_path / "clew.db")
    with sqlite3.connect(sample_db) as source, sqlite3.connect(db) as copy:
        source.backup(copy)
    app = create_app({"DATABASE_URL": "sqlite:///" + db, "AUTH": False})
    stored_detail = _detail(app)
    worst = app.test_client().get("/api/paths").get_json()[0]
    trace_id = worst["exemplar"]["trace_id"]
    store.engine_of(app).dispose()
    with sqlite3.connect(db) as conn:  # what dropping the raw spans' partition does
        removed = conn.execute("DELETE FROM span_chunks WHERE trace_id = ?", (trace_id,))
        assert removed.rowcount >= 1
    return db, trace_id, _trace_request(sample_folder, trace_id), stored_detail


def _app(db: str, **config):
    return create_app({"DATABASE_URL": "sqlite:///" + db, "AUTH": False, **config})


def test_a_removed_exemplar_is_fetched_from_tempo_and_drawn_as_when_stored(api, retained):
    db, trace_id, request, stored_detail = retained
    api.answers[f"/api/traces/{trace_id}"] = Answer(
        trace_apis.protobuf_of_otlp_json(request), PROTOBUF
    )
    app = _app(db, TRACE_QUERY_URL=api.url, TRACE_QUERY_KIND="tempo")
    fetched_children, fetched_span, _ = _parts(_detail(app))
    stored_children, stored_span, _ = _parts(stored_detail)
    note, *drawn = fetched_children
    # the waterfall (failing span and critical path marked) and the failing span's panel, as
    # they were drawn from the store
    assert drawn == stored_children and fetched_span == stored_span
    assert '"wf-row failing critical error"' in json.dumps(drawn)
    text = json.dumps(note, ensure_ascii=False)
    assert "Fetched from " in text and f"Tempo at {api.url}" in text and "not stored" in text
    # the JSON twin says where it came from; the page's second look and it come from the cache
    _detail(app)
    document = app.test_client().get(f"/api/traces/{trace_id}").get_json()
    assert document["fetched_from"] == {"kind": "tempo", "url": api.url}
    assert document["trace_id"] == trace_id and document["failing_span_id"]
    assert api.paths() == [f"/api/traces/{trace_id}"]
    with sqlite3.connect(db) as conn:  # shown, not stored
        count = conn.execute("SELECT count(*) FROM span_chunks WHERE trace_id = ?", (trace_id,))
        assert count.fetchone() == (0,)


def test_a_removed_exemplar_without_a_query_api_says_how_to_configure_one(api, retained):
    db, trace_id, _, _ = retained
    children, _, classes = _parts(_detail(_app(db)))
    text = json.dumps(children)
    assert f"The exemplar trace {trace_id} is not in the store" in text
    assert "CLEW_TRACE_QUERY_URL" in text and "CLEW_TRACE_QUERY_KIND" in text
    assert classes == "notice notice-info"
    # an API that fails: the reason, as a warning
    api.answers[f"/api/traces/{trace_id}"] = Answer(b"too many requests", "text/plain", 429)
    app = _app(db, TRACE_QUERY_URL=api.url, TRACE_QUERY_KIND="tempo")
    children, _, classes = _parts(_detail(app))
    failing = json.dumps(children)
    assert classes == "notice notice-warning" and "could not be fetched" in failing
    assert f"Tempo at {api.url} answered HTTP 429 Too Many Requests: too many requests" in failing
