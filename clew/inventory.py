"""The endpoint inventory: every endpoint known from traffic (traces and gateway logs, through the
rollups) and from contracts, with its status over a window (DESIGN, "Endpoint matching and the
inventory"):

- **documented**: in the current (latest) version of a contract of its service, and called;
- **shadow**: called, in no contract of its service (a service without contracts has only these);
- **zombie**: called, but deprecated in the current version (or the whole version deprecated in
  the registry it came from), past its ``x-sunset``, or removed from the current version though
  an older one has it; every call counts;
- **orphan**: in the current version of a contract, never called in the window;

and, beside its status, **unversioned** when a client cannot pin a version by any of the
configured schemes (``SCHEMES``): the path (``/v1/``, ``/2.0/``, ``/2010-04-01/``), the server
URL's path (``https://api.box.com/2.0``), a version header the operation declares
(``Api-Version``, ``Accept-Version``, ``Stripe-Version``) or that clients were seen sending (in
a gateway's log: ``observed_version_headers``), a versioned media type
(``application/vnd.acme.v2+json``) or a version query parameter (``?api-version=``). A contract's
``info.version`` is the document's version, never a client's pin.

A contract belongs to the service the catalog says provides its API (a Backstage component's
``providesApis``, the API's definition being that contract), else to the service whose observed
endpoints match the most of its operations. An observed endpoint (a route template) matches an
operation through the contract's templates (``clew.routes.Templates``), with the server URLs'
path prefixes (``/api/v1``) taken off where the route carries them. Messaging endpoints (a topic a
service consumes) are documented when an AsyncAPI contract of the service receives on that
channel address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.records import HTTP_ENDPOINT, Operation
from clew.routes import Templates, match_under, server_path, versioned_path
from clew.store import catalog, queries, route_aliases
from clew.store.contracts import StoredVersion, every_version

#: The ways a client may pin a version, all counted by default.
SCHEMES = ("path", "server", "header", "media", "query")
STATUSES = ("documented", "shadow", "zombie", "orphan")

_VERSION_HEADER = re.compile(r"(?:^|-)version$", re.IGNORECASE)
_VERSION_QUERY = frozenset(("api-version", "api_version", "apiversion", "version"))
_VERSION_MEDIA = re.compile(r"\.v[0-9]+[.+]|[;\s]version=", re.IGNORECASE)


@dataclass
class Endpoint:
    """One endpoint of one service, as the inventory sees it over a window."""

    service: str
    protocol: str  # "http" or "messaging"
    method: str  # HTTP method; "receive" for a topic a service consumes
    route: str  # the route template, or the channel address
    status: str  # STATUSES
    unversioned: bool
    why: str  # the status in words: which contract, deprecated since when, ...
    calls: int = 0
    errors: int = 0
    client_errors: int = 0
    callers: list[str] = field(default_factory=list)
    contract: str | None = None  # "Title@version" of the contract that documents it
    operation_id: str | None = None
    deprecated: bool = False
    sunset: str | None = None
    owner: str | None = None  # the catalog's owner of the service
    version_pin: str | None = None  # how a client pins a version: "path", "header Api-Version"


@dataclass
class _Seen:
    calls: int = 0
    errors: int = 0
    client_errors: int = 0
    callers: set[str] = field(default_factory=set)


def inventory(
    conn: Connection,
    window: queries.Window,
    *,
    now: datetime | None = None,
    schemes: Sequence[str] = SCHEMES,
) -> list[Endpoint]:
    """Every endpoint with its status over ``window``, sorted by service, route and method."""
    now = now or datetime.now(UTC)
    unknown = set(schemes) - set(SCHEMES)
    if unknown:
        raise ValueError(f"unknown versioning schemes {sorted(unknown)}; known: {list(SCHEMES)}")
    seen = _observed(conn, window)
    pinned = _seen_version_headers(conn)
    contracts = every_version(conn)
    owners, provided = _catalog(conn)
    assigned = _assign(contracts, seen, provided)
    found: list[Endpoint] = []
    services = sorted({service for service, _ in seen} | set(assigned))
    for service in services:
        versions = assigned.get(service, [])
        observed = {key: s for (svc, key), s in seen.items() if svc == service}
        found.extend(_service(service, versions, observed, now, set(schemes), pinned))
    for endpoint in found:
        endpoint.owner = owners.get(endpoint.service)
    found.sort(key=lambda e: (e.service, e.protocol, e.route, e.method))
    return found


def _observed(
    conn: Connection, window: queries.Window
) -> dict[tuple[str, tuple[str, str, str]], _Seen]:
    """(service, (protocol, method, route)) → what was seen calling it in ``window``."""
    nodes = queries.nodes(conn)
    seen: dict[tuple[str, tuple[str, str, str]], _Seen] = {}
    for endpoint, totals in queries.endpoint_totals(conn, window):
        node = nodes.get(totals.server)
        if node is not None and node.kind != "service":
            continue  # gateways, databases, brokers, external peers: not a service's own
        if totals.connection_type == "messaging_system":
            key = ("messaging", "receive", endpoint)
        else:
            match = HTTP_ENDPOINT.match(endpoint)
            if match is None:
                continue  # RPC and span names: not in an HTTP or messaging contract
            key = ("http", match.group(1), match.group(2))
        entry = seen.setdefault((totals.server, key), _Seen())
        entry.calls += totals.count
        entry.errors += totals.errors
        entry.client_errors += totals.client_errors
        if totals.client != queries.UNATTRIBUTED:  # spanmetrics' calls name no caller
            entry.callers.add(totals.client)
    return seen


def _seen_version_headers(conn: Connection) -> dict[tuple[str, str, str], str]:
    """(service, method, route) → a header clients were seen pinning its version with, the
    route named as the endpoint figures name it (``route_aliases``)."""
    aliases = route_aliases.load(conn)
    rows = conn.execute(
        text("SELECT gateway, service, method, route, header FROM observed_version_headers")
    )
    return {
        (service, method, aliases.get((gateway, method, route), route)): header
        for gateway, service, method, route, header in rows
    }


def _catalog(conn: Connection) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The owner of each service (a component's name), and the content hashes of the API
    definitions each service provides."""
    owners: dict[str, str] = {}
    for entity in catalog.entities(conn):
        if entity["kind"].lower() == "component" and entity["owner"]:
            owners[entity["name"]] = entity["owner"]
    definitions = catalog.definitions(conn)
    provided: dict[str, set[str]] = {}
    for from_ref, to_ref, relation in catalog.dependencies(conn):
        if relation == "providesApi" and from_ref.startswith("component:"):
            content_hash = definitions.get(to_ref)
            if content_hash is not None:
                name = from_ref.split("/", 1)[-1]
                provided.setdefault(name, set()).add(content_hash)
    return owners, provided


def _assign(
    contracts: dict[tuple[str, str], list[StoredVersion]],
    seen: dict[tuple[str, tuple[str, str, str]], _Seen],
    provided: dict[str, set[str]],
) -> dict[str, list[list[StoredVersion]]]:
    """Each contract's versions, by the service it belongs to (catalog first, then traffic)."""
    assigned: dict[str, list[list[StoredVersion]]] = {}
    for versions in contracts.values():
        hashes = {v.content_hash for v in versions}
        owner = next((s for s in sorted(provided) if provided[s] & hashes), None)
        if owner is None:
            owner = _best_match(versions[-1], seen)
        # A contract no service is seen serving: its operations are listed under its title.
        assigned.setdefault(owner or f"[{versions[-1].title}]", []).append(versions)
    return assigned


def _best_match(
    version: StoredVersion, seen: dict[tuple[str, tuple[str, str, str]], _Seen]
) -> str | None:
    """The service whose observed endpoints match the most operations of ``version``."""
    matcher = _Matcher([version])
    counts: dict[str, int] = {}
    for service, key in seen:
        if matcher.match(key) is not None:
            counts[service] = counts.get(service, 0) + 1
    if not counts:
        return None
    return max(sorted(counts), key=lambda s: counts[s])


class _Matcher:
    """Observed endpoints matched to the operations of some contract versions."""

    def __init__(self, versions: Iterable[StoredVersion]) -> None:
        self.http: dict[tuple[str, str], tuple[Operation, StoredVersion]] = {}
        self.channels: dict[str, tuple[Operation, StoredVersion]] = {}
        prefixes: set[str] = set()
        for version in versions:
            for op in version.operations:
                if op.protocol == "http" and op.role == "server" and op.method:
                    self.http.setdefault((op.method, op.path), (op, version))
                elif op.protocol == "messaging" and op.role == "receive":
                    self.channels.setdefault(op.path, (op, version))
            prefixes.update(p for p in map(server_path, version.servers) if p)
        self.templates = Templates(self.http)
        self.prefixes = sorted(prefixes, key=len, reverse=True)

    def match(self, key: tuple[str, str, str]) -> tuple[Operation, StoredVersion] | None:
        protocol, method, route = key
        if protocol == "messaging":
            return self.channels.get(route)
        template = match_under(self.templates, self.prefixes, method, route)
        return None if template is None else self.http.get((method, template))


def _service(
    service: str,
    contracts: list[list[StoredVersion]],
    observed: dict[tuple[str, str, str], _Seen],
    now: datetime,
    schemes: set[str],
    pinned: dict[tuple[str, str, str], str] | None = None,
) -> list[Endpoint]:
    pinned = pinned or {}
    current = _Matcher(versions[-1] for versions in contracts)
    older = _Matcher(v for versions in contracts for v in versions[:-1])
    matched: set[tuple[str, str]] = set()
    found: list[Endpoint] = []
    for key, s in observed.items():
        protocol, method, route = key
        endpoint = Endpoint(service, protocol, method, route, "shadow", False, "", s.calls)
        endpoint.errors, endpoint.client_errors = s.errors, s.client_errors
        endpoint.callers = sorted(s.callers)
        hit = current.match(key)
        if hit is not None:
            op, version = hit
            matched.add((op.content_hash, f"{op.method} {op.path}"))
            _document(endpoint, op, version)
            passed = _passed(op.sunset, now)
            retired = version.state == "DEPRECATED"
            if op.deprecated or passed or retired:
                endpoint.status = "zombie"
                reason = "deprecated" if op.deprecated else ""
                if op.sunset:
                    state = "passed" if passed else "to come"
                    reason = f"{reason}, sunset {op.sunset} ({state})".lstrip(", ")
                if retired:
                    reason = f"{reason}, the version deprecated in its registry".lstrip(", ")
                endpoint.why = f"{reason} in {endpoint.contract}, still called"
                endpoint.deprecated = True
            else:
                endpoint.status = "documented"
                endpoint.why = f"in {endpoint.contract}"
        elif (old := older.match(key)) is not None:
            op, version = old
            _document(endpoint, op, version)
            endpoint.status = "zombie"
            endpoint.why = f"removed after {endpoint.contract}, still called"
        else:
            endpoint.why = (
                "in no contract of the service" if contracts else "the service has no contract"
            )
        seen = pinned.get((service, method, route))
        endpoint.version_pin = _version_pin(endpoint, hit or old, schemes, seen)
        endpoint.unversioned = endpoint.version_pin is None
        found.append(endpoint)
    for versions in contracts:
        version = versions[-1]
        for op in version.operations:
            if (op.content_hash, f"{op.method} {op.path}") in matched:
                continue
            if op.protocol == "http" and op.role == "server" and op.method:
                key = ("http", op.method, op.path)
            elif op.protocol == "messaging" and op.role == "receive":
                key = ("messaging", "receive", op.path)
                if key in observed:
                    continue
            else:
                continue  # callbacks, webhooks and messages sent are the service's own calls
            endpoint = Endpoint(service, key[0], key[1], key[2], "orphan", False, "")
            _document(endpoint, op, version)
            endpoint.why = f"in {endpoint.contract}, never called in the window"
            if service.startswith("["):
                endpoint.why += " (no service is seen serving this contract)"
            endpoint.version_pin = _version_pin(endpoint, (op, version), schemes)
            endpoint.unversioned = endpoint.version_pin is None
            found.append(endpoint)
    return found


def _document(endpoint: Endpoint, op: Operation, version: StoredVersion) -> None:
    endpoint.contract = f"{version.title}@{version.version or '?'}"
    endpoint.operation_id = op.operation_id
    endpoint.deprecated = bool(op.deprecated) or version.state == "DEPRECATED"
    endpoint.sunset = op.sunset


def _passed(sunset: str | None, now: datetime) -> bool:
    """Whether an ``x-sunset`` (an ISO date or date-time, or an HTTP date) is before ``now``."""
    if not sunset:
        return False
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(sunset.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(sunset)
        except (TypeError, ValueError):
            return False
    if moment is None:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment < now


def _version_pin(
    endpoint: Endpoint,
    hit: tuple[Operation, StoredVersion] | None,
    schemes: set[str],
    seen_header: str | None = None,
) -> str | None:
    """How a client pins a version of this endpoint, by the first of ``schemes`` that does
    (``path``, ``server /2.0``, ``header Api-Version``, ``media …v2+json``, ``query
    api-version``); None when none does."""
    if endpoint.protocol != "http":
        return "messages"  # a channel's versioning is its messages' business
    if "path" in schemes and versioned_path(endpoint.route):
        return "path"
    if "header" in schemes and seen_header:
        return f"header {seen_header} (seen)"
    if hit is None:
        return None
    op, version = hit
    if "path" in schemes and versioned_path(op.path):
        return "path"
    if "server" in schemes:
        for url in version.servers:
            if versioned_path(server_path(url)):
                return f"server {server_path(url)}"
    details = orjson.loads(op.details) if op.details else {}
    for parameter in details.get("parameters", []):
        name, place = str(parameter.get("name", "")), parameter.get("in")
        if "header" in schemes and place == "header" and _VERSION_HEADER.search(name):
            return f"header {name}"
        if "query" in schemes and place == "query" and name.lower() in _VERSION_QUERY:
            return f"query {name}"
    if "media" in schemes:
        media = [*(details.get("body") or {}).get("media", [])]
        for types in (details.get("responses") or {}).values():
            media.extend(types)
        for kind in media:
            if _VERSION_MEDIA.search(kind):
                return f"media {kind}"
    return None


def as_json(endpoints: list[Endpoint]) -> list[dict]:
    """The inventory as ``clew endpoints --json`` prints it."""
    rows = []
    for e in endpoints:
        row = dict(vars(e))
        row["error_ratio"] = round(e.errors / e.calls, 6) if e.calls else 0.0
        rows.append(row)
    return rows


@dataclass
class Dependency:
    """A dependency between two nodes, as the catalog declares it and traffic shows it."""

    client: str
    server: str
    status: str  # "declared" (and observed), "undeclared" (observed only), "unused" (declared only)
    calls: int  # in the window
    declared_by: list[str]  # the catalog relations that declare it: "consumesApi api:default/x"


def dependencies(conn: Connection, window: queries.Window) -> list[Dependency]:
    """The catalog's declared dependencies against the edges traffic shows in ``window``.

    Declared: a component's ``dependsOn`` (a component or resource, by name), and its
    ``consumesApis`` through the components that provide those APIs. Observed: the edges from a
    service to a service, database or external peer, and a topic's consumers depending on its
    producers (what an AsyncAPI contract's ``consumesApis`` declares).
    Only services the catalog knows are judged: one it does not list has no declarations to
    compare, which is a finding of its own.
    """
    known = {e["name"] for e in catalog.entities(conn) if e["kind"].lower() == "component"}
    relations = catalog.dependencies(conn)
    providers: dict[str, set[str]] = {}
    for from_ref, to_ref, relation in relations:
        if relation == "providesApi":
            providers.setdefault(to_ref, set()).add(catalog.entity_name(from_ref))
    declared: dict[tuple[str, str], list[str]] = {}
    for from_ref, to_ref, relation in relations:
        if not from_ref.startswith("component:"):
            continue
        client = catalog.entity_name(from_ref)
        if relation == "dependsOn":
            key = (client, catalog.entity_name(to_ref))
            declared.setdefault(key, []).append(f"dependsOn {to_ref}")
        elif relation == "consumesApi":
            for server in providers.get(to_ref, ()):
                declared.setdefault((client, server), []).append(f"consumesApi {to_ref}")
    nodes = queries.nodes(conn)
    observed: dict[tuple[str, str], int] = {}
    edges = queries.edge_totals(conn, window)
    for consumer, producer, count in _through_topics(edges, nodes):
        if consumer in known:
            observed[(consumer, producer)] = observed.get((consumer, producer), 0) + count
    for edge in edges:
        if edge.connection_type == "messaging_system" or edge.client not in known:
            continue
        kind = nodes[edge.server].kind if edge.server in nodes else "service"
        if kind in ("service", "database", "external", "broker"):
            key = (edge.client, edge.server)
            observed[key] = observed.get(key, 0) + edge.count
    found = [
        Dependency(
            client,
            server,
            "declared" if (client, server) in observed else "unused",
            observed.get((client, server), 0),
            sorted(by),
        )
        for (client, server), by in declared.items()
    ]
    found += [
        Dependency(client, server, "undeclared", calls, [])
        for (client, server), calls in observed.items()
        if (client, server) not in declared
    ]
    found.sort(key=lambda d: (d.status != "undeclared", d.status, d.client, d.server))
    return found


def _through_topics(
    edges: list[queries.EdgeTotals], nodes: dict[str, queries.Node]
) -> Iterable[tuple[str, str, int]]:
    """(consumer, producer, messages the consumer received) for each topic's consumers and
    producers in ``edges``."""
    topics = {name for name, node in nodes.items() if node.kind == "topic"}
    producers: dict[str, set[str]] = {}
    for edge in edges:
        if edge.connection_type == "messaging_system" and edge.server in topics:
            producers.setdefault(edge.server, set()).add(edge.client)
    for edge in edges:
        if edge.connection_type == "messaging_system" and edge.client in topics:
            for producer in sorted(producers.get(edge.client, ())):
                yield edge.server, producer, edge.count
