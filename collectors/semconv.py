"""Semantic conventions: attribute names of every generation normalised, and the ``Span`` built.

Every trace collector ends here, whatever its format: OTLP, Jaeger and Zipkin attributes are
renamed to the current OpenTelemetry names, and the fields the graph needs (HTTP, RPC, messaging,
database, peer) are lifted out of them into the ``Span``; what remains is kept as JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from clew.records import UNKNOWN_SERVICE, Resource, Span, SpanKind

#: Older semantic-convention names and the current names they map to, whatever the span kind.
LEGACY_NAMES = {
    "http.method": "http.request.method",
    "http.status_code": "http.response.status_code",
    "http.url": "url.full",
    "http.scheme": "url.scheme",
    "http.user_agent": "user_agent.original",
    "http.request_content_length": "http.request.body.size",
    "http.response_content_length": "http.response.body.size",
    "net.sock.peer.addr": "network.peer.address",
    "net.sock.peer.port": "network.peer.port",
    "net.peer.ip": "network.peer.address",
    "net.protocol.name": "network.protocol.name",
    "net.protocol.version": "network.protocol.version",
    "net.transport": "network.transport",
    "db.system": "db.system.name",
    "db.name": "db.namespace",
    "db.operation": "db.operation.name",
    "db.statement": "db.query.text",
    "peer.service": "service.peer.name",
    "messaging.destination": "messaging.destination.name",
    "messaging.operation": "messaging.operation.type",
}
#: ``net.peer.*`` is the remote side: the server for a client span, the client for a server span.
_LEGACY_CLIENT_SIDE = {"net.peer.name": "server.address", "net.peer.port": "server.port"}
_LEGACY_SERVER_SIDE = {
    "net.peer.name": "client.address",
    "net.peer.port": "client.port",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
}
_LEGACY_KEYS = frozenset(LEGACY_NAMES) | frozenset(_LEGACY_SERVER_SIDE) | {"http.target"}
_CALLER_KINDS = (SpanKind.CLIENT, SpanKind.PRODUCER)


def _rename_table(side: dict[str, str]) -> dict[str, tuple[int, str, str]]:
    """``old -> (rank, old, new)``: renames are applied in this order, so the first wins a tie."""
    pairs = [*LEGACY_NAMES.items(), *side.items()]
    return {old: (rank, old, new) for rank, (old, new) in enumerate(pairs)}


_RENAMES_CLIENT_SIDE = _rename_table(_LEGACY_CLIENT_SIDE)
_RENAMES_SERVER_SIDE = _rename_table(_LEGACY_SERVER_SIDE)


def normalise(attributes: dict[str, Any], kind: int) -> dict[str, Any]:
    """Rename older semantic-convention attributes to the current names (current names win).

    A renamed attribute goes to the end, in table order (``LEGACY_NAMES``, then the kind's side):
    only the legacy names present are visited, not the whole table.
    """
    if attributes.keys().isdisjoint(_LEGACY_KEYS):
        return attributes
    table = _RENAMES_SERVER_SIDE if kind == SpanKind.SERVER else _RENAMES_CLIENT_SIDE
    for _, old, new in sorted([table[key] for key in attributes if key in table]):
        value = attributes.pop(old)
        attributes.setdefault(new, value)
    target = attributes.pop("http.target", None)
    if isinstance(target, str) and "url.path" not in attributes:
        attributes["url.path"] = target.split("?", 1)[0]
    return attributes


def json_text(value: Any) -> str:
    """JSON text of decoded input; integers beyond 64 bits fall back to the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def status_code(value: Any) -> int | None:
    code = _int(value)
    return code if code is not None and 100 <= code <= 599 else None


def resource_from(attributes: dict[str, Any]) -> Resource:
    """The service that resource (or process) attributes describe; ``unknown_service`` without a
    ``service.name``."""
    name = attributes.get("service.name")
    return Resource(
        service=name if isinstance(name, str) and name else UNKNOWN_SERVICE,
        namespace=text_or_none(attributes.get("service.namespace")),
        environment=text_or_none(
            attributes.get("deployment.environment.name", attributes.get("deployment.environment"))
        ),
        version=text_or_none(attributes.get("service.version")),
    )


#: ``Span(...)`` runs a Python-level ``__new__`` (22 arguments, one frame per span); building
#: the tuple directly gives the same ``Span`` at a fraction of the cost.
_new_tuple = tuple.__new__


def build_span(
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    service: str,
    name: str,
    kind: int,
    start: int,
    duration: int,
    code: int,
    message: str | None,
    attrs: dict[str, Any],
) -> Span:
    """The ``Span`` of validated fields and decoded attributes (``attrs`` is consumed)."""
    head = (trace_id, span_id, parent_span_id, service, name, kind, start, duration, code, message)
    if not attrs:
        return _new_tuple(Span, head + _NO_ATTRIBUTES)
    if not attrs.keys().isdisjoint(_LEGACY_KEYS):
        attrs = normalise(attrs, kind)
    pop = attrs.pop
    method = pop("http.request.method", None)
    route = pop("http.route", None)
    http_status = pop("http.response.status_code", None)
    url_path = pop("url.path", None)
    server_address = pop("server.address", None)
    peer_service = pop("service.peer.name", None)
    db_system = pop("db.system.name", None)
    messaging_system = pop("messaging.system", None)
    destination = pop("messaging.destination.name", None)
    rpc_service = pop("rpc.service", None)
    rpc_method = pop("rpc.method", None)
    if http_status is not None and not (type(http_status) is int and 100 <= http_status <= 599):
        http_status = status_code(http_status)
    if server_address is None and kind in _CALLER_KINDS and "network.peer.address" in attrs:
        # For a caller the network peer is the server: the last name for it before the system.
        address, port = attrs["network.peer.address"], attrs.get("network.peer.port")
        server_address = f"{address}:{port}" if port is not None else address
    if attrs:
        try:
            attributes = orjson.dumps(attrs).decode()
        except TypeError:  # an integer beyond 64 bits
            attributes = json_text(attrs)
    else:
        attributes = None
    # Most of these are already str (or None): the type is tested inline, ``str`` only when not.
    return _new_tuple(
        Span,
        (
            *head,
            method if method is None or type(method) is str else str(method),
            route if route is None or type(route) is str else str(route),
            http_status,
            url_path if url_path is None or type(url_path) is str else str(url_path),
            (
                server_address
                if server_address is None or type(server_address) is str
                else str(server_address)
            ),
            peer_service
            if peer_service is None or type(peer_service) is str
            else str(peer_service),
            db_system if db_system is None or type(db_system) is str else str(db_system),
            (
                messaging_system
                if messaging_system is None or type(messaging_system) is str
                else str(messaging_system)
            ),
            destination if destination is None or type(destination) is str else str(destination),
            rpc_service if rpc_service is None or type(rpc_service) is str else str(rpc_service),
            rpc_method if rpc_method is None or type(rpc_method) is str else str(rpc_method),
            attributes,
        ),
    )


#: The columns lifted from attributes, and the attributes' text, of a span without attributes.
_NO_ATTRIBUTES = (None,) * 12
#: The attributes ``build_span`` lifts into columns, in ``Span``'s column order (for readers that
#: build spans themselves, such as the compiled OTLP/protobuf reader).
LIFTED_ATTRIBUTES = (
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "url.path",
    "server.address",
    "service.peer.name",
    "db.system.name",
    "messaging.system",
    "messaging.destination.name",
    "rpc.service",
    "rpc.method",
)
