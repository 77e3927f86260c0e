"""Exemplar traces fetched from a Jaeger or Tempo query API (a local server answering as they
do), their settings, and that nothing is fetched unconfigured."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from clew import exemplars, traces
from clew.app import create_app
from clew.exemplars import Exemplar, FetchError, QueryApi, TraceQuery
from clew.pipeline import ingest
from tests import trace_apis
from tests.conftest import corpus
from tests.trace_apis import JSON, PROTOBUF, Answer, QueryApiFake

SPANS = trace_apis.failing_trace()
TRACE_ID = trace_apis.trace_id_of(SPANS)
#: The trace of the corpus's Jaeger query API document, and of its Jaeger UI fixture.
JAEGER_TRACE = "c620759e5d60fafb8ee0922b30e06bc6"
UI_TRACE = f"{1:032x}"


@pytest.fixture
def api() -> Iterator[QueryApiFake]:
    yield from trace_apis.serve()


def client(api: QueryApiFake, kind: str, **options) -> TraceQuery:
    return TraceQuery(QueryApi(kind, api.url), **options)


def tempo_answers(api: QueryApiFake, body: bytes, content_type: str = PROTOBUF) -> None:
    api.answers[f"/api/traces/{TRACE_ID}"] = Answer(body, content_type)


@pytest.fixture(scope="module")
def stored_view(tmp_path_factory, registry) -> dict:
    """The trace's view once the same spans are ingested into a store, as the console shows
    a stored trace."""
    from clew import store

    folder = tmp_path_factory.mktemp("stored")
    path = folder / "trace.json"
    path.write_bytes(orjson.dumps(trace_apis.otlp_json(SPANS)))
    engine = store.open_engine(str(folder / "clew.db"))
    store.upgrade(engine)
    assert ingest(engine, [path], registry).inserted == len(SPANS)
    with engine.connect() as conn:
        view = traces.trace_view(conn, TRACE_ID)
    engine.dispose()
    assert view is not None
    return view


@pytest.fixture(scope="module")
def registry():
    from collectors import load_registry

    return load_registry()


# --- Tempo ---------------------------------------------------------------------------------------


def test_tempo_is_asked_for_protobuf_and_its_trace_is_the_stored_view(api, stored_view):
    tempo_answers(api, trace_apis.tempo_protobuf(SPANS))
    fetched = client(api, "tempo").fetch(TRACE_ID.upper())
    assert fetched.trace == stored_view and fetched.unread == ()
    failing = next(s for s in fetched.trace["spans"] if s["failing"])
    assert (failing["service"], failing["name"]) == ("stock", "GET /stock/{sku}")
    assert failing["status_message"] == "stock pool exhausted" and failing["critical"]
    ((path, headers),) = api.requests
    assert path == f"/api/traces/{TRACE_ID}" and headers["accept"] == PROTOBUF
    assert "authorization" not in headers and "x-scope-orgid" not in headers


@pytest.mark.parametrize("shape", ["v1", "v2", "tempo1"])
def test_tempo_json_in_each_of_its_shapes_gives_the_same_trace(api, stored_view, shape):
    tempo_answers(api, trace_apis.tempo_json(SPANS, shape), "application/json; charset=utf-8")
    assert client(api, "tempo").fetch(TRACE_ID).trace == stored_view


def test_tempo_json_ids_in_base64_or_hex_are_both_read():
    assert exemplars.hex_id("AAAAAAAAAABiDwOiJTxeNw==", 16) == "0000000000000000620f03a2253c5e37"
    assert exemplars.hex_id("JP0sEuuWMZA=", 8) == "24fd2c12eb963190"
    assert exemplars.hex_id("24FD2C12EB963190", 8) == "24FD2C12EB963190"
    assert exemplars.hex_id("not an id", 8) == "not an id"  # left for the reader to refuse
    request = exemplars.tempo_request(orjson.loads(trace_apis.tempo_json(SPANS)))
    span_ids = [
        span["spanId"]
        for batch in request["resourceSpans"]
        for scope in batch["scopeSpans"]
        for span in scope["spans"]
    ]
    assert sorted(span_ids) == sorted(f"{s.context.span_id:016x}" for s in SPANS)


def test_the_tenant_and_the_token_are_sent_and_never_shown(api, caplog):
    tempo_answers(api, trace_apis.tempo_protobuf(SPANS))
    config = {
        "TRACE_QUERY_URL": api.url + "/",
        "TRACE_QUERY_KIND": "tempo",
        "TRACE_QUERY_TOKEN_ENV": "TEMPO_TOKEN",
        "TRACE_QUERY_TENANT": 42,  # Flask's from_prefixed_env reads CLEW_…=42 as a number
    }
    tempo = exemplars.from_config(config, {"TEMPO_TOKEN": "s3cret-t0ken"})
    assert tempo is not None and "t0ken" not in repr(tempo) and "TEMPO_TOKEN" in repr(tempo)
    tempo.fetch(TRACE_ID)
    headers = api.requests[0][1]
    assert headers["authorization"] == "Bearer s3cret-t0ken" and headers["x-scope-orgid"] == "42"
    # Refused: the message names the variable; an answer quoting the token back is not shown.
    api.answers[f"/api/traces/{'a' * 32}"] = Answer(
        orjson.dumps({"message": "bad token s3cret-t0ken"}), status=401
    )
    with caplog.at_level(logging.WARNING, "clew.exemplars"), pytest.raises(FetchError) as refused:
        tempo.fetch("a" * 32)
    assert "HTTP 401" in str(refused.value) and "TEMPO_TOKEN" in str(refused.value)
    assert "t0ken" not in str(refused.value) and "t0ken" not in caplog.text
    assert f"{api.url}" in caplog.text and "a" * 32 in caplog.text


# --- Jaeger --------------------------------------------------------------------------------------


def test_jaeger_query_api_answer_is_read_with_the_jaeger_json_reader(api):
    document = corpus("jaeger_json", "oltp2jaeger-multi-out.json").read_bytes()
    api.answers[f"/api/traces/{JAEGER_TRACE}"] = Answer(document)
    fetched = client(api, "jaeger").fetch(JAEGER_TRACE)
    assert fetched.trace["trace_id"] == JAEGER_TRACE and len(fetched.trace["spans"]) == 4
    assert fetched.trace["services"] == ["example-trace"] and fetched.unread == ()
    tree = [(s["name"], s["depth"]) for s in fetched.trace["spans"]]
    assert tree == [("main", 0), ("info", 1), ("ohboy.do", 2), ("ohboy.do", 2)]
    assert api.requests[0][1]["accept"] == JSON


def test_spans_jaeger_answers_that_cannot_be_read_are_listed_not_dropped(api):
    """The Jaeger UI fixture has two different spans under one id: the first is drawn, the
    second listed with its reason, and so is the FOLLOWS_FROM span of another trace."""
    trace = orjson.loads(corpus("jaeger_json", "ui_01.json").read_bytes())
    api.answers[f"/api/traces/{UI_TRACE}"] = Answer(orjson.dumps({"data": [trace]}))
    fetched = client(api, "jaeger").fetch(UI_TRACE)
    assert fetched.trace["trace_id"] == UI_TRACE and fetched.unread_count == len(fetched.unread)
    assert any("already used in this trace by a different span" in u for u in fetched.unread)
    drawn = [span["span_id"] for span in fetched.trace["spans"]]
    assert sorted(drawn) == [f"{n:016x}" for n in (2, 3, 4, 5)]  # five spans, one id twice


# --- What goes wrong -----------------------------------------------------------------------------


def test_a_trace_the_api_does_not_have_is_said_so(api):
    api.answers[f"/api/traces/{TRACE_ID}"] = Answer(trace_apis.JAEGER_NOT_FOUND, status=404)
    with pytest.raises(exemplars.TraceNotFound) as jaeger:
        client(api, "jaeger").fetch(TRACE_ID)
    assert str(jaeger.value) == (
        f"Jaeger at {api.url} has no trace {TRACE_ID} either (HTTP 404 Not Found: trace not"
        " found): it may have expired there too"
    )
    api.answers[f"/api/traces/{TRACE_ID}"] = Answer(b"trace not found\n", "text/plain", 404)
    with pytest.raises(exemplars.TraceNotFound, match="HTTP 404 Not Found: trace not found"):
        client(api, "tempo").fetch(TRACE_ID)
    wrong_url = TraceQuery(QueryApi("tempo", api.url + "/grafana"))  # Go's mux: no such route
    with pytest.raises(FetchError, match=r"has no trace query route .*404 page not found") as miss:
        wrong_url.fetch(TRACE_ID)
    assert not isinstance(miss.value, exemplars.TraceNotFound)
    empty = Answer(orjson.dumps({"data": [], "errors": None}))
    api.answers[f"/api/traces/{TRACE_ID}"] = empty
    with pytest.raises(FetchError, match=f"answered with no span of trace {TRACE_ID}"):
        client(api, "jaeger").fetch(TRACE_ID)


def test_an_api_that_is_slow_failing_or_gone_gives_a_clear_reason(api):
    path = f"/api/traces/{TRACE_ID}"
    api.answers[path] = Answer(trace_apis.tempo_protobuf(SPANS), PROTOBUF, delay_s=0.5)
    with pytest.raises(FetchError, match=r"gave no answer within 0\.1 s \(CLEW_TRACE_QUERY_TIM"):
        client(api, "tempo", timeout=0.1).fetch(TRACE_ID)
    api.answers[path] = Answer(b"upstream connect error", "text/plain", 503)
    with pytest.raises(FetchError) as failing:
        client(api, "tempo").fetch(TRACE_ID)
    assert str(failing.value) == (
        f"Tempo at {api.url} answered HTTP 503 Service Unavailable: upstream connect error"
    )
    assert failing.value.status == 503
    gone = TraceQuery(QueryApi("jaeger", "http://127.0.0.1:9"), timeout=2)
    with pytest.raises(FetchError, match=r"Jaeger at http://127\.0\.0\.1:9 could not be reached"):
        gone.fetch(TRACE_ID)


def test_bad_bodies_are_refused_with_what_is_wrong(api):
    path = f"/api/traces/{TRACE_ID}"
    api.answers[path] = Answer(b"<html>login</html>", "text/html")
    with pytest.raises(FetchError, match=r"unreadable: not JSON \(unexpected character"):
        client(api, "jaeger").fetch(TRACE_ID)
    api.answers[path] = Answer(b"\xff\xff\xff\xff", PROTOBUF)
    with pytest.raises(FetchError, match="unreadable: not an OTLP ExportTraceServiceRequest"):
        client(api, "tempo").fetch(TRACE_ID)
    api.answers[path] = Answer(b'{"batches": {"resource": {}}}')
    with pytest.raises(FetchError, match=r"batches \(resourceSpans\) are not a list"):
        client(api, "tempo").fetch(TRACE_ID)


def test_an_answer_over_the_size_cap_is_not_read(api):
    path = f"/api/traces/{TRACE_ID}"
    body = trace_apis.tempo_protobuf(SPANS)
    api.answers[path] = Answer(body, PROTOBUF)
    small = len(body) - 1
    with pytest.raises(FetchError, match=f"{len(body):,} bytes for trace {TRACE_ID}, more than"):
        client(api, "tempo", max_bytes=small).fetch(TRACE_ID)
    api.answers[path] = Answer(body, PROTOBUF, with_length=False)  # no Content-Length to trust
    with pytest.raises(FetchError, match=f"more than the {small:,} bytes read at most"):
        client(api, "tempo", max_bytes=small).fetch(TRACE_ID)


def test_a_redirect_is_not_followed(api):
    elsewhere = Answer(status=302, headers={"Location": "http://elsewhere.example/x"})
    api.answers[f"/api/traces/{TRACE_ID}"] = elsewhere
    with pytest.raises(
        FetchError, match=r"redirects to http://elsewhere\.example/x .*not followed"
    ):
        client(api, "tempo").fetch(TRACE_ID)
    assert len(api.requests) == 1


@pytest.mark.parametrize("bad", ["0123", "g" * 32, "../../admin", "a" * 33, ""])
def test_an_id_that_is_no_trace_id_is_refused_before_any_request(api, bad):
    with pytest.raises(exemplars.BadTraceId, match=r"is not a trace id \(32 hex digits\)"):
        client(api, "jaeger").fetch(bad)
    assert api.requests == []


# --- The cache -----------------------------------------------------------------------------------


def test_answers_are_kept_a_while_then_asked_for_again(api, monkeypatch):
    now = [1000.0]
    tempo = client(api, "tempo", clock=lambda: now[0])
    path = f"/api/traces/{TRACE_ID}"
    api.answers[path] = Answer(b"busy", "text/plain", 503)
    for _ in range(3):
        with pytest.raises(FetchError, match="HTTP 503"):
            tempo.fetch(TRACE_ID)
    assert api.paths() == [path]
    now[0] += exemplars.FAILURE_CACHE_SECONDS
    api.answers[path] = Answer(trace_apis.tempo_protobuf(SPANS), PROTOBUF)
    first = tempo.fetch(TRACE_ID)
    assert tempo.fetch(TRACE_ID) is first and api.paths() == [path, path]
    now[0] += exemplars.CACHE_SECONDS
    assert tempo.fetch(TRACE_ID) == first and len(api.requests) == 3
    monkeypatch.setattr(exemplars, "CACHE_ENTRIES", 2)
    for n in range(1, 4):  # three more traces push the first out
        with pytest.raises(FetchError):
            tempo.fetch(f"{n:032x}")
    tempo.fetch(TRACE_ID)
    assert len(api.requests) == 7


# --- Settings ------------------------------------------------------------------------------------


def test_nothing_is_configured_or_fetched_without_a_url(engine):
    assert exemplars.from_config({}) is None
    assert exemplars.from_environment({"CLEW_TRACE_QUERY_TIMEOUT": "3"}) is None
    app = create_app({"DATABASE_URL": str(engine.url), "AUTH": False})
    assert exemplars.configured(app) is None
    found = exemplars.exemplar(engine, TRACE_ID, None)
    assert found == Exemplar(TRACE_ID) and found.document() is None
    assert "set CLEW_TRACE_QUERY_URL" in found.explanation()
    answer = app.test_client().get(f"/api/traces/{TRACE_ID}")
    assert answer.status_code == 404 and "CLEW_TRACE_QUERY_KIND" in answer.get_data(as_text=True)


def test_the_api_answers_404_400_or_502_when_the_query_api_gives_no_trace(api, engine):
    app = create_app(
        {
            "DATABASE_URL": str(engine.url),
            "AUTH": False,
            "TRACE_QUERY_URL": api.url,
            "TRACE_QUERY_KIND": "tempo",
        }
    )
    http = app.test_client()
    api.answers[f"/api/traces/{TRACE_ID}"] = Answer(b"upstream connect error", "text/plain", 503)
    failing = http.get(f"/api/traces/{TRACE_ID}")
    assert failing.status_code == 502 and "HTTP 503" in failing.get_data(as_text=True)
    api.answers[f"/api/traces/{'d' * 32}"] = Answer(b"trace not found", "text/plain", 404)
    missing = http.get(f"/api/traces/{'d' * 32}")
    assert missing.status_code == 404 and "has no trace" in missing.get_data(as_text=True)
    bad = http.get("/api/traces/xyz")
    assert bad.status_code == 400 and "not a trace id" in bad.get_data(as_text=True)
    assert api.paths() == [f"/api/traces/{TRACE_ID}", f"/api/traces/{'d' * 32}"]


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        ({"TRACE_QUERY_URL": "http://t:3200"}, {}, "CLEW_TRACE_QUERY_KIND must be jaeger or tempo"),
        (
            {"TRACE_QUERY_KIND": "tempo"},
            {},
            "CLEW_TRACE_QUERY_KIND is set but CLEW_TRACE_QUERY_URL",
        ),
        (
            {"TRACE_QUERY_URL": "http://t:3200", "TRACE_QUERY_KIND": "zipkin"},
            {},
            "(not 'zipkin')",
        ),
        ({"TRACE_QUERY_URL": "t:3200", "TRACE_QUERY_KIND": "tempo"}, {}, "http:// or https://"),
        (
            {"TRACE_QUERY_URL": "http://u:pw@t:3200", "TRACE_QUERY_KIND": "tempo"},
            {},
            "must not hold credentials",
        ),
        (
            {"TRACE_QUERY_URL": "http://t:3200/api/traces", "TRACE_QUERY_KIND": "tempo"},
            {},
            "leave out /api/traces",
        ),
        (
            {"TRACE_QUERY_URL": "http://t/?a=1", "TRACE_QUERY_KIND": "tempo"},
            {},
            "without a query",
        ),
        (
            {"TRACE_QUERY_URL": "http://t", "TRACE_QUERY_KIND": "tempo", "TRACE_QUERY_TIMEOUT": 0},
            {},
            "CLEW_TRACE_QUERY_TIMEOUT must be a number above 0",
        ),
        (
            {
                "TRACE_QUERY_URL": "http://t",
                "TRACE_QUERY_KIND": "tempo",
                "TRACE_QUERY_MAX_BYTES": "lots",
            },
            {},
            "CLEW_TRACE_QUERY_MAX_BYTES must be a number",
        ),
        (
            {
                "TRACE_QUERY_URL": "http://t",
                "TRACE_QUERY_KIND": "jaeger",
                "TRACE_QUERY_TENANT": "a",
            },
            {},
            "Tempo's X-Scope-OrgID; jaeger takes none",
        ),
        (
            {
                "TRACE_QUERY_URL": "http://t",
                "TRACE_QUERY_KIND": "tempo",
                "TRACE_QUERY_TENANT": "a b",
            },
            {},
            "printable ASCII characters, no spaces",
        ),
        (
            {
                "TRACE_QUERY_URL": "http://t",
                "TRACE_QUERY_KIND": "tempo",
                "TRACE_QUERY_TOKEN_ENV": "T",
            },
            {},
            "names T, which is not set",
        ),
        (
            {
                "TRACE_QUERY_URL": "http://t",
                "TRACE_QUERY_KIND": "tempo",
                "TRACE_QUERY_TOKEN_ENV": "T",
            },
            {"T": "abc\r\nX-Evil: 1"},
            "holds a line break",
        ),
    ],
)
def test_settings_that_cannot_be_used_are_refused_naming_the_setting(config, environ, message):
    with pytest.raises(exemplars.TraceQueryConfigError) as refused:
        exemplars.from_config(config, environ)
    assert message in str(refused.value)
    assert "pw" not in str(refused.value) and "Evil" not in str(refused.value)


def test_the_app_refuses_to_start_with_a_bad_setting(monkeypatch):
    monkeypatch.setenv("CLEW_TRACE_QUERY_URL", "http://tempo:3200")
    monkeypatch.setenv("CLEW_TRACE_QUERY_KIND", "tmepo")
    with pytest.raises(exemplars.TraceQueryConfigError, match="not 'tmepo'"):
        create_app({"AUTH": False})
    monkeypatch.setenv("CLEW_TRACE_QUERY_KIND", "Tempo")
    monkeypatch.setenv("CLEW_TRACE_QUERY_TIMEOUT", "2.5")
    tempo = exemplars.configured(create_app({"AUTH": False}))
    assert tempo is not None and tempo.api == QueryApi("tempo", "http://tempo:3200")
    assert tempo.timeout == 2.5 and exemplars.from_environment().timeout == 2.5


# --- The exemplar: the store first ---------------------------------------------------------------


def test_a_stored_trace_is_never_fetched_and_a_fetched_one_says_where_from(api, tmp_path, registry):
    from clew import store

    path = tmp_path / "trace.json"
    path.write_bytes(orjson.dumps(trace_apis.otlp_json(SPANS)))
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.upgrade(engine)
    tempo_answers(api, trace_apis.tempo_protobuf(SPANS))
    tempo = client(api, "tempo")
    fetched = exemplars.exemplar(engine, TRACE_ID, tempo)
    assert fetched.fetched_from == tempo.api and fetched.trace is not None
    document = fetched.document()
    assert document["fetched_from"] == {"kind": "tempo", "url": api.url}
    assert document["unread"] == [] and document["spans"] == fetched.trace["spans"]
    ingest(engine, [path], registry)
    stored = exemplars.exemplar(engine, TRACE_ID, client(api, "tempo"))
    assert stored.fetched_from is None and stored.document() == stored.trace == fetched.trace
    assert len(api.requests) == 1  # the first, before the trace was stored
    api.answers[f"/api/traces/{'b' * 32}"] = Answer(b"trace not found", "text/plain", 404)
    missing = exemplars.exemplar(engine, "b" * 32, tempo)
    assert isinstance(missing.problem, exemplars.TraceNotFound)
    assert missing.explanation("The exemplar trace").startswith(
        f"The exemplar trace {'b' * 32} is not in the store, and Tempo at {api.url} has no trace"
    )
    engine.dispose()


# --- clew trace ----------------------------------------------------------------------------------


def test_clew_trace_falls_back_to_the_query_api(api, tmp_path):
    from click.testing import CliRunner

    from clew.cli import main

    db = str(tmp_path / "c.db")
    tempo_answers(api, trace_apis.tempo_protobuf(SPANS))
    env = {"CLEW_TRACE_QUERY_URL": api.url, "CLEW_TRACE_QUERY_KIND": "tempo"}
    runner = CliRunner()
    as_json = runner.invoke(main, ["trace", TRACE_ID, "--db", db, "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    document = orjson.loads(as_json.stdout)
    assert document["fetched_from"] == {"kind": "tempo", "url": api.url}
    assert document["failing_span_id"] == next(
        s["span_id"] for s in document["spans"] if s["service"] == "stock" and s["kind"] == 2
    )
    text = runner.invoke(main, ["trace", TRACE_ID, "--db", db], env=env)
    assert text.output.startswith(f"trace {TRACE_ID}: 4 spans, 2 services,")
    assert f"(fetched from Tempo at {api.url})" in text.output.splitlines()[0]
    api.answers[f"/api/traces/{'c' * 32}"] = Answer(b"trace not found", "text/plain", 404)
    missing = runner.invoke(main, ["trace", "c" * 32, "--db", db], env=env)
    assert (
        missing.exit_code == 1 and f"Tempo at {api.url} has no trace {'c' * 32}" in missing.output
    )
    bad = runner.invoke(main, ["trace", TRACE_ID, "--db", db], env={"CLEW_TRACE_QUERY_KIND": "x"})
    assert bad.exit_code == 1 and "CLEW_TRACE_QUERY_URL is not" in bad.output
