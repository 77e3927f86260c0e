"""Registries and catalogs pulled over HTTP, from a local server answering as Apicurio Registry
(v3, v2, the Confluent-compatible API) and the Backstage catalog answer: versions stored once
with their checkpoints, unchanged ones skipped, new ones stored on the next pull, message schemas
and disabled versions skipped, deprecated ones reported, HTTP failures named by URL and status,
and the worker's scheduler running its pulls."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from sqlalchemy import text

from clew import pull_cli, registries
from clew.store import catalog, contracts

ORDERS_V1 = """\
openapi: 3.0.3
info: {title: Orders, version: '1.0'}
paths:
  /orders:
    get: {responses: {'200': {description: the orders}}}
"""
ORDERS_V2 = (
    ORDERS_V1.replace("'1.0'", "'2.0'")
    + """\
  /orders/{id}:
    get:
      deprecated: true
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: one order}}
"""
)
ORDERS_V3 = (
    ORDERS_V2.replace("'2.0'", "'3.0'")
    + """\
  /orders/{id}/cancel:
    post: {responses: {'204': {description: cancelled}}}
"""
)
SHIPMENTS = """\
asyncapi: 3.0.0
info: {title: Shipments, version: '1.0.0'}
channels:
  shipped:
    address: shipments.shipped
    messages:
      shipped: {payload: {type: object}}
operations:
  sendShipped:
    action: send
    channel: {$ref: '#/channels/shipped'}
"""
PAYMENTS = """\
{"openapi": "3.1.0", "info": {"title": "Payments", "version": "1"},
 "paths": {"/payments": {"post": {"responses": {"201": {"description": "created"}}}}}}
"""
AVRO = '{"type": "record", "name": "OrderPlaced", "fields": [{"name": "id", "type": "string"}]}'
JSON_SCHEMA = '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}'


@dataclass
class Version:
    number: str
    content: str
    state: str = "ENABLED"


@dataclass
class Artifact:
    group: str | None  # None: v2's default group
    id: str
    type: str
    versions: list[Version]


@dataclass
class Fake:
    """What the local server serves, changed by the tests between pulls."""

    url: str = ""
    serves: set[str] = field(default_factory=lambda: {"v2", "v3", "ccompat"})
    artifacts: list[Artifact] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    token: str | None = None  # when set, a request without it is answered 401
    answers: dict[str, tuple[int, bytes, dict]] = field(default_factory=dict)  # path → answer
    slow: set[str] = field(default_factory=set)  # paths answered after 0.6 s
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def artifact(self, group: str, artifact_id: str) -> Artifact | None:
        for artifact in self.artifacts:
            if (artifact.group or "default") == group and artifact.id == artifact_id:
                return artifact
        return None


class Handler(BaseHTTPRequestHandler):
    """Answers as Apicurio Registry 3 (v3 and v2, ccompat v7) and Backstage's catalog do, in the
    shapes their OpenAPI documents give (see ``clew.registries``)."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        fake: Fake = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        fake.requests.append((self.path, self.headers.get("Authorization")))
        if url.path in fake.slow:
            time.sleep(0.6)
        if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self.answer(401, {"error_code": 401, "message": "Unauthorized"})
        if url.path in fake.answers:
            status, body, headers = fake.answers[url.path]
            return self.answer(status, body, headers)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        if parts[:2] == ["apis", "registry"] and len(parts) > 2 and parts[2] in fake.serves:
            return self.apicurio(fake, parts[2], parts[3:], query)
        if parts[:3] == ["apis", "ccompat", "v7"] and "ccompat" in fake.serves:
            return self.ccompat(fake, parts[3:])
        if parts == ["api", "catalog", "entities", "by-query"]:
            return self.by_query(fake, query)
        return self.answer(404, {"error_code": 404, "message": f"No resource at {url.path}"})

    def apicurio(self, fake: Fake, api: str, parts: list[str], query: dict) -> None:
        three = api == "v3"
        if parts == ["system", "info"]:
            return self.answer(200, {"name": "Apicurio Registry (SQL)", "version": "3.0.9"})
        if parts == ["search", "artifacts"]:
            wanted = query.get("groupId" if three else "group")
            found = [a for a in fake.artifacts if wanted in (None, a.group or "default")]
            listed = [
                {"groupId": a.group or "default", "artifactId": a.id, "artifactType": a.type}
                if three
                else {"groupId": a.group, "id": a.id, "type": a.type, "state": "ENABLED"}
                for a in found
            ]
            return self.answer(200, {"artifacts": self.page(listed, query), "count": len(found)})
        if len(parts) < 5 or parts[0] != "groups" or parts[2] != "artifacts":
            return self.answer(404, {"message": "no such resource"})
        artifact = fake.artifact(parts[1], parts[3])
        if artifact is None or parts[4] != "versions":
            return self.answer(404, {"error_code": 404, "message": "No artifact"})
        if len(parts) == 5:
            listed = [
                {"version": v.number, "state": v.state, "globalId": n, "contentId": n}
                | ({"artifactType": artifact.type} if three else {"type": artifact.type})
                for n, v in enumerate(artifact.versions, 1)
            ]
            listing = {"versions": self.page(listed, query), "count": len(listed)}
            return self.answer(200, listing)
        version = next((v for v in artifact.versions if v.number == parts[5]), None)
        if version is None or version.state == "DISABLED":
            return self.answer(404, {"error_code": 404, "message": "No version"})
        if parts[6:] == (["content"] if three else []):
            deprecated = {"X-Registry-Deprecated": "true"} if version.state == "DEPRECATED" else {}
            return self.answer(200, version.content.encode(), deprecated)
        if three and len(parts) == 6:  # v3's version URL is its metadata, not its content
            return self.answer(200, {"version": version.number, "state": version.state})
        return self.answer(404, {"message": "no such resource"})

    def ccompat(self, fake: Fake, parts: list[str]) -> None:
        subjects = {a.id: a for a in fake.artifacts if (a.group or "default") == "default"}
        if parts == ["subjects"]:
            return self.answer(200, sorted(subjects))
        if len(parts) < 3 or parts[1] not in subjects or parts[2] != "versions":
            return self.answer(404, {"error_code": 40401, "message": "Subject not found"})
        artifact = subjects[parts[1]]
        if len(parts) == 3:
            return self.answer(200, [int(v.number) for v in artifact.versions])
        version = next((v for v in artifact.versions if v.number == parts[3]), None)
        if version is None:
            return self.answer(404, {"error_code": 40402, "message": "Version not found"})
        schema = {"subject": artifact.id, "version": int(version.number), "id": 7}
        if artifact.type != "AVRO":  # as Confluent, Apicurio leaves Avro's type out
            schema["schemaType"] = artifact.type
        return self.answer(200, schema | {"schema": version.content})

    def by_query(self, fake: Fake, query: dict) -> None:
        start = 0
        if "cursor" in query:
            start = orjson.loads(base64.b64decode(query["cursor"]))["offset"]
        end = start + int(query.get("limit", 20))
        info = {}
        if end < len(fake.entities):
            info["nextCursor"] = base64.b64encode(orjson.dumps({"offset": end})).decode()
        if start:
            info["prevCursor"] = base64.b64encode(orjson.dumps({"offset": 0})).decode()
        items = fake.entities[start:end]
        return self.answer(
            200, {"items": items, "totalItems": len(fake.entities), "pageInfo": info}
        )

    @staticmethod
    def page(items: list, query: dict) -> list:
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
        return items[offset : offset + limit]

    def answer(self, status: int, body: object, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the timeout test)
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def entity(kind: str, name: str, spec: dict, api_version: str = "backstage.io/v1alpha1") -> dict:
    """An entity as the catalog API returns it: with uid, etag and the relations it derived."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "etag": "e1"},
        "spec": spec,
        "relations": [],
    }


CATALOG = [
    entity(
        "Component",
        "orders",
        {
            "type": "service",
            "lifecycle": "production",
            "owner": "team-a",
            "providesApis": ["orders-api"],
            "dependsOn": ["resource:orders-db"],
        },
    ),
    entity(
        "API",
        "orders-api",
        {"type": "openapi", "lifecycle": "production", "owner": "team-a", "definition": ORDERS_V1},
    ),
    entity("Resource", "orders-db", {"type": "database", "owner": "team-a"}),
    entity("Group", "team-a", {"type": "team", "children": []}),
    entity("Template", "new-service", {"type": "service"}, "scaffolder.backstage.io/v1beta3"),
]


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake(
        artifacts=[
            Artifact(
                "payments",
                "orders-api",
                "OPENAPI",
                [Version("1", ORDERS_V1, "DEPRECATED"), Version("2", ORDERS_V2)],
            ),
            Artifact("logistics", "shipments/events", "ASYNCAPI", [Version("1.0.0", SHIPMENTS)]),
            Artifact("payments", "order-placed", "AVRO", [Version("1", AVRO)]),
            Artifact(
                None,
                "payments-api",
                "OPENAPI",
                [Version("1", PAYMENTS), Version("2", PAYMENTS.replace('"1"', '"2"'), "DISABLED")],
            ),
            Artifact(None, "order-placed-value", "AVRO", [Version("1", AVRO)]),
            Artifact(None, "customer", "JSON", [Version("1", JSON_SCHEMA)]),
        ],
        entities=list(CATALOG),
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    """Two items a page, so that every listing here takes more than one."""
    monkeypatch.setattr(registries, "PAGE", 2)


def stored(engine) -> dict[str, tuple[str | None, int, int, str]]:
    """Stored versions: title@version → (spec version, operations, deprecated, source)."""
    with engine.connect() as conn:
        return {
            f"{v.title}@{v.version}": (v.spec_version, v.operations, v.deprecated, v.source)
            for v in contracts.versions(conn)
        }


def test_apicurio_v3_versions_are_stored_with_their_checkpoints(engine, fake):
    report = registries.pull(engine, fake.url, "apicurio")

    base = f"{fake.url}/apis/registry/v3"
    assert (report.api, report.problems) == ("apicurio v3", [])
    assert (report.artifacts, report.not_api, report.disabled) == (6, 3, 1)
    assert (report.versions, report.stored, report.unchanged) == (4, 4, 0)
    assert report.deprecated == ["payments/orders-api@1"]
    assert stored(engine) == {
        "Orders@1.0": ("3.0.3", 1, 0, f"{base}/groups/payments/artifacts/orders-api/versions/1"),
        "Orders@2.0": ("3.0.3", 2, 1, f"{base}/groups/payments/artifacts/orders-api/versions/2"),
        "Payments@1": ("3.1.0", 1, 0, f"{base}/groups/default/artifacts/payments-api/versions/1"),
        "Shipments@1.0.0": (
            "3.0.0",
            1,
            0,
            f"{base}/groups/logistics/artifacts/shipments%2Fevents/versions/1.0.0",
        ),
    }
    with engine.connect() as conn:
        checkpoints = dict(
            conn.execute(text("SELECT source, collector FROM ingest_checkpoints")).all()
        )
    assert set(checkpoints) == {source for *_, source in stored(engine).values()}
    assert set(checkpoints.values()) == {"apicurio"}
    # Avro and JSON Schema artifacts are never listed further, nor a disabled version fetched.
    skipped = ("order-placed", "customer", "payments-api/versions/2")
    assert not any(name in path for path, _ in fake.requests for name in skipped)


def test_a_second_pull_stores_nothing_and_a_new_version_is_stored_on_the_next(engine, fake):
    registries.pull(engine, fake.url, "apicurio")
    again = registries.pull(engine, fake.url, "apicurio")
    assert (again.versions, again.stored, again.unchanged, again.inserted) == (4, 0, 4, 0)

    fake.artifacts[0].versions.append(Version("3", ORDERS_V3))
    third = registries.pull(engine, fake.url, "apicurio")
    assert (third.stored, third.unchanged, third.inserted) == (1, 4, 4)  # a version, 3 operations
    assert stored(engine)["Orders@3.0"][:3] == ("3.0.3", 3, 1)


def test_a_changed_draft_is_stored_again_by_its_content_hash(engine, fake):
    draft = Version("4", ORDERS_V2.replace("'2.0'", "'4.0-draft'"), "DRAFT")
    fake.artifacts[0].versions.append(draft)
    registries.pull(engine, fake.url, "apicurio")
    draft.content = ORDERS_V3.replace("'3.0'", "'4.0-draft'")
    report = registries.pull(engine, fake.url, "apicurio")
    assert (report.stored, report.unchanged) == (1, 4)
    drafts = [k for k in stored(engine) if k == "Orders@4.0-draft"]
    assert drafts == ["Orders@4.0-draft"]  # one title@version, two content hashes
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM contract_versions WHERE version = '4.0-draft'")
        ).scalar()
    assert count == 2


def test_apicurio_v2_is_read_where_v3_is_not_served(engine, fake):
    fake.serves = {"v2"}
    report = registries.pull(engine, fake.url, "apicurio", group="payments")

    base = f"{fake.url}/apis/registry/v2"
    assert (report.api, report.problems) == ("apicurio v2", [])
    assert (report.artifacts, report.not_api, report.stored) == (2, 1, 2)
    assert report.deprecated == ["payments/orders-api@1"]
    assert {k: v[3] for k, v in stored(engine).items()} == {
        "Orders@1.0": f"{base}/groups/payments/artifacts/orders-api/versions/1",
        "Orders@2.0": f"{base}/groups/payments/artifacts/orders-api/versions/2",
    }
    assert all("group=payments" in p for p, _ in fake.requests if "/search/" in p)


def test_ccompat_subjects_holding_api_contracts_are_read_and_message_schemas_skipped(engine, fake):
    report = registries.pull(engine, f"{fake.url}/apis/ccompat/v7", "ccompat")

    base = f"{fake.url}/apis/ccompat/v7"
    assert (report.api, report.problems) == ("ccompat v7", [])
    assert (report.artifacts, report.not_api) == (3, 2)  # Avro (no schemaType) and JSON
    # payments-api's DISABLED version 2 is not hidden by this API: it is read too.
    assert (report.versions, report.stored) == (2, 2)
    assert {k: v[3] for k, v in stored(engine).items()} == {
        "Payments@1": f"{base}/subjects/payments-api/versions/1",
        "Payments@2": f"{base}/subjects/payments-api/versions/2",
    }
    again = registries.pull(engine, fake.url, "ccompat")  # the API found under the root
    assert (again.stored, again.unchanged) == (0, 2)


def test_the_backstage_catalog_is_read_over_two_pages_and_replaced_when_it_changes(engine, fake):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registries, "PAGE", 3)
        report = registries.pull(engine, fake.url, "backstage")

    source = f"{fake.url}/api/catalog/entities/by-query"
    assert (report.problems, report.entities, report.other_entities) == ([], 5, 1)
    assert (report.stored, report.unchanged, report.quarantined) == (1, 0, 0)
    assert [p for p, _ in fake.requests][1].startswith(
        "/api/catalog/entities/by-query?limit=3&cursor="
    )
    with engine.connect() as conn:
        entities = {e["ref"]: e for e in catalog.entities(conn)}
        relations = catalog.dependencies(conn)
    assert sorted(entities) == [
        "api:default/orders-api",
        "component:default/orders",
        "group:default/team-a",
        "resource:default/orders-db",
    ]
    assert {e["source"] for e in entities.values()} == {source}
    assert entities["component:default/orders"]["owner"] == "group:default/team-a"
    assert ("component:default/orders", "api:default/orders-api", "providesApi") in relations
    assert ("component:default/orders", "resource:default/orders-db", "dependsOn") in relations
    assert stored(engine) == {"Orders@1.0": ("3.0.3", 1, 0, source)}  # the API's definition

    assert registries.pull(engine, fake.url, "backstage").unchanged == 1
    fake.entities = [e for e in fake.entities if e["metadata"]["name"] != "orders-db"]
    fake.entities[0] = entity("Component", "orders", {"type": "service", "owner": "team-b"})
    changed = registries.pull(engine, f"{fake.url}/api/catalog", "backstage")
    assert (changed.stored, changed.entities) == (1, 4)
    with engine.connect() as conn:
        entities = {e["ref"]: e for e in catalog.entities(conn)}
        relations = catalog.dependencies(conn)
    assert "resource:default/orders-db" not in entities
    assert entities["component:default/orders"]["owner"] == "group:default/team-b"
    assert relations == []


def test_http_failures_are_named_by_url_and_status_and_the_pull_goes_on(engine, fake):
    version_2 = "/apis/registry/v3/groups/payments/artifacts/orders-api/versions/2/content"
    fake.answers[version_2] = (500, b'{"title": "Internal error", "status": 500}', {})
    report = registries.pull(engine, fake.url, "apicurio")
    assert report.problems == [
        f"{fake.url}{version_2}: HTTP 500 Internal Server Error: Internal error"
    ]
    assert report.stored == 3  # the others

    fake.answers["/apis/registry/v3/search/artifacts"] = (503, b"busy", {})
    failed = registries.pull(engine, fake.url, "apicurio")
    url = f"{fake.url}/apis/registry/v3/search/artifacts?offset=0&limit=2"
    assert failed.problems == [f"{url}: HTTP 503 Service Unavailable"]


def test_a_token_is_sent_from_the_environment_and_never_shown(engine, fake, monkeypatch):
    fake.token = "s3cret-t0ken"
    monkeypatch.setenv("CLEW_REGISTRY_TOKEN", "wr0ng-t0ken")
    refused = registries.pull(engine, fake.url, "backstage")
    url = f"{fake.url}/api/catalog/entities/by-query?limit=2"
    assert refused.problems == [f"{url}: HTTP 401 Unauthorized: Unauthorized"]
    assert "t0ken" not in repr(registries.Http.from_environment())

    monkeypatch.setenv("BACKSTAGE_TOKEN", "s3cret-t0ken")
    http = registries.Http.from_environment("BACKSTAGE_TOKEN")
    assert registries.pull(engine, fake.url, "backstage", http=http).problems == []
    assert fake.requests[-1][1] == "Bearer s3cret-t0ken"


def test_redirects_to_another_host_credentials_in_urls_size_and_time_are_refused(fake):
    fake.answers["/moved"] = (302, b"", {"Location": "http://127.0.0.2:9/elsewhere"})
    fake.answers["/here"] = (301, b"", {"Location": "/api/catalog/entities/by-query"})
    fake.answers["/big"] = (200, b"x" * 2_000, {})
    fake.slow.add("/slow")
    http = registries.Http(token="t", timeout=0.2, max_bytes=1_500)

    with pytest.raises(
        registries.PullError,
        match=r"/moved: HTTP 302 redirects to http://127\.0\.0\.2:9: not followed",
    ):
        http.get(f"{fake.url}/moved")
    assert http.json(f"{fake.url}/here")["totalItems"] == 5  # the same host: followed
    with pytest.raises(registries.PullError, match=r"/big: 2,000 bytes, more than the 1,500"):
        http.get(f"{fake.url}/big")
    with pytest.raises(registries.PullError, match=r"/slow: no answer in 0\.2 s"):
        http.get(f"{fake.url}/slow")
    with pytest.raises(registries.PullError) as refused:
        http.get(f"http://user:hunter2@127.0.0.1:{fake.url.rsplit(':', 1)[1]}/x")
    assert "hunter2" not in str(refused.value) and "credentials in a URL" in str(refused.value)
    with pytest.raises(registries.PullError, match="not an http:// or https:// URL"):
        http.get("file:///etc/passwd")


def test_clew_pull_prints_its_report_and_exits_1_on_problems(tmp_path, engine, fake):
    db = str(tmp_path / "clew.db")
    result = CliRunner().invoke(
        pull_cli.pull, [fake.url, "--kind", "apicurio", "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert {k: data[k] for k in ("artifacts", "stored", "unchanged", "not_api", "problems")} == {
        "artifacts": 6,
        "stored": 4,
        "unchanged": 0,
        "not_api": 3,
        "problems": [],
    }
    assert "payments/order-placed: AVRO is no API contract: skipped" in result.stderr

    again = CliRunner().invoke(pull_cli.pull, [fake.url, "--kind", "apicurio", "--db", db])
    assert again.stdout.startswith(
        f"apicurio v3 {fake.url}: 6 artifacts, 4 read, 0 stored, 4 unchanged"
    )

    down = CliRunner().invoke(
        pull_cli.pull, ["http://127.0.0.1:9", "--kind", "ccompat", "--db", db]
    )
    assert down.exit_code == 1
    assert "error: http://127.0.0.1:9/apis/ccompat/v7/subjects:" in down.stderr
    misused = CliRunner().invoke(
        pull_cli.pull, [fake.url, "--kind", "backstage", "--group", "g", "--db", db]
    )
    assert misused.exit_code == 2 and "--group" in misused.stderr


def test_the_worker_scheduler_runs_its_pulls(tmp_path, engine, fake):
    config = tmp_path / "worker.toml"
    config.write_text(
        f'[[pull]]\nurl = "{fake.url}"\nkind = "apicurio"\nevery = "15m"\n\n'
        f'[[pull]]\nurl = "{fake.url}"\nkind = "backstage"\nevery = 60\ntimeout = 5\n'
    )
    jobs = pull_cli.load_config(config)
    assert [(j.kind, j.every_s, j.timeout_s) for j in jobs] == [
        ("apicurio", 900.0, 30.0),
        ("backstage", 60.0, 5.0),
    ]
    reports = []
    done = threading.Event()

    def emit(job, report):
        reports.append((job.kind, report))
        if len(reports) == 2:
            done.set()

    scheduler = pull_cli.build_scheduler(engine, jobs, BackgroundScheduler, emit)
    scheduler.start()
    try:
        assert done.wait(5)
    finally:
        scheduler.shutdown()
    assert sorted((kind, r.stored, r.problems) for kind, r in reports) == [
        ("apicurio", 4, []),
        ("backstage", 1, []),
    ]


@pytest.mark.parametrize(
    ("toml", "fault"),
    [
        ("", "no [[pull]], [[check]] or [retention] tables"),
        ('[[pull]]\nurl = "http://r"\nkind = "nexus"\nevery = "1m"', "kind 'nexus'"),
        ('[[pull]]\nurl = "http://r"\nkind = "apicurio"\nevery = "soon"', "not a duration"),
        ('[[pull]]\nurl = "http://r"\nkind = "apicurio"\nevery = "0.5s"', "shorter than 1 s"),
        ('[[pull]]\nurl = "http://r"\nkind = "apicurio"', "pull 1: no every"),
        ('[[pull]]\nurl = "http://r"\nkind = "ccompat"\nevery = 60\ngroup = "g"', "group names"),
        ('[[pull]]\nurl = "http://r"\nkind = "apicurio"\nevery = 60\nurls = 1', "unknown keys"),
        ("[[pull]\n", "line 1"),
        ('[[check]]\nsince = "24h"', "check 1: no every"),
        ('[[check]]\nevery = "1h"\nwindow = "1h"', "unknown keys ['window']"),
        ('[[check]]\nevery = "1h"\npacks = 3', "packs is not a path"),
        ('[[check]]\nevery = "1h"\nsince = 24', "since 24 is not"),
    ],
)
def test_a_worker_file_that_cannot_be_used_is_refused_with_the_fault(tmp_path, toml, fault):
    config = tmp_path / "worker.toml"
    config.write_text(toml)
    with pytest.raises(ValueError, match=f"^{re.escape(str(config))}: .*{re.escape(fault)}"):
        pull_cli.load_config(config)


def test_clew_worker_finishes_the_pull_under_way_on_sigterm_and_stops(tmp_path, engine, fake):
    config = tmp_path / "worker.toml"
    config.write_text(f'[[pull]]\nurl = "{fake.url}"\nkind = "apicurio"\nevery = "1h"\n')
    fake.slow.add("/apis/registry/v3/groups/default/artifacts/payments-api/versions/1/content")
    before = signal.getsignal(signal.SIGTERM)

    def stop_during_the_pull() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not stored(engine):
            time.sleep(0.02)
        while signal.getsignal(signal.SIGTERM) is before:  # not before the worker's handler
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_during_the_pull)
    stopper.start()
    result = CliRunner().invoke(
        pull_cli.worker, ["--config", str(config), "--db", str(tmp_path / "clew.db"), "--json"]
    )
    stopper.join()
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["kind"], r["stored"], r["problems"]) for r in lines] == [("apicurio", 4, [])]
    assert len(stored(engine)) == 4
    assert "clew worker stopped" in result.stderr
    assert signal.getsignal(signal.SIGTERM) is before


def test_unknown_kinds_and_misplaced_groups_are_refused(engine):
    with pytest.raises(ValueError, match="unknown registry kind 'nexus'"):
        registries.pull(engine, "http://r", "nexus")
    with pytest.raises(ValueError, match="apicurio only"):
        registries.pull(engine, "http://r", "backstage", group="g")


def test_a_version_that_is_no_contract_is_quarantined_with_its_reason(engine, fake):
    fake.artifacts[0].versions[1].content = "openapi: [unclosed"
    report = registries.pull(engine, fake.url, "apicurio")
    assert (report.stored, report.quarantined) == (4, 1)
    with engine.connect() as conn:
        source, reason = conn.execute(text("SELECT source, reason FROM quarantine")).one()
    assert source.endswith("/groups/payments/artifacts/orders-api/versions/2")
    assert reason.startswith("invalid YAML")


def test_the_registry_s_state_is_kept_and_marks_the_version_s_operations(engine, fake):
    """Orders 1 is DEPRECATED in the registry; when the registry deprecates Orders 2 too, the
    next pull stores that alone, and the inventory marks every operation of it deprecated."""
    from clew import inventory
    from clew.store import queries

    registries.pull(engine, fake.url, "apicurio")
    with engine.connect() as conn:
        states = {f"{v.title}@{v.version}": v.registry_state for v in contracts.versions(conn)}
    assert states["Orders@1.0"] == "DEPRECATED" and states["Orders@2.0"] == "ENABLED"
    fake.artifacts[0].versions[1].state = "DEPRECATED"
    report = registries.pull(engine, fake.url, "apicurio")
    assert (report.stored, report.inserted) == (1, 0)  # the state alone: no rows again
    with engine.connect() as conn:
        states = {f"{v.title}@{v.version}": v.registry_state for v in contracts.versions(conn)}
        found = inventory.inventory(conn, queries.Window())
    assert states["Orders@2.0"] == "DEPRECATED"
    orders = [e for e in found if e.contract == "Orders@2.0"]
    assert orders and all(e.deprecated for e in orders)
    assert {e.status for e in orders} == {"orphan"}  # never called here: orphans, marked


def test_a_worker_watches_a_folder_of_contracts(tmp_path, engine):
    """A ``folder`` job: a contract file read once it has settled, a new version when it is
    edited, nothing when it is not, and a folder that is not there yet a problem, not a crash."""
    import os

    folder = tmp_path / "contracts"
    config = tmp_path / "worker.toml"
    config.write_text(f'[[pull]]\nurl = "{folder}"\nkind = "folder"\nevery = "1m"\n')
    (job,) = pull_cli.load_config(config)
    reports: list = []

    def emit(_job, report):
        reports.append(report)

    missing = pull_cli.run_pull(engine, job, emit)
    assert missing.problems == [f"{folder}: no such folder (yet)"]
    folder.mkdir()
    path = folder / "orders.yaml"
    path.write_text(ORDERS_V1)
    fresh = pull_cli.run_pull(engine, job, emit)
    assert (fresh.versions, fresh.stored) == (0, 0)  # changed a moment ago: left to settle
    long_ago = path.stat().st_mtime - 60
    os.utime(path, (long_ago, long_ago))
    first = pull_cli.run_pull(engine, job, emit)
    assert (first.versions, first.stored, first.problems) == (1, 1, [])
    path.write_text(ORDERS_V2)
    os.utime(path, (long_ago + 1, long_ago + 1))
    second = pull_cli.run_pull(engine, job, emit)
    assert (second.stored, second.quarantined) == (1, 0)
    again = pull_cli.run_pull(engine, job, emit)
    assert (again.versions, again.stored, again.unchanged) == (0, 0, 1)
    assert sorted(stored(engine)) == ["Orders@1.0", "Orders@2.0"]
    assert pull_cli.summary(again).startswith(f"folder {folder}: 1 files, 0 read")
    assert len(reports) == 5
