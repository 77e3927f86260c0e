"""Exemplar traces from where raw traces live: a Jaeger or Tempo query API, asked for one trace
by id when the store no longer holds it.

Raw spans leave the store by retention (or, beyond one machine, never enter it) while the
failing-path rollups that name an exemplar trace outlive them. When a query API is configured
(``TRACE_QUERY_URL`` and ``TRACE_QUERY_KIND``, ``CLEW_TRACE_QUERY_*`` in the environment), the
Paths page, ``/api/traces/<id>`` and ``clew trace`` fetch such a trace from it; unconfigured,
nothing is ever fetched. The shapes read, as the projects serve them:

- Jaeger's query service (``jaegertracing/jaeger`` ``cmd/query/app/http_handler.go``, the same
  in Jaeger v2's query extension): ``GET {base}/api/traces/{id}`` answers the UI's JSON,
  ``{"data": [{"traceID", "spans", "processes", …}], "total", "limit", "offset", "errors"}``,
  read by ``collectors.jaeger_json``; an unknown id is HTTP 404 with ``{"data": null,
  "errors": [{"code": 404, "msg": "trace not found"}]}``.
- Tempo's query frontend (``grafana/tempo`` ``docs/sources/tempo/api_docs``): ``GET
  {base}/api/traces/{id}`` answers OTLP, as protobuf when asked with ``Accept:
  application/protobuf``, else as JSON that is only "mostly" OTLP/JSON: the resource spans are
  under ``batches``, ids are base64 (protobuf's JSON mapping; grafana/tempo#5437), enums are
  names, and Tempo 1.x still says ``instrumentationLibrarySpans``. ``/api/v2/traces/{id}`` wraps
  the trace in ``{"trace": {"resourceSpans": …}, "status"}``. Protobuf is asked for, as
  Grafana's own Tempo data source does (``pkg/tsdb/tempo/trace.go``): Tempo's ``Trace`` message
  is ``TracesData`` on the wire (field 1, the resource spans; Tempo 1.x's
  ``InstrumentationLibrarySpans`` is ``ScopeSpans`` on the wire too), so the ids arrive as bytes
  and no version's JSON quirks matter; ``collectors.otlp_proto`` reads it. An answer in JSON all
  the same (a proxy, a Tempo-compatible server) is read by its content type, every one of those
  JSON shapes normalised to OTLP/JSON for ``collectors.otlp_json``. A multi-tenant Tempo takes
  the tenant in ``X-Scope-OrgID``.

Every request has a timeout and a size cap, sends a bearer token only when one is configured
(from an environment variable that is named, never printed), and follows no redirect. Failures
(an id that is no trace id, a trace the API does not have, an unreachable API, an error status,
a body too large or unreadable) are ``FetchError`` with a sentence naming the API and the
reason, logged without credentials. Spans of an answer that cannot be read are kept out of the
trace and listed with it (``unread``), never dropped silently.

Nothing fetched is written to the store: the fetched trace is a view, as a page of Jaeger's UI
is. Storing it would put spans back that retention removed on purpose, and feed them to the
rollups a second time (their failures were counted when they first arrived). Fetched traces and
failures are kept a short while in a bounded cache of the process, per app, so that a page's
callbacks and a user's clicks do not ask the API again and again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Engine

from clew import traces
from clew.records import Quarantined, Record, Span, excerpt
from collectors import CollectorError, jaeger_json, otlp_json, otlp_proto

if TYPE_CHECKING:
    import urllib.error
    import urllib.request

log = logging.getLogger(__name__)

KINDS = ("jaeger", "tempo")
DEFAULT_TIMEOUT_S = 10.0
#: The largest answer read. Tempo refuses traces over 5 MB of protobuf by default; Jaeger's
#: JSON of the same trace is several times larger.
DEFAULT_MAX_BYTES = 32 * 2**20
#: The settings read (``CLEW_``-prefixed in the environment) and their defaults; ``clew.app``'s
#: ``DEFAULTS`` holds them too.
DEFAULTS: dict[str, Any] = {
    "TRACE_QUERY_URL": None,  # unset, no query API is asked
    "TRACE_QUERY_KIND": None,  # jaeger | tempo
    "TRACE_QUERY_TOKEN_ENV": None,  # the environment variable holding its bearer token
    "TRACE_QUERY_TIMEOUT": DEFAULT_TIMEOUT_S,  # seconds
    "TRACE_QUERY_TENANT": None,  # Tempo's X-Scope-OrgID
    "TRACE_QUERY_MAX_BYTES": DEFAULT_MAX_BYTES,
}
#: Traces (and failures) kept per app, and for how long.
CACHE_ENTRIES = 32
CACHE_SECONDS = 120.0
FAILURE_CACHE_SECONDS = 15.0
#: Where ``init_app`` keeps an app's client.
EXTENSION = "clew.trace_query"

TEMPO_TENANT_HEADER = "X-Scope-OrgID"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_TENANT = re.compile(r"[\x21-\x7e]{1,150}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Unread spans listed at most (the count is always whole).
UNREAD_LISTED = 20


class TraceQueryConfigError(ValueError):
    """A trace query setting that cannot be used; its text names the setting."""


class FetchError(Exception):
    """A trace that could not be fetched: the API, the trace and why (never a credential)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BadTraceId(FetchError):
    """An id that is not a trace id; nothing was asked of the API."""


class TraceNotFound(FetchError):
    """The API answered that it has no such trace (never had it, or it expired there too)."""


class QueryApi(NamedTuple):
    """Which query API a trace came from."""

    kind: str  # "jaeger" or "tempo"
    url: str  # its base URL, as configured (without a trailing slash)

    @property
    def label(self) -> str:
        """``Jaeger at http://…``: how pages and messages name it."""
        return f"{self.kind.capitalize()} at {self.url}"


@dataclass(frozen=True)
class Fetched:
    """A trace fetched from a query API: its view (``clew.traces.trace_document``'s shape), and
    what of the answer could not be read (``position: reason``)."""

    trace: dict
    unread: tuple[str, ...] = ()
    unread_count: int = 0


@dataclass(frozen=True)
class Exemplar:
    """A trace as the console shows it: from the store, fetched from a query API, or absent
    with the reason (the API's failure, or that none is configured)."""

    trace_id: str
    trace: dict | None = None
    fetched_from: QueryApi | None = None  # set when the trace came from a query API
    unread: tuple[str, ...] = ()
    unread_count: int = 0
    problem: FetchError | None = None  # why asking the API configured gave no trace

    def document(self) -> dict | None:
        """The trace as JSON for ``/api/traces`` and ``clew trace --json``: a stored trace's
        view as it always was; a fetched one's with ``fetched_from`` and ``unread`` beside."""
        if self.trace is None or self.fetched_from is None:
            return self.trace
        return {
            **self.trace,
            "fetched_from": {"kind": self.fetched_from.kind, "url": self.fetched_from.url},
            "unread": list(self.unread),
            "unread_count": self.unread_count,
        }

    def explanation(self, what: str = "Trace") -> str:
        """Why there is no trace to show, and what would help, in one or two sentences (the
        first naming the trace as ``what``, such as "The exemplar trace")."""
        missing = f"{what} {excerpt(self.trace_id, 80)} is not in the store"
        if self.problem is None:  # no query API was asked
            return (
                f"{missing} (raw spans leave it by retention, and some never reach it)."
                " To fetch such a trace from where raw traces are kept, set"
                " CLEW_TRACE_QUERY_URL (Jaeger's query service, such as"
                " http://jaeger-query:16686, or Tempo's, such as http://tempo:3200) and"
                " CLEW_TRACE_QUERY_KIND (jaeger or tempo)."
            )
        if isinstance(self.problem, TraceNotFound):
            return f"{missing}, and {self.problem}."
        return f"{missing}, and it could not be fetched: {self.problem}."


# --- Configuration -----------------------------------------------------------------------------


def from_config(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> TraceQuery | None:
    """The query API ``config`` configures (``TRACE_QUERY_*``), checked; None when
    ``TRACE_QUERY_URL`` is unset. ``TraceQueryConfigError`` names a setting that cannot be used.
    The token is read from ``environ`` (the process's environment by default)."""
    environ = os.environ if environ is None else environ
    url = config.get("TRACE_QUERY_URL")
    if not url:
        for key in ("TRACE_QUERY_KIND", "TRACE_QUERY_TOKEN_ENV", "TRACE_QUERY_TENANT"):
            if config.get(key):
                raise TraceQueryConfigError(
                    f"CLEW_{key} is set but CLEW_TRACE_QUERY_URL is not: set it to the query"
                    " API's base URL, or unset both"
                )
        return None
    kind = config.get("TRACE_QUERY_KIND")
    if not isinstance(kind, str) or kind.strip().lower() not in KINDS:
        shown = "unset" if kind in (None, "") else f"not {kind!r}"
        raise TraceQueryConfigError(
            f"CLEW_TRACE_QUERY_KIND must be {' or '.join(KINDS)} when CLEW_TRACE_QUERY_URL is set"
            f" ({shown})"
        )
    kind = kind.strip().lower()
    return TraceQuery(
        QueryApi(kind, _base_url(url)),
        token=_token(config.get("TRACE_QUERY_TOKEN_ENV"), environ),
        token_env=config.get("TRACE_QUERY_TOKEN_ENV") or None,
        timeout=_positive(config, "TRACE_QUERY_TIMEOUT", float, 600),
        max_bytes=_positive(config, "TRACE_QUERY_MAX_BYTES", int, 2**31),
        tenant=_tenant(config.get("TRACE_QUERY_TENANT"), kind),
    )


def from_environment(environ: Mapping[str, str] | None = None) -> TraceQuery | None:
    """The query API the ``CLEW_TRACE_QUERY_*`` environment variables configure (the command
    line's way to the settings the web app reads); None when none is."""
    environ = os.environ if environ is None else environ
    config = {key: environ.get(f"CLEW_{key}") for key in DEFAULTS}
    return from_config({k: v for k, v in config.items() if v not in (None, "")}, environ)


def init_app(app: Any) -> None:
    """Check ``app``'s trace query settings (at start-up, not at the first fetch) and keep its
    client, or None, in ``app.extensions``."""
    app.extensions[EXTENSION] = from_config(app.config)


def configured(app: Any) -> TraceQuery | None:
    """The client ``init_app`` made for ``app``; None when no query API is configured."""
    return app.extensions.get(EXTENSION)


def _base_url(value: Any) -> str:
    if not isinstance(value, str):
        raise TraceQueryConfigError(f"CLEW_TRACE_QUERY_URL must be a URL, not {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TraceQueryConfigError(
            "CLEW_TRACE_QUERY_URL must be an http:// or https:// URL with a host"
        )
    if parts.username is not None or parts.password is not None:
        raise TraceQueryConfigError(
            "CLEW_TRACE_QUERY_URL must not hold credentials: put a bearer token in an"
            " environment variable and name it in CLEW_TRACE_QUERY_TOKEN_ENV"
        )
    if parts.query or parts.fragment:
        raise TraceQueryConfigError(
            "CLEW_TRACE_QUERY_URL must be the API's base URL, without a query or fragment"
        )
    base = parts.geturl().rstrip("/")
    if re.search(r"/api(/v2)?/traces$", base):
        raise TraceQueryConfigError(
            "CLEW_TRACE_QUERY_URL is the API's base URL: leave out /api/traces (Clew adds it)"
        )
    return base


def _token(name: Any, environ: Mapping[str, str]) -> str | None:
    if not name:
        return None
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise TraceQueryConfigError(
            f"CLEW_TRACE_QUERY_TOKEN_ENV must name an environment variable, not {name!r}"
        )
    token = environ.get(name, "").strip()
    if not token:
        raise TraceQueryConfigError(
            f"CLEW_TRACE_QUERY_TOKEN_ENV names {name}, which is not set (or empty)"
        )
    if any(c in token for c in "\r\n\0"):
        raise TraceQueryConfigError(f"the token in {name} holds a line break: not sent")
    return token


def _positive(config: Mapping[str, Any], key: str, cast: type, most: float) -> Any:
    value = config.get(key)
    if value in (None, ""):
        return cast(DEFAULTS[key])
    try:
        number = cast(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 < number <= most:
        raise TraceQueryConfigError(
            f"CLEW_{key} must be a number above 0 and at most {most:,g}, not {value!r}"
        )
    return number


def _tenant(value: Any, kind: str) -> str | None:
    if value in (None, ""):
        return None
    if kind != "tempo":
        raise TraceQueryConfigError(
            f"CLEW_TRACE_QUERY_TENANT is Tempo's {TEMPO_TENANT_HEADER}; {kind} takes none"
        )
    tenant = str(value)
    if not _TENANT.fullmatch(tenant):
        raise TraceQueryConfigError(
            "CLEW_TRACE_QUERY_TENANT must be 1 to 150 printable ASCII characters, no spaces"
        )
    return tenant


def checked_trace_id(trace_id: str) -> str:
    """``trace_id`` in lower case when it is one (32 hex digits); ``BadTraceId`` otherwise."""
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
        raise BadTraceId(f"{excerpt(repr(trace_id), 80)} is not a trace id (32 hex digits)")
    return trace_id.lower()


# --- The client --------------------------------------------------------------------------------


class TraceQuery:
    """One configured query API: fetches a trace by id, with a timeout, a size cap, the token
    and tenant configured (the token kept out of ``repr`` and every message), and a small cache
    of answers."""

    def __init__(
        self,
        api: QueryApi,
        *,
        token: str | None = None,
        token_env: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        tenant: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.tenant = tenant
        self._token = token
        self._token_env = token_env
        self._cache = _Cache(clock)

    def __repr__(self) -> str:
        token = f"a token from {self._token_env}" if self._token else "no token"
        return f"TraceQuery({self.api.label}, {token}, timeout={self.timeout:g})"

    def trace_url(self, trace_id: str) -> str:
        """Where ``trace_id`` is asked for (``BadTraceId`` before any URL is built)."""
        return self._url(checked_trace_id(trace_id))

    def _url(self, trace_id: str) -> str:
        return f"{self.api.url}/api/traces/{trace_id}"

    def fetch(self, trace_id: str) -> Fetched:
        """The trace ``trace_id`` from the API, or from the cache when it was asked lately;
        ``FetchError`` says why there is none. One request per trace at a time."""
        trace_id = checked_trace_id(trace_id)
        found = self._cache.get(trace_id)
        if found is None:
            with self._cache.fetching(trace_id):
                found = self._cache.get(trace_id)
                if found is None:
                    found = self._fetch(trace_id)
                    self._cache.put(trace_id, found)
        if isinstance(found, FetchError):
            raise found.with_traceback(None)
        return found

    def _fetch(self, trace_id: str) -> Fetched | FetchError:
        """Asks the API for ``trace_id``, which ``fetch`` has checked."""
        try:
            body, media_type = self._get(self._url(trace_id), trace_id)
            records = self._records(body, media_type)
            fetched = trace_of(records, trace_id)
        except FetchError as error:
            log.warning("trace %s not fetched from %s: %s", trace_id, self.api.label, error)
            return error
        if fetched is None:
            error = FetchError(f"{self.api.label} answered with no span of trace {trace_id}")
            log.warning("%s", error)
            return error
        if fetched.unread_count:
            log.warning(
                "trace %s from %s: %d spans not read (first: %s)",
                trace_id,
                self.api.label,
                fetched.unread_count,
                fetched.unread[0],
            )
        return fetched

    def _headers(self) -> dict[str, str]:
        accept = "application/protobuf" if self.api.kind == "tempo" else "application/json"
        headers = {"Accept": accept, "User-Agent": "clew"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self.tenant:
            headers[TEMPO_TENANT_HEADER] = self.tenant
        return headers

    def _get(self, url: str, trace_id: str) -> tuple[bytes, str]:
        """The body and media type of a 200 answer to ``GET url``; ``FetchError`` otherwise."""
        import urllib.error
        import urllib.request
        from http.client import HTTPException

        api = self.api.label
        request = urllib.request.Request(url, headers=self._headers())
        opener = urllib.request.build_opener(_no_redirects()())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > self.max_bytes:
                    raise FetchError(
                        f"{api} answered {int(length):,} bytes for trace {trace_id},"
                        f" more than the {self.max_bytes:,} read at most"
                        " (CLEW_TRACE_QUERY_MAX_BYTES)"
                    )
                body = response.read(self.max_bytes + 1)
                media_type = _media_type(response.headers.get("Content-Type"))
        except urllib.error.HTTPError as error:
            raise self._status_error(error, trace_id) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise self._timed_out() from None
            reason = str(error.reason) or type(error.reason).__name__
            raise FetchError(f"{api} could not be reached: {reason}") from None
        except TimeoutError:  # connected, then no status line or no body in time
            raise self._timed_out() from None
        except (OSError, HTTPException) as error:  # a connection reset, a cut answer, …
            reason = str(error) or type(error).__name__
            raise FetchError(f"{api} broke off its answer: {reason}") from None
        if len(body) > self.max_bytes:
            raise FetchError(
                f"{api} answered more than the {self.max_bytes:,} bytes read at most for trace"
                f" {trace_id} (CLEW_TRACE_QUERY_MAX_BYTES)"
            )
        return body, media_type

    def _status_error(self, error: urllib.error.HTTPError, trace_id: str) -> FetchError:
        api, code = self.api.label, error.code
        detail = self._detail(error)
        said = f"HTTP {code} {error.reason}" + (f": {detail}" if detail else "")
        if code == 404 and detail == _NO_ROUTE:
            return FetchError(
                f"{api} has no trace query route ({said}): check that CLEW_TRACE_QUERY_URL is"
                " the query API's base URL",
                code,
            )
        if code == 404:
            return TraceNotFound(
                f"{api} has no trace {trace_id} either ({said}): it may have expired there too",
                code,
            )
        if 300 <= code < 400:
            where = error.headers.get("Location") or "elsewhere"
            return FetchError(
                f"{api} redirects to {excerpt(where, 200)} ({said}): redirects are not"
                " followed; set CLEW_TRACE_QUERY_URL to where it leads",
                code,
            )
        if code in (401, 403):
            hint = (
                f"check the token in {self._token_env}"
                if self._token
                else "set CLEW_TRACE_QUERY_TOKEN_ENV to the variable holding a token"
            )
            return FetchError(f"{api} refused the request ({said}): {hint}", code)
        return FetchError(f"{api} answered {said}", code)

    def _detail(self, error: urllib.error.HTTPError) -> str:
        """What an error answer says, briefly: Jaeger's ``errors[0].msg``, a JSON ``message``
        or ``error``, else its first line of text; never the token, were it quoted back."""
        from http.client import HTTPException

        try:
            raw = error.read(4096)
        except (OSError, HTTPException):
            raw = b""
        finally:
            error.close()
        text = raw.decode("utf-8", errors="replace").strip()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            errors = body.get("errors")
            first = errors[0] if isinstance(errors, list) and errors else None
            message = (
                (first.get("msg") if isinstance(first, dict) else None)
                or body.get("message")
                or body.get("error")
            )
            text = str(message) if message else ""
        text = text.splitlines()[0] if text else ""
        if self._token and self._token in text:
            return "(the answer quotes the token sent: not shown)"
        return excerpt(text, 200)

    def _timed_out(self) -> FetchError:
        return FetchError(
            f"{self.api.label} gave no answer within {self.timeout:g} s (CLEW_TRACE_QUERY_TIMEOUT)"
        )

    def _records(self, body: bytes, media_type: str) -> list[Record]:
        try:
            if self.api.kind == "jaeger":
                return jaeger_records(body)
            return tempo_records(body, media_type)
        except CollectorError as error:
            raise FetchError(f"{self.api.label} answered something unreadable: {error}") from None


#: What Go's ``http.NotFound`` says, which Jaeger's and Tempo's routers answer for a path they
#: do not serve (a trace they do not have is answered otherwise).
_NO_ROUTE = "404 page not found"


@cache
def _no_redirects() -> type:
    """A redirect handler that answers redirects as the errors they are, so that a token goes
    nowhere else (made at the first fetch: urllib.request is slow to import, and an app with no
    query API configured fetches nothing)."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return NoRedirects


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


class _Cache:
    """Answers per trace id, a short while and a bounded number, least recently used first out;
    and a lock per trace being fetched, so that concurrent askers wait for one answer."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Fetched | FetchError]] = OrderedDict()
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}

    def get(self, trace_id: str) -> Fetched | FetchError | None:
        with self._lock:
            entry = self._entries.get(trace_id)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[trace_id]
                return None
            self._entries.move_to_end(trace_id)
            return entry[1]

    def put(self, trace_id: str, found: Fetched | FetchError) -> None:
        keep = FAILURE_CACHE_SECONDS if isinstance(found, FetchError) else CACHE_SECONDS
        with self._lock:
            self._entries[trace_id] = (self._clock() + keep, found)
            self._entries.move_to_end(trace_id)
            while len(self._entries) > CACHE_ENTRIES:
                self._entries.popitem(last=False)

    @contextmanager
    def fetching(self, trace_id: str) -> Iterator[None]:
        with self._lock:
            lock = self._fetching.setdefault(trace_id, threading.Lock())
        with lock:
            yield
        with self._lock:
            if self._fetching.get(trace_id) is lock:
                del self._fetching[trace_id]


# --- Reading answers ---------------------------------------------------------------------------


def jaeger_records(body: bytes) -> list[Record]:
    """The records of a Jaeger query API answer (``{"data": [trace…], "errors"}``); an error
    the answer reports is a ``Quarantined`` record; ``CollectorError`` when it is no JSON."""
    return list(jaeger_json.records_of_document(_json(body)))


def tempo_records(body: bytes, media_type: str) -> list[Record]:
    """The records of a Tempo trace-by-id answer: OTLP protobuf, or JSON in any of Tempo's
    shapes (``tempo_request``); ``CollectorError`` when it is neither."""
    looks_json = body.lstrip()[:1] == b"{"
    if media_type in _PROTOBUF_TYPES or (not media_type and not looks_json):
        return otlp_proto.records_of_body(body)
    if media_type.endswith("json") or looks_json:
        request = tempo_request(_json(body))
        return otlp_json.records_of_body(orjson.dumps(request))
    raise CollectorError(f"a {excerpt(media_type, 80)} answer, neither OTLP protobuf nor JSON")


_PROTOBUF_TYPES = ("application/protobuf", "application/x-protobuf")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise CollectorError(
            f"not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None


_SCOPES = ("scopeSpans", "instrumentationLibrarySpans")


def tempo_request(document: Any) -> dict:
    """Tempo's JSON trace as an OTLP/JSON ``ExportTraceServiceRequest``: the v2 ``trace``
    wrapper taken off, ``batches`` as ``resourceSpans``, ``instrumentationLibrarySpans`` as
    ``scopeSpans``, base64 ids as hex. Anything else is left as it is, for the OTLP/JSON reader
    to take or quarantine with its reason."""
    if not isinstance(document, dict):
        raise CollectorError("not a Tempo trace: the JSON is not an object")
    if isinstance(document.get("trace"), dict):
        document = document["trace"]
    batches = document.get("resourceSpans", document.get("batches"))
    if batches is None:
        return {"resourceSpans": []}  # proto3 JSON leaves out empty fields: no spans
    if not isinstance(batches, list):
        raise CollectorError("not a Tempo trace: its batches (resourceSpans) are not a list")
    resource_spans = []
    for batch in batches:
        if isinstance(batch, dict):
            scopes = next((batch[key] for key in _SCOPES if key in batch), None)
            batch = {k: v for k, v in batch.items() if k not in _SCOPES}
            if scopes is not None:
                batch["scopeSpans"] = [_hex_scope(scope) for scope in _list(scopes)]
        resource_spans.append(batch)
    return {"resourceSpans": resource_spans}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _hex_scope(scope: Any) -> Any:
    if not isinstance(scope, dict) or not isinstance(scope.get("spans"), list):
        return scope
    spans = []
    for span in scope["spans"]:
        if isinstance(span, dict):
            span = _hex_ids(span)
            if isinstance(span.get("links"), list):
                span["links"] = [_hex_ids(link) for link in span["links"]]
        spans.append(span)
    return {**scope, "spans": spans}


_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def _hex_ids(holder: Any) -> Any:
    if not isinstance(holder, dict):
        return holder
    out = dict(holder)
    for key, size in _ID_BYTES.items():
        value = out.get(key)
        if isinstance(value, str) and value:
            out[key] = hex_id(value, size)
    return out


def hex_id(value: str, size: int) -> str:
    """An id of ``size`` bytes as hex: as it is when it is hex already, decoded when it is the
    base64 of ``size`` bytes (Tempo's JSON), else as it is (for the reader to refuse)."""
    if len(value) == 2 * size and re.fullmatch(r"[0-9a-fA-F]+", value):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) == size else value


def trace_of(records: list[Record], trace_id: str) -> Fetched | None:
    """The view of the spans of ``trace_id`` among ``records`` with what could not be read
    (quarantined input, spans of other traces, a second span with an id already seen); None
    when no span of it is there."""
    spans: dict[str, Span] = {}
    unread: list[str] = []
    others = 0
    for record in records:
        if isinstance(record, Quarantined):
            unread.append(f"{record.position}: {record.reason}")
        elif isinstance(record, Span):
            if record.trace_id != trace_id:
                others += 1
            elif record.span_id not in spans:
                spans[record.span_id] = record
            elif spans[record.span_id] != record:
                unread.append(f"span {record.span_id}: a second span with this id; the first kept")
    if others:
        unread.append(f"{others} spans of other traces: left out")
    if not spans:
        return None
    trace = traces.trace_document(list(spans.values()))
    assert trace is not None  # spans is not empty
    return Fetched(trace, tuple(unread[:UNREAD_LISTED]), len(unread))


# --- The exemplar ------------------------------------------------------------------------------


def exemplar(engine: Engine, trace_id: str, trace_query: TraceQuery | None) -> Exemplar:
    """The trace ``trace_id`` from the store; else, when a query API is configured, from it.

    The store's connection is given back before any fetch, so a slow API holds none.
    """
    with engine.connect() as conn:
        stored = traces.trace_view(conn, trace_id)
    if stored is not None:
        return Exemplar(trace_id, stored)
    if trace_query is None:
        return Exemplar(trace_id)
    try:
        fetched = trace_query.fetch(trace_id)
    except FetchError as error:
        return Exemplar(trace_id, problem=error)
    return Exemplar(
        trace_id,
        fetched.trace,
        fetched_from=trace_query.api,
        unread=fetched.unread,
        unread_count=fetched.unread_count,
    )
