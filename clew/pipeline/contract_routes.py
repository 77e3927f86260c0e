"""Gateway endpoints named by the contracts of the services they reach (DESIGN, "Endpoint
matching": a service's contract operations come before the heuristics).

A gateway logs concrete paths; the writer templates them by heuristics (``/products/{id}``).
Where the catalog says which contract a service provides (a component's ``providesApis``, the
API's definition being a stored version), each gateway endpoint of that service that one of the
contract's templates matches is aliased to it (``/products/{sku}``, the servers' path prefix
kept as the route has it), in ``route_aliases``, which the endpoint figures read. Span-learned
aliases (``clew.pipeline.joins``) came first and stay.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.routes import Templates, server_path
from clew.store import route_aliases
from clew.store.contracts import every_version

_PROVIDED = text(
    "SELECT d.from_ref, a.content_hash FROM declared_dependencies d"
    " JOIN api_definitions a ON a.api_ref = d.to_ref"
    " WHERE d.relation = 'providesApi' AND a.content_hash IS NOT NULL"
)
_GATEWAY_ENDPOINTS = text(
    "SELECT DISTINCT client, server, endpoint FROM edge_rollups"
    " WHERE source = 'gateway' AND connection_type = 'direct'"
)


def learn(conn: Connection) -> int:
    """Alias every gateway endpoint a provided contract's template matches; returns how many
    aliases are new. One query when the catalog declares no provided contract."""
    provided: dict[str, set[str]] = {}
    for from_ref, content_hash in conn.execute(_PROVIDED):
        provided.setdefault(from_ref.rsplit("/", 1)[-1], set()).add(content_hash)
    if not provided:
        return 0
    pairs: dict[str, list[tuple[str, str]]] = {}
    prefixes: dict[str, set[str]] = {}
    for versions in every_version(conn).values():
        latest = versions[-1]
        hashes = {v.content_hash for v in versions}
        for service, wanted in provided.items():
            if hashes & wanted:
                pairs.setdefault(service, []).extend(
                    (op.method, op.path)
                    for op in latest.operations
                    if op.protocol == "http" and op.role == "server" and op.method
                )
                prefixes.setdefault(service, set()).update(
                    p for p in map(server_path, latest.servers) if p
                )
    matchers = {
        service: (Templates(found), sorted(prefixes[service], key=len, reverse=True))
        for service, found in pairs.items()
    }
    aliases: set[route_aliases.Alias] = set()
    for gateway, service, endpoint in conn.execute(_GATEWAY_ENDPOINTS):
        if service not in matchers or " " not in endpoint:
            continue
        templates, prefixes = matchers[service]
        method, route = endpoint.split(" ", 1)
        for prefix in (*[p for p in prefixes if route.startswith(p + "/")], ""):
            template = templates.match(method, route[len(prefix) :])
            if template is not None:
                named = prefix + template
                if named != route:
                    aliases.add((gateway, method, route, named))
                break
    return route_aliases.save(conn, aliases) if aliases else 0
