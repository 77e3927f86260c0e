"""Changes between two versions of an OpenAPI contract, each classified breaking or not, and the
consumers observed calling what a breaking change affects.

Operations are the same operation across versions when their method and path agree with the path
parameters' names left out (``/pets/{id}`` and ``/pets/{petId}`` are one). What is compared, and
when a change breaks a client (the checks that matter most in oasdiff's list):

==========================================  ========  ==========================================
change                                      breaking  why
==========================================  ========  ==========================================
operation-removed                           yes       its callers get 404 or 405
operation-added, operation-deprecated       no
request-parameter-added-required            yes       callers do not send it
request-parameter-became-required           yes       callers may not send it
request-parameter-removed                   no        servers ignore what they do not read
request-parameter-type-changed              yes       (unless it only widens: integer → number)
request-parameter-enum-value-removed        yes       callers sending that value are refused
request-body-became-required                yes
request-media-type-removed                  yes       callers send a type no longer accepted
request-property-added-required             yes
request-property-became-required            yes
request-property-type-changed               yes       (unless it only widens)
request-property-enum-value-removed         yes
request-property-removed                    no
response-status-removed                     yes       callers handle a status no longer sent…
response-media-type-removed                 yes       …or parse a type no longer sent
response-property-removed                   yes       callers read it
response-property-became-optional           yes       callers count on it being there
response-property-type-changed              yes       (unless it only narrows: number → integer)
response-property-enum-value-added          no        noted: strict clients may refuse it
response-property-added                     no
security-requirement-added                  yes       callers without those credentials fail
==========================================  ========  ==========================================

Schemas are compared through local ``$ref`` chains (cycles stop the walk), ``allOf`` merged,
``nullable`` and 3.1's ``type`` lists read as types that include ``null``, arrays by their items,
at most ``MAX_DEPTH`` levels deep. ``oneOf`` and ``anyOf`` are not compared inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from clew.records import Operation
from clew.routes import Templates, match_under, server_path
from clew.store import queries
from collectors import asyncapi
from collectors.openapi import HTTP_METHODS, Refs

#: Levels of nested schemas compared.
MAX_DEPTH = 32
_PARAMETER = re.compile(r"\{[^{}/]+\}")
#: Types a value of the key type is also a valid value of.
_WIDER = {"integer": {"number"}}


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a contract."""

    id: str  # e.g. "request-parameter-became-required"
    breaking: bool
    operation: str  # "GET /pets/{id}", as the old version writes it (the new one when added)
    where: str  # what in the operation: "parameter limit (query)", "response 200 …"
    text: str  # a sentence for people
    consumers: list[dict] = field(default_factory=list)  # filled by ``with_consumers``


def changes(old: dict, new: dict) -> list[Change]:
    """Every change from the ``old`` document to the ``new`` one, operation by operation
    (AsyncAPI documents by ``messaging_changes``)."""
    if "asyncapi" in old and "asyncapi" in new:
        return messaging_changes(old, new)
    old_refs, new_refs = Refs(old), Refs(new)
    old_ops, new_ops = _operations(old, old_refs), _operations(new, new_refs)
    found: list[Change] = []
    for key, (label, operation) in old_ops.items():
        if key not in new_ops:
            found.append(Change("operation-removed", True, label, "", f"{label} was removed"))
            continue
        compare = _Compare(label, old, new, old_refs, new_refs)
        compare.operation(operation, new_ops[key][1])
        found.extend(compare.found)
    for key, (label, _) in new_ops.items():
        if key not in old_ops:
            found.append(Change("operation-added", False, label, "", f"{label} was added"))
    return found


def messaging_changes(old: dict, new: dict) -> list[Change]:
    """The changes between two AsyncAPI documents: operations by role and channel address,
    their messages by id, each message's content type and payload. What the application sends
    is read by its consumers (a removed or loosened property breaks them, as a response's
    does); what it receives is sent by its producers (a new required property breaks them, as
    a request's does)."""
    before, after = _messaging_operations(old), _messaging_operations(new)
    found: list[Change] = []
    for key, op in before.items():
        label = f"{op.role.upper()} {op.path}"
        if key not in after:
            found.append(Change("operation-removed", True, label, "", f"{label} was removed"))
            continue
        compare = _Compare(label, old, new, Refs(old), Refs(new))
        if after[key].deprecated and not op.deprecated:
            compare.add("operation-deprecated", False, "", f"{label} is now deprecated")
        old_messages = _messages(op)
        new_messages = _messages(after[key])
        direction = "response" if op.role == "send" else "request"
        for message_id, message in old_messages.items():
            where = f"message {message_id}"
            if message_id not in new_messages:
                compare.add(
                    "message-removed", True, where, f"{label}: message {message_id} was removed"
                )
                continue
            if message.get("content_type") != new_messages[message_id].get("content_type"):
                compare.add(
                    "message-content-type-changed",
                    True,
                    where,
                    f"{label}: message {message_id} now comes as"
                    f" {new_messages[message_id].get('content_type')}",
                )
            _Schemas(compare, direction, "message-property").compare(
                _payload(old, compare.old_refs, op, message_id),
                _payload(new, compare.new_refs, after[key], message_id),
                where,
            )
        for message_id in new_messages:
            if message_id not in old_messages:
                compare.add(
                    "message-added",
                    False,
                    f"message {message_id}",
                    f"{label}: message {message_id} is new",
                )
        found.extend(compare.found)
    for key, op in after.items():
        if key not in before:
            label = f"{op.role.upper()} {op.path}"
            found.append(Change("operation-added", False, label, "", f"{label} was added"))
    return found


def _messaging_operations(document: dict) -> dict[tuple[str, str], Operation]:
    return {(op.role, op.path): op for op in asyncapi.read(document, "") if type(op) is Operation}


def _messages(op: Operation) -> dict[str, dict]:
    details = orjson.loads(op.details) if op.details else {}
    return {
        str(m.get("id") or m.get("name")): m
        for m in details.get("messages", [])
        if isinstance(m, dict)
    }


def _payload(document: dict, refs: Refs, op: Operation, message_id: str) -> Any:
    """A message's payload schema as written (3.x's schema inside a multi-format object)."""
    details = orjson.loads(op.details) if op.details else {}
    channels = document.get("channels") if isinstance(document.get("channels"), dict) else {}
    channel = refs.follow(channels.get(details.get("channel")), op.path)
    candidates: list[Any] = []
    if isinstance(channel, dict):
        messages = channel.get("messages")
        if isinstance(messages, dict) and message_id in messages:
            candidates.append(messages[message_id])
        for verb in ("publish", "subscribe"):  # 2.x: the message on the channel's operation
            operation = refs.follow(channel.get(verb), op.path)
            if isinstance(operation, dict):
                message = refs.follow(operation.get("message"), op.path)
                one_of = message.get("oneOf") if isinstance(message, dict) else None
                candidates.extend(
                    one_of if isinstance(one_of, list) else [operation.get("message")]
                )
    components = document.get("components") if isinstance(document.get("components"), dict) else {}
    known = components.get("messages") if isinstance(components.get("messages"), dict) else {}
    if message_id in known:
        candidates.append(known[message_id])
    for raw in candidates:
        ref = raw.get("$ref") if isinstance(raw, dict) else None
        message = refs.follow(raw, op.path)
        if not isinstance(message, dict):
            continue
        named = message.get("messageId") or message.get("name")
        if len(candidates) == 1 or named == message_id or (ref and ref.endswith("/" + message_id)):
            payload = message.get("payload")
            if isinstance(payload, dict) and "schema" in payload and "schemaFormat" in payload:
                return payload["schema"]
            return payload
    return None


def _operations(document: dict, refs: Refs) -> dict[tuple[str, str], tuple[str, dict]]:
    """(method, path without parameter names) → (label, the operation with its path item's
    parameters first)."""
    found: dict[tuple[str, str], tuple[str, dict]] = {}
    paths = document.get("paths") if isinstance(document.get("paths"), dict) else {}
    for path, item in paths.items():
        item = refs.follow(item, str(path))
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                own = operation.get("parameters")
                merged = dict(operation)
                merged["parameters"] = [*shared, *(own if isinstance(own, list) else [])]
                key = (method.upper(), _PARAMETER.sub("{}", str(path)))
                found[key] = (f"{method.upper()} {path}", merged)
    return found


class _Compare:
    """The changes of one operation from its old form to its new one."""

    def __init__(self, label: str, old: dict, new: dict, old_refs: Refs, new_refs: Refs):
        self.label, self.old, self.new = label, old, new
        self.old_refs, self.new_refs = old_refs, new_refs
        self.two = (str(old.get("swagger")) == "2.0", str(new.get("swagger")) == "2.0")
        self.found: list[Change] = []

    def add(self, id_: str, breaking: bool, where: str, text: str) -> None:
        self.found.append(Change(id_, breaking, self.label, where, text))

    def operation(self, old: dict, new: dict) -> None:
        if new.get("deprecated") is True and old.get("deprecated") is not True:
            self.add("operation-deprecated", False, "", f"{self.label} is now deprecated")
        self.parameters(old, new)
        self.body(old, new)
        self.responses(old, new)
        self.security(old, new)

    # -- parameters

    def _parameters(self, operation: dict, refs: Refs) -> dict[tuple[str, str], dict]:
        found: dict[tuple[str, str], dict] = {}
        path_index = 0
        for raw in operation["parameters"]:
            parameter = refs.follow(raw, self.label)
            if not isinstance(parameter, dict) or parameter.get("in") in ("body", None):
                continue
            place = str(parameter["in"])
            if place == "path":  # by position: renaming a path parameter changes nothing
                name = f"#{path_index}"
                path_index += 1
            else:
                name = str(parameter.get("name"))
                if place == "header":
                    name = name.lower()
            found[(name, place)] = parameter
        return found

    def parameters(self, old: dict, new: dict) -> None:
        before = self._parameters(old, self.old_refs)
        after = self._parameters(new, self.new_refs)
        for key, parameter in after.items():
            name = str(parameter.get("name"))
            where = f"parameter {name} ({key[1]})"
            if key not in before:
                if parameter.get("required") is True and key[1] != "path":
                    self.add(
                        "request-parameter-added-required",
                        True,
                        where,
                        f"{self.label}: a new required {key[1]} parameter {name}",
                    )
                continue
            was = before[key]
            if parameter.get("required") is True and was.get("required") is not True:
                self.add(
                    "request-parameter-became-required",
                    True,
                    where,
                    f"{self.label}: {key[1]} parameter {name} became required",
                )
            old_schema = was.get("schema", was) if not self.two[0] else was
            new_schema = parameter.get("schema", parameter) if not self.two[1] else parameter
            _Schemas(self, "request", "request-parameter").compare(old_schema, new_schema, where)
        for key, parameter in before.items():
            if key not in after:
                name = str(parameter.get("name"))
                self.add(
                    "request-parameter-removed",
                    False,
                    f"parameter {name} ({key[1]})",
                    f"{self.label}: {key[1]} parameter {name} was removed",
                )

    # -- request body

    def _body(self, operation: dict, refs: Refs, two: bool, document: dict) -> tuple[bool, dict]:
        """(required, media type → schema) of an operation's request body."""
        if two:
            for raw in operation["parameters"]:
                parameter = refs.follow(raw, self.label)
                if isinstance(parameter, dict) and parameter.get("in") == "body":
                    media = operation.get("consumes", document.get("consumes")) or ["*/*"]
                    schema = parameter.get("schema", {})
                    return parameter.get("required") is True, {str(m): schema for m in media}
            return False, {}
        body = refs.follow(operation.get("requestBody"), self.label)
        if not isinstance(body, dict):
            return False, {}
        content = body.get("content") if isinstance(body.get("content"), dict) else {}
        schemas = {
            str(media): (value.get("schema", {}) if isinstance(value, dict) else {})
            for media, value in content.items()
        }
        return body.get("required") is True, schemas

    def body(self, old: dict, new: dict) -> None:
        was_required, before = self._body(old, self.old_refs, self.two[0], self.old)
        required, after = self._body(new, self.new_refs, self.two[1], self.new)
        if required and not was_required:
            self.add(
                "request-body-became-required",
                True,
                "request body",
                f"{self.label}: the request body became required",
            )
        for media in before:
            if after and media not in after:
                self.add(
                    "request-media-type-removed",
                    True,
                    f"request body {media}",
                    f"{self.label}: the request body no longer takes {media}",
                )
        for media, schema in after.items():
            if media in before:
                _Schemas(self, "request", "request-property").compare(
                    before[media], schema, f"request body {media}"
                )

    # -- responses

    def _responses(
        self, operation: dict, refs: Refs, two: bool, document: dict
    ) -> dict[str, dict[str, Any]]:
        """status → media type → schema."""
        found: dict[str, dict[str, Any]] = {}
        raw = operation.get("responses") if isinstance(operation.get("responses"), dict) else {}
        for status, response in raw.items():
            response = refs.follow(response, self.label)
            if not isinstance(response, dict):
                continue
            if two:
                media = operation.get("produces", document.get("produces")) or ["*/*"]
                found[str(status)] = (
                    {str(m): response["schema"] for m in media} if "schema" in response else {}
                )
            else:
                content = (
                    response.get("content") if isinstance(response.get("content"), dict) else {}
                )
                found[str(status)] = {
                    str(m): (v.get("schema", {}) if isinstance(v, dict) else {})
                    for m, v in content.items()
                }
        return found

    def responses(self, old: dict, new: dict) -> None:
        before = self._responses(old, self.old_refs, self.two[0], self.old)
        after = self._responses(new, self.new_refs, self.two[1], self.new)
        for status, media_types in before.items():
            if status not in after:
                if "default" not in after:
                    self.add(
                        "response-status-removed",
                        True,
                        f"response {status}",
                        f"{self.label}: response {status} is no longer sent",
                    )
                continue
            for media, schema in media_types.items():
                if media not in after[status]:
                    self.add(
                        "response-media-type-removed",
                        True,
                        f"response {status} {media}",
                        f"{self.label}: response {status} no longer comes as {media}",
                    )
                    continue
                _Schemas(self, "response", "response-property").compare(
                    schema, after[status][media], f"response {status} {media}"
                )

    # -- security

    def security(self, old: dict, new: dict) -> None:
        def alternatives(operation: dict, document: dict) -> set[frozenset[str]]:
            security = operation.get("security", document.get("security"))
            if not isinstance(security, list):
                return set()
            return {frozenset(map(str, req)) for req in security if isinstance(req, dict)}

        before, after = alternatives(old, self.old), alternatives(new, self.new)
        open_before = not before or frozenset() in before
        for alternative in after - before:
            if alternative and (open_before or not any(b <= alternative for b in before)):
                schemes = ", ".join(sorted(alternative))
                self.add(
                    "security-requirement-added",
                    True,
                    "security",
                    f"{self.label}: now requires {schemes}",
                )
        added = any(change.id == "security-requirement-added" for change in self.found)
        if before and not open_before and after and not (after & before) and not added:
            self.add(
                "security-requirement-added",
                True,
                "security",
                f"{self.label}: its security requirements changed",
            )


class _Schemas:
    """Schema changes in one direction: what a client sends, or what it reads."""

    def __init__(self, compare: _Compare, direction: str, prefix: str):
        self.c, self.direction, self.prefix = compare, direction, prefix
        self.seen: set[tuple[int, int]] = set()

    def resolve(self, schema: Any, refs: Refs) -> dict:
        schema = refs.follow(schema, self.c.label)
        if not isinstance(schema, dict):
            return {}
        parts = schema.get("allOf")
        if not isinstance(parts, list):
            return schema
        merged: dict = {k: v for k, v in schema.items() if k != "allOf"}
        properties = dict(merged.get("properties") or {})
        required = sorted(_required(merged))
        for part in parts:
            part = self.resolve(part, refs)
            properties.update(part.get("properties") or {})
            required.extend(sorted(_required(part)))
            for key in ("type", "enum", "items", "nullable"):
                if key in part and key not in merged:
                    merged[key] = part[key]
        merged["properties"], merged["required"] = properties, required
        return merged

    def compare(self, old: Any, new: Any, where: str, depth: int = 0) -> None:
        old_schema = self.resolve(old, self.c.old_refs)
        new_schema = self.resolve(new, self.c.new_refs)
        pair = (id(old_schema), id(new_schema))
        if depth > MAX_DEPTH or pair in self.seen:
            return
        self.seen.add(pair)
        self.types(old_schema, new_schema, where)
        self.enums(old_schema, new_schema, where)
        if isinstance(old_schema.get("items"), dict) and isinstance(new_schema.get("items"), dict):
            self.compare(old_schema["items"], new_schema["items"], where + "[]", depth + 1)
        self.properties(old_schema, new_schema, where, depth)

    def types(self, old: dict, new: dict, where: str) -> None:
        before, after = _types(old), _types(new)
        if before is None or after is None or before == after:
            return
        widened = all(t in after or _WIDER.get(t, set()) & after for t in before)
        narrowed = all(t in before or _WIDER.get(t, set()) & before for t in after)
        harmless = widened if self.direction == "request" else narrowed
        self.c.add(
            f"{self.prefix}-type-changed",
            not harmless,
            where,
            f"{self.c.label}: {where} changed type from {_text(before)} to {_text(after)}",
        )

    def enums(self, old: dict, new: dict, where: str) -> None:
        before, after = old.get("enum"), new.get("enum")
        if not isinstance(before, list) or not isinstance(after, list):
            return
        if self.direction == "request":
            removed = [v for v in before if v not in after]
            if removed:
                self.c.add(
                    f"{self.prefix}-enum-value-removed",
                    True,
                    where,
                    f"{self.c.label}: {where} no longer accepts {', '.join(map(repr, removed))}",
                )
        else:
            added = [v for v in after if v not in before]
            if added:
                self.c.add(
                    f"{self.prefix}-enum-value-added",
                    False,
                    where,
                    f"{self.c.label}: {where} may now be {', '.join(map(repr, added))}",
                )

    def properties(self, old: dict, new: dict, where: str, depth: int) -> None:
        before = old.get("properties") if isinstance(old.get("properties"), dict) else {}
        after = new.get("properties") if isinstance(new.get("properties"), dict) else {}
        was_required, required = _required(old), _required(new)
        request = self.direction == "request"
        for name in after:
            place = f"{where}: property {name}"
            if name not in before:
                if request and name in required:
                    self.c.add(
                        f"{self.prefix}-added-required",
                        True,
                        place,
                        f"{self.c.label}: {place} is new and required",
                    )
                elif not request:
                    self.c.add(
                        f"{self.prefix}-added", False, place, f"{self.c.label}: {place} is new"
                    )
                continue
            if request and name in required and name not in was_required:
                self.c.add(
                    f"{self.prefix}-became-required",
                    True,
                    place,
                    f"{self.c.label}: {place} became required",
                )
            if not request and name in was_required and name not in required:
                self.c.add(
                    f"{self.prefix}-became-optional",
                    True,
                    place,
                    f"{self.c.label}: {place} may now be missing",
                )
            self.compare(before[name], after[name], place, depth + 1)
        for name in before:
            if name not in after:
                place = f"{where}: property {name}"
                self.c.add(
                    f"{self.prefix}-removed",
                    not request,
                    place,
                    f"{self.c.label}: {place} was removed",
                )


def _required(schema: dict) -> set[str]:
    """The property names a schema requires (a 2.0 parameter's ``required`` is its own flag)."""
    required = schema.get("required")
    return set(map(str, required)) if isinstance(required, list) else set()


def _types(schema: dict) -> frozenset[str] | None:
    """The types a schema allows (None: any); ``nullable`` and ``"null"`` in a list add null."""
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = set(map(str, kind)) if isinstance(kind, list) else {str(kind)}
    if schema.get("nullable") is True:
        kinds.add("null")
    return frozenset(kinds)


def _text(kinds: frozenset[str]) -> str:
    return " or ".join(sorted(kinds))


# -- the consumers a change would break


@dataclass
class Served:
    """What traffic says about the operations of one contract version."""

    service: str | None  # the service whose observed endpoints match the most operations
    gateways: list[str]  # the gateways that route those endpoints to it
    consumers: dict[str, list[dict]]  # operation label → its callers (name, calls)


def observed(
    conn: Any, window: queries.Window, operations: list[Operation], servers: tuple[str, ...] = ()
) -> Served:
    """The callers of each HTTP operation in ``window``: services and gateway consumers whose
    calls to the implementing service (and through its gateways) match the operation's template.

    The implementing service is the one whose observed endpoints match the most operations.
    Paths are matched with the server URLs' path prefixes (``/api/v1``) taken off where present.
    """
    messaging = [op for op in operations if op.protocol == "messaging"]
    if messaging:
        return _messaging_observed(conn, window, messaging)
    http = [op for op in operations if op.protocol == "http" and op.role == "server"]
    templates = Templates((op.method, op.path) for op in http)
    labels = {(op.method, op.path): f"{op.method} {op.path}" for op in http}
    paths = {server_path(url) for url in servers}
    prefixes = sorted((p for p in paths if p), key=len, reverse=True)

    def operation_of(endpoint: str) -> str | None:
        if " " not in endpoint:
            return None
        method, route = endpoint.split(" ", 1)
        template = match_under(templates, prefixes, method, route)
        return None if template is None else labels.get((method.upper(), template))

    cells = [
        (endpoint, totals, operation_of(endpoint))
        for endpoint, totals in queries.endpoint_totals(conn, window)
    ]
    matched: dict[str, set[str]] = {}
    for _, totals, label in cells:
        if label is not None:
            matched.setdefault(totals.server, set()).add(label)
    nodes = queries.nodes(conn)
    services = {
        s: n for s, n in matched.items() if nodes.get(s) is None or nodes[s].kind != "gateway"
    }
    if not services:
        return Served(None, [], {})
    service = max(sorted(services), key=lambda s: len(services[s]))
    gateways = sorted(
        {t.client for _, t, label in cells if label and t.server == service}
        & {n for n, node in nodes.items() if node.kind == "gateway"}
    )
    consumers: dict[str, dict[str, int]] = {}
    for _, totals, label in cells:
        if label is None or totals.server not in (service, *gateways):
            continue
        if totals.server == service and totals.client in gateways:
            continue  # the gateway's own hop: its consumers are counted at the gateway
        if totals.client == queries.UNATTRIBUTED:
            continue  # calls only spanmetrics counted: no consumer named
        callers = consumers.setdefault(label, {})
        callers[totals.client] = callers.get(totals.client, 0) + totals.count
    return Served(
        service,
        gateways,
        {
            label: [
                {"name": n, "calls": c}
                for n, c in sorted(callers.items(), key=lambda i: (-i[1], i[0]))
            ]
            for label, callers in consumers.items()
        },
    )


def _messaging_observed(conn: Any, window: queries.Window, operations: list[Operation]) -> Served:
    """For an AsyncAPI contract: what the application sends on a channel is read by the services
    consuming that topic; what it receives is sent by the services producing to it. A topic node
    is named by its address, inside its broker (``kafka/shipment-events``)."""
    edges = [
        e for e in queries.edge_totals(conn, window) if e.connection_type == "messaging_system"
    ]

    nodes = queries.nodes(conn)

    def is_topic(node: str, address: str) -> bool:
        kind = nodes[node].kind if node in nodes else None
        return kind in ("topic", "broker") and (node == address or node.endswith("/" + address))

    consumers: dict[str, list[dict]] = {}
    for op in operations:
        label = f"{op.role.upper()} {op.path}"
        callers: dict[str, int] = {}
        for e in edges:
            if op.role == "send" and is_topic(e.client, op.path):
                callers[e.server] = callers.get(e.server, 0) + e.count
            elif op.role == "receive" and is_topic(e.server, op.path):
                callers[e.client] = callers.get(e.client, 0) + e.count
        if callers:
            consumers[label] = [
                {"name": name, "calls": calls}
                for name, calls in sorted(callers.items(), key=lambda item: (-item[1], item[0]))
            ]
    return Served(None, [], consumers)


def with_consumers(found: list[Change], served: Served) -> list[Change]:
    """The changes, each breaking one with the consumers of its operation."""
    return [
        Change(**(asdict(c) | {"consumers": served.consumers.get(c.operation, [])}))
        if c.breaking
        else c
        for c in found
    ]


def summary(found: list[Change]) -> Iterator[str]:
    """Lines for people: breaking changes first, each with the consumers it breaks."""
    for change in sorted(found, key=lambda c: (not c.breaking, c.operation, c.id, c.where)):
        mark = "BREAKING" if change.breaking else "        "
        yield f"{mark}  {change.text}  [{change.id}]"
        if change.breaking and change.consumers:
            names = ", ".join(f"{c['name']} ({c['calls']:,} calls)" for c in change.consumers)
            yield f"          breaks: {names}"
