"""Contract registries and service catalogs pulled over HTTP: Apicurio Registry (its v3 and v2
REST APIs, and its Confluent-compatible API) and the Backstage catalog API. What they serve is
read by the file collectors' own readers and stored by the pipeline, with a checkpoint for each
artifact version (or the whole catalog) in the same transaction as its rows.

The shapes read, as the projects publish them:

- Apicurio v3, ``/apis/registry/v3`` (its OpenAPI document,
  ``common/src/main/resources/META-INF/openapi.json`` in Apicurio/apicurio-registry):
  ``GET /search/artifacts?groupId=&offset=&limit=`` answers ``{"artifacts": [{"groupId",
  "artifactId", "artifactType", …}], "count"}``; ``GET /groups/{groupId}/artifacts/{artifactId}
  /versions?offset=&limit=`` answers ``{"versions": [{"version", "state", "globalId",
  "contentId", …}], "count"}``, a version's ``state`` being ENABLED, DISABLED, DEPRECATED, DRAFT
  (or, from 3.3, SUNSET); ``GET …/versions/{version}/content`` is the content as registered.
- Apicurio v2, ``/apis/registry/v2`` (``openapi-v2.json`` beside it): the same walk, the search
  filtered by ``group``, an artifact's id and type in ``id`` and ``type``, a null ``groupId``
  meaning the group ``default``, and the content at ``…/versions/{version}`` itself. Each
  version's ``state`` is in the listing (``SearchedVersion``), so ``…/meta`` is not asked.
- the Confluent-compatible API, ``/apis/ccompat/v7`` (``openapi-ccompat-v7.json``): ``GET
  /subjects`` (names), ``/subjects/{subject}/versions`` (numbers), ``/subjects/{subject}
  /versions/{version}`` (``{"subject", "version", "id", "schemaType", "schema"}``). Apicurio
  names the artifact type in ``schemaType`` (``OPENAPI``, ``ASYNCAPI``, …) and, as Confluent
  does, leaves it out for Avro.
- the Backstage catalog, ``/api/catalog`` (``plugins/catalog-backend/src/schema/openapi.yaml``
  in backstage/backstage; backstage.io/docs/features/software-catalog/software-catalog-api):
  ``GET /entities/by-query?limit=``, then ``?cursor=`` (the cursor carries the query), answers
  ``{"items", "totalItems", "pageInfo": {"nextCursor", "prevCursor"}}``: the final entities,
  whose ``$text`` definitions the catalog's processors have already read in.

What is kept:

- OPENAPI and ASYNCAPI artifacts are contracts, read by ``collectors.openapi`` and
  ``collectors.asyncapi``; Avro, JSON Schema, Protobuf and the other types describe messages, not
  APIs: they are skipped and counted (``not_api``). A DISABLED version's content is withheld by
  the registry: skipped and counted. A version's state is kept with it (``Contract.state``;
  DEPRECATED makes every operation of it a zombie in the inventory), and DEPRECATED ones are
  listed in the report (``deprecated``); a change of state alone is stored on the next pull.
- Every pull reads the content of every API version (a version is immutable in a registry, a
  DRAFT one excepted, but a registry reset numbers its versions again: only the content says
  whether it changed). A version whose content hash (sha256 of the bytes served) is its
  checkpoint's is skipped; any other is read and stored with its checkpoint (source: the
  version's URL) in one transaction. Contract versions are stored once by content hash besides.
- A Backstage catalog is read whole, one checkpoint for it (source: its ``by-query`` URL), by
  the hash of the records read; a changed catalog replaces what that source declared before, so
  an entity gone from the catalog goes from the store. Entities of other API groups (scaffolder
  templates, ``scaffolder.backstage.io/…``) are counted (``other_entities``), not read.

HTTP goes through ``urllib``: a timeout on every request, a cap on every response, redirects
followed within the same scheme, host and port only (a token is never sent elsewhere), a bearer
token from an environment variable (``CLEW_REGISTRY_TOKEN`` by default) that no message names,
and credentials written in a URL refused. Errors name the URL and the HTTP status.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from sqlalchemy import Engine, text

from clew.pipeline import Batch, _FileIdentity, _Run, _save_checkpoint
from clew.records import (
    ApiDefinition,
    Contract,
    Operation,
    Quarantined,
    excerpt,
)
from clew.store import utcnow
from collectors import asyncapi, backstage, openapi

KINDS = ("apicurio", "ccompat", "backstage")
DEFAULT_TOKEN_ENV = "CLEW_REGISTRY_TOKEN"
TIMEOUT_S = 30.0
#: The largest response read (a contract is refused larger than this anyway).
MAX_RESPONSE_BYTES = 32 * 2**20
#: Items asked for per page, and pages followed at most.
PAGE = 100
MAX_PAGES = 10_000
#: Artifact types that are API contracts, with the checks and readers of their documents.
READERS = {
    "OPENAPI": (openapi.not_openapi, openapi.read),
    "ASYNCAPI": (asyncapi.not_asyncapi, asyncapi.read),
}

_FINGERPRINT = text("SELECT fingerprint FROM ingest_checkpoints WHERE source = :source")
#: A registry version or a catalog is no file: it has no device, inode, size or mtime.
_NOT_A_FILE = _FileIdentity(device=None, inode=None, size=0, mtime_ns=None)


class PullError(Exception):
    """A registry that could not be read: the URL and what went wrong (never a credential)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PullReport:
    """What one pull read, stored and skipped, in the shape ``clew pull --json`` prints."""

    url: str
    kind: str
    api: str | None = None  # "apicurio v3", "ccompat v7", "backstage catalog"
    artifacts: int = 0  # artifacts or subjects listed
    entities: int = 0  # catalog entities listed
    versions: int = 0  # API versions (or catalogs) whose content was read
    stored: int = 0  # of those, stored with their checkpoint (new or changed content)
    unchanged: int = 0  # of those, skipped: the content of their checkpoint
    not_api: int = 0  # artifacts or subjects of message schemas (Avro, JSON Schema, Protobuf, …)
    disabled: int = 0  # versions whose content the registry withholds
    other_entities: int = 0  # catalog entities of other API groups (scaffolder templates, …)
    deprecated: list[str] = field(default_factory=list)  # "group/artifact@version", registry's
    inserted: int = 0  # rows the store took (contract versions, operations, entities, …)
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


class Http:
    """GET requests to one registry: JSON or content, with a timeout, a size cap, same-origin
    redirects only and an optional bearer token (kept out of ``repr`` and every message)."""

    def __init__(
        self,
        token: str | None = None,
        timeout: float = TIMEOUT_S,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._token = token
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._opener = urllib.request.build_opener(_SameOrigin())

    @classmethod
    def from_environment(cls, token_env: str = DEFAULT_TOKEN_ENV, **options: Any) -> Http:
        """A client with the token the environment variable ``token_env`` holds, if any."""
        return cls(os.environ.get(token_env) or None, **options)

    def __repr__(self) -> str:
        token = "a token" if self._token else "no token"
        return f"Http({token}, timeout={self.timeout:g}, max_bytes={self.max_bytes})"

    def get(self, url: str, accept: str = "*/*") -> bytes:
        """The body of a 200 answer to ``GET url``; a PullError for anything else."""
        _check_url(url)
        request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "clew"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > self.max_bytes:
                    raise PullError(f"{url}: {int(length):,} bytes, more than {self._cap}")
                body = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as error:
            detail = _detail(error)
            if self._token and self._token in detail:  # a registry quoting the header back
                detail = ": (the registry's message quotes the token sent: not shown)"
            raise PullError(
                f"{url}: HTTP {error.code} {error.reason}{detail}", error.code
            ) from None
        except urllib.error.URLError as error:
            raise PullError(f"{url}: {self._why(error.reason)}") from None
        except (OSError, HTTPException) as error:  # a timeout while reading, …
            raise PullError(f"{url}: {self._why(error)}") from None
        if len(body) > self.max_bytes:
            raise PullError(f"{url}: more than {self._cap}: not read")
        return body

    def json(self, url: str) -> Any:
        """The JSON document a 200 answer to ``GET url`` holds."""
        body = self.get(url, accept="application/json")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise PullError(f"{url}: not JSON ({error.msg}, line {error.lineno})") from None

    @property
    def _cap(self) -> str:
        return f"the {self.max_bytes:,} bytes read at most"

    def _why(self, reason: object) -> str:
        if isinstance(reason, TimeoutError):
            return f"no answer in {self.timeout:g} s"
        return str(reason) or type(reason).__name__


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Redirects followed within the scheme, host and port asked: a token goes nowhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            where = "{}://{}:{}".format(*_origin(newurl))
            raise PullError(f"{req.full_url}: HTTP {code} redirects to {where}: not followed", code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PullError(f"{url}: not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        raise PullError(f"{shown}: credentials in a URL are not used: set {DEFAULT_TOKEN_ENV}")


def _detail(error: urllib.error.HTTPError) -> str:
    """The registry's own message in an error answer, briefly (Apicurio's ``message`` or
    ``detail``, Backstage's ``error.message``)."""
    try:
        body = orjson.loads(error.read(16_384))
    except (orjson.JSONDecodeError, OSError):
        return ""
    finally:
        error.close()
    if not isinstance(body, dict):
        return ""
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    message = (
        body.get("message") or body.get("detail") or body.get("title") or nested.get("message")
    )
    return f": {excerpt(str(message), 200)}" if message else ""


def pull(
    engine: Engine,
    url: str,
    kind: str,
    *,
    http: Http | None = None,
    group: str | None = None,
    log: Callable[[str], None] | None = None,
) -> PullReport:
    """Pull one registry (``kind``: apicurio, ccompat or backstage) into the store: what is new
    or changed stored, each version with its checkpoint. ``group`` limits an Apicurio pull to one
    group; ``log`` is given a line per version or page. A registry that cannot be listed ends
    the pull with a problem; a version that cannot be read is a problem, and the pull goes on."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r} (known: {', '.join(KINDS)})")
    if group is not None and kind != "apicurio":
        raise ValueError("a group names Apicurio artifacts: it applies to kind apicurio only")
    http = http or Http.from_environment()
    report = PullReport(url, kind)
    puller = _Puller(engine, http, report, log or (lambda _line: None))
    try:
        if kind == "apicurio":
            puller.apicurio(url, group)
        elif kind == "ccompat":
            puller.ccompat(url)
        else:
            puller.backstage(url)
    except PullError as error:
        report.problems.append(str(error))
    return report


def contract_records(
    data: bytes, artifact_type: str, source: str
) -> list[Contract | Operation | Quarantined]:
    """The records of one version's content: its contract and operations, or why it is none."""
    try:
        document = openapi.parse(data, source)
    except openapi.ParseError as error:
        return [Quarantined(error.position, error.reason, excerpt(data[:200]))]
    not_it, read = READERS[artifact_type]
    reason = not_it(document)
    if reason is not None:
        return [Quarantined("document", reason, excerpt(data[:200]))]
    return list(read(document, hashlib.sha256(data).hexdigest()))


@dataclass
class _Puller:
    """One pull's walk of a registry, writing as it goes and counting in ``report``."""

    engine: Engine
    http: Http
    report: PullReport
    log: Callable[[str], None]

    def apicurio(self, url: str, group: str | None) -> None:
        base, version = self._apicurio_base(url)
        self.report.api = f"apicurio {version}"
        three = version == "v3"
        search = {("groupId" if three else "group"): group} if group else {}
        for artifact in self._pages(f"{base}/search/artifacts", "artifacts", search):
            self.report.artifacts += 1
            group_id = str(artifact.get("groupId") or "default")
            artifact_id = artifact.get("artifactId" if three else "id")
            artifact_type = str(artifact.get("artifactType" if three else "type") or "").upper()
            name = f"{group_id}/{artifact_id}"
            if not isinstance(artifact_id, str) or not artifact_id:
                self.report.problems.append(f"{base}/search/artifacts: an artifact without an id")
                continue
            if artifact_type not in READERS:
                self.report.not_api += 1
                self.log(f"{name}: {artifact_type or 'untyped'} is no API contract: skipped")
                continue
            path = f"{base}/groups/{_segment(group_id)}/artifacts/{_segment(artifact_id)}"
            try:
                versions = list(self._pages(f"{path}/versions", "versions", {}))
            except PullError as error:
                self.report.problems.append(str(error))
                continue
            for listed in versions:
                number = str(listed.get("version"))
                state = str(listed.get("state") or "ENABLED").upper()
                label = f"{name}@{number}"
                if state == "DISABLED":
                    self.report.disabled += 1
                    self.log(f"{label}: DISABLED, its content withheld: skipped")
                    continue
                if state == "DEPRECATED":
                    self.report.deprecated.append(label)
                source = f"{path}/versions/{_segment(number)}"
                content = f"{source}/content" if three else source  # v2: the version itself
                self._version(source, content, artifact_type, label, state)

    def _apicurio_base(self, url: str) -> tuple[str, str]:
        """The REST API's base URL and version: as the URL names it (``…/apis/registry/v3``),
        else v3 where the registry serves it, else v2."""
        root = url.rstrip("/")
        for version in ("v3", "v2"):
            if root.endswith(f"/apis/registry/{version}"):
                return root, version
        try:
            self.http.json(f"{root}/apis/registry/v3/system/info")
        except PullError as error:
            if error.status != 404:
                raise
            return f"{root}/apis/registry/v2", "v2"
        return f"{root}/apis/registry/v3", "v3"

    def _pages(self, url: str, key: str, params: dict) -> Iterator[dict]:
        """The items of an Apicurio listing, page by page (``offset``, ``limit``) to a short one."""
        offset = 0
        for _ in range(MAX_PAGES):
            page = self.http.json(f"{url}?{urlencode(params | {'offset': offset, 'limit': PAGE})}")
            items = page.get(key) if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise PullError(f"{url}: the answer has no {key!r} list")
            yield from (item for item in items if isinstance(item, dict))
            if len(items) < PAGE:
                return
            offset += len(items)
        raise PullError(f"{url}: more than {MAX_PAGES} pages")

    def ccompat(self, url: str) -> None:
        base = url.rstrip("/")
        if "/apis/ccompat/" not in base + "/":
            base += "/apis/ccompat/v7"
        self.report.api = f"ccompat {base.rsplit('/', 1)[-1]}"
        subjects = self.http.json(f"{base}/subjects")
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise PullError(f"{base}/subjects: the answer is not a list of subject names")
        for subject in subjects:
            self.report.artifacts += 1
            versions = f"{base}/subjects/{_segment(subject)}/versions"
            try:
                numbers = self.http.json(versions)
                if not isinstance(numbers, list) or not all(type(n) is int for n in numbers):
                    raise PullError(f"{versions}: the answer is not a list of version numbers")
                if not numbers:
                    continue
                latest = max(numbers)
                # The latest version's type is the subject's (Apicurio: the artifact's type).
                schemas = {latest: self._schema(f"{versions}/{latest}")}
            except PullError as error:
                self.report.problems.append(str(error))
                continue
            if _schema_type(schemas[latest]) not in READERS:
                self.report.not_api += 1
                self.log(f"{subject}: {_schema_type(schemas[latest])} is no API contract: skipped")
                continue
            for number in sorted(numbers):
                source = f"{versions}/{number}"
                try:
                    schema = schemas.get(number) or self._schema(source)
                except PullError as error:
                    self.report.problems.append(str(error))
                    continue
                data = schema["schema"].encode()
                self._read(source, data, _schema_type(schema), f"{subject}@{number}")

    def _schema(self, url: str) -> dict:
        schema = self.http.json(url)
        if not isinstance(schema, dict) or not isinstance(schema.get("schema"), str):
            raise PullError(f"{url}: the answer has no schema text")
        return schema

    def _version(
        self,
        source: str,
        content_url: str,
        artifact_type: str,
        label: str,
        state: str | None = None,
    ) -> None:
        try:
            data = self.http.get(content_url)
        except PullError as error:
            self.report.problems.append(str(error))
            return
        self._read(source, data, artifact_type, label, state)

    def _read(
        self, source: str, data: bytes, artifact_type: str, label: str, state: str | None = None
    ) -> None:
        """One version's content (and the registry's state of it) stored with its checkpoint,
        unless both are its checkpoint's."""
        self.report.versions += 1
        fingerprint = hashlib.sha256(data + (f"\n{state}".encode() if state else b"")).hexdigest()
        if self._checkpoint(source) == fingerprint:
            self.report.unchanged += 1
            return
        if artifact_type in READERS:
            records = [
                r._replace(state=state) if type(r) is Contract else r
                for r in contract_records(data, artifact_type, source)
            ]
        else:  # an older version of a subject whose latest is a contract
            reason = f"schemaType {artifact_type} is no API contract"
            records = [Quarantined("document", reason, excerpt(data[:200]))]
        batch = self._store(source, self.report.kind, fingerprint, records, catalog=False)
        why = f" ({batch.quarantined[0].reason})" if batch.quarantined else ""
        self.log(f"{label}: stored{why}")

    def backstage(self, url: str) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/catalog"):
            base += "/api/catalog"
        source = f"{base}/entities/by-query"
        self.report.api = "backstage catalog"
        items: list[Any] = []
        cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            query = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
            page = self.http.json(f"{source}?{urlencode(query)}")
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise PullError(f"{source}: the answer has no 'items' list")
            items.extend(page["items"])
            self.log(f"{len(items)} of {page.get('totalItems', '?')} entities")
            info = page.get("pageInfo") if isinstance(page.get("pageInfo"), dict) else {}
            cursor = info.get("nextCursor") if isinstance(info.get("nextCursor"), str) else None
            if not cursor or not page["items"]:
                break
            if cursor in cursors:
                raise PullError(f"{source}: the next page's cursor was given before")
            cursors.add(cursor)
        else:
            raise PullError(f"{source}: more than {MAX_PAGES} pages")
        documents = [item for item in items if not _other_api_group(item)]
        self.report.entities = len(items)
        self.report.other_entities = len(items) - len(documents)
        documents.sort(key=_entity_key)  # the records' document numbers stay put
        records: list = []
        for record in backstage.read(documents, None):
            records.append(record)
            if type(record) is ApiDefinition and record.text is not None:
                records.extend(backstage.contracts_of(record, source))
        self.report.versions += 1
        fingerprint = hashlib.sha256(
            orjson.dumps([[type(r).__name__, *r] for r in records], default=_text_of_bytes)
        ).hexdigest()
        if self._checkpoint(source) == fingerprint:
            self.report.unchanged += 1
            return
        self._store(source, "backstage-api", fingerprint, records, catalog=True)
        self.log(f"{len(documents)} entities stored")

    def _checkpoint(self, source: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(_FINGERPRINT, {"source": source}).scalar()

    def _store(
        self, source: str, collector: str, fingerprint: str, records: list, catalog: bool
    ) -> Batch:
        """The records written with their checkpoint, in one transaction, as ``ingest`` writes
        a file's batch; a catalog's records replace what ``source`` declared before."""
        batch = Batch(catalog=[] if catalog else None)
        for record in records:
            batch.take(record)
        batch.records = len(records)
        with self.engine.begin() as conn:
            run = _Run(utcnow()).add(len(records))
            # ``_save_checkpoint`` keeps ``str(path)``: a URL is given as it is (a Path of it
            # would lose a slash of ``https://``).
            _save_checkpoint(conn, source, collector, _NOT_A_FILE, fingerprint, 0, run)
            inserted, _ = batch.write(conn, source)
        self.report.stored += 1
        self.report.inserted += inserted
        self.report.quarantined += len(batch.quarantined)
        return batch


def _segment(value: str) -> str:
    """A path segment: an id with ``/`` in it (Apicurio allows them) stays one segment."""
    return quote(value, safe="")


def _schema_type(schema: dict) -> str:
    """A ccompat schema's type: named, else Avro (Confluent's default, which it leaves out)."""
    return str(schema.get("schemaType") or "AVRO").upper()


def _other_api_group(item: Any) -> bool:
    """An entity of another API group than ``backstage.io`` (a scaffolder template, …)."""
    api_version = item.get("apiVersion") if isinstance(item, dict) else None
    return isinstance(api_version, str) and not api_version.startswith("backstage.io/")


def _entity_key(item: Any) -> tuple[str, str, str]:
    if not isinstance(item, dict):
        return ("", "", "")
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return (
        str(item.get("kind", "")).lower(),
        str(metadata.get("namespace") or backstage.DEFAULT_NAMESPACE).lower(),
        str(metadata.get("name", "")).lower(),
    )


def _text_of_bytes(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    raise TypeError
