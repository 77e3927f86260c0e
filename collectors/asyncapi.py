"""AsyncAPI contracts, 2.x and 3.x, in JSON or YAML: a ``Contract`` and its ``Operation`` records
(protocol ``messaging``, no method, the path being the channel's address).

The two versions say who does what differently, and each operation's ``role`` is what *this*
application does on the channel, ``send`` or ``receive``:

- 3.x: ``operations`` at the top, each with its ``action`` (``send`` or ``receive``, the
  application's own) and a ``$ref`` to its channel; the path is the channel's ``address``, or the
  channel's key when the address is null or absent (the spec's "unknown", set at runtime). The
  ``operation_id`` is the operation's key: 3.0 made the key the id (the ``operationId`` field
  was removed), so an ``operationId`` written anyway is not read. Operations under
  ``components`` are ones the application "may or may not implement" and are not read.
- 2.x: the operations sit on the channels, keyed by channel name (the path), and the verbs are
  the other side's. The spec defines ``subscribe`` as "the messages produced by the application
  and sent to the channel" (role ``send``) and ``publish`` as "the messages consumed by the
  application from the channel" (role ``receive``): others publish what the application
  receives, others subscribe to what it sends. The ``operation_id`` is ``operationId``.

Per operation: ``deprecated`` (true on the operation or on its channel; neither version lists
the field, tools write it anyway) and ``x-sunset``; in ``details`` (JSON) the channel's key,
the summary, tags, messages (id, name, content type, schema format), the channel's parameters
(name, enum, default, location), the protocols its bindings name (channel's, operation's,
messages'), 3.x's ``reply`` (channel, runtime address, messages), the operation's security and,
apart, that of the servers its channel is on (3.x: "where Server Security also applies, it MUST
also be satisfied"), each entry an alternative, as the schemes it needs. A 3.x operation's
messages are the ones it lists, else all of its channel's. Traits are applied as each version
says: 2.x patches the object with its traits (JSON Merge Patch, the trait winning), 3.x lets no
trait override a property the object has.

Servers: 3.x ``protocol://host/pathname``, 2.x ``url`` (given ``protocol://`` when it has no
scheme), variables given their defaults.

References: local ``$ref`` are followed as the OpenAPI collector follows them (``Refs``: chains,
cycles and dangling pointers noted on the contract; another document or a URL never fetched). An
operation whose channel cannot be followed is not read (the problem says why). Schemas and
payloads are kept as written.

A file that is no AsyncAPI 2.x or 3.x document, or that cannot be parsed, is quarantined whole,
with the reason and, for bad JSON or YAML, the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import orjson

from clew.records import Contract, Operation, Record
from collectors import Source
from collectors.openapi import Refs, collect_document

#: An ``asyncapi`` key at the start of a line: YAML's top level, anywhere in the head.
_YAML_HEAD = re.compile(rb"""(?m)^["']?asyncapi["']?[ \t]*:""")
#: An ``asyncapi`` key in a JSON (or flow YAML) document's first 4 KiB. It sorts before every
#: other top-level key, so a document written with its keys sorted has it first too.
_JSON_HEAD = re.compile(rb"""["']?asyncapi["']?\s*:""")
_VERSION = re.compile(r"[23]\.")
#: 2.x verbs, as the application's role (see the module's docstring).
ROLE_OF_VERB = {"subscribe": "send", "publish": "receive"}


class AsyncApiCollector:
    """AsyncAPI 2.x and 3.x documents."""

    name = "asyncapi"
    description = "AsyncAPI 2.x and 3.x contracts, JSON or YAML"

    def detect(self, head: bytes) -> bool:
        """A YAML head with a top-level ``asyncapi`` key, or a JSON one naming it near its
        start (a catalog file holding an AsyncAPI document in a block string is not one)."""
        head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] == b"{":
            return _JSON_HEAD.search(head[:4096]) is not None
        return _YAML_HEAD.search(head) is not None

    def collect(self, source: Source) -> Iterator[Record]:
        return collect_document(source, not_asyncapi, read)


def not_asyncapi(document: Any) -> str | None:
    """Why a parsed document is not an AsyncAPI 2.x or 3.x document, or None."""
    if not isinstance(document, dict):
        return "not an AsyncAPI document: its top is not a mapping"
    version = document.get("asyncapi")
    if version is None:
        return "not an AsyncAPI document: no asyncapi version at its top"
    if not _VERSION.match(str(version)):
        return f"AsyncAPI version {version!s} is not read (2.x and 3.x are)"
    return None


def read(document: dict, content_hash: str) -> Iterator[Contract | Operation]:
    """The contract and operations of a parsed AsyncAPI document."""
    reader = _Reader(document)
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    operations = [
        Operation(
            content_hash=content_hash,
            protocol="messaging",
            role=role,
            method=None,
            path=path,
            operation_id=operation_id,
            deprecated=deprecated,
            sunset=sunset,
            details=orjson.dumps(details, option=orjson.OPT_NON_STR_KEYS).decode(),
        )
        for role, path, operation_id, deprecated, sunset, details in (
            reader.operations_3() if reader.three else reader.operations_2()
        )
    ]
    yield Contract(
        kind="asyncapi",
        spec_version=str(document["asyncapi"]),
        title=str(info.get("title") or ""),
        version=None if info.get("version") is None else str(info.get("version")),
        content_hash=content_hash,
        servers=tuple(url for _, url, _ in reader.servers),
        document=orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
        problems=tuple(sorted(reader.refs.problems)),
    )
    yield from operations


#: What an operation becomes: role, path, operation id, deprecated, sunset, details.
_Read = tuple[str, str, str | None, bool, str | None, dict]


class _Reader:
    """One document's operations and servers, its references followed through ``refs``."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.refs = Refs(document)
        self.three = str(document["asyncapi"]).startswith("3.")
        default = document.get("defaultContentType")
        self.default_content_type = None if default is None else str(default)
        #: Each server: its name, its URL and itself.
        self.servers = list(self._servers())

    def operations_3(self) -> Iterator[_Read]:
        for key, raw in _mapping(self.document.get("operations")).items():
            where = f"operation {key}"
            operation = self.traited(self.refs.follow(raw, where), where)
            if operation is None:
                continue
            action = operation.get("action")
            if action not in ("send", "receive"):
                problem = f"{where}: action {action!r} is neither send nor receive (not read)"
                self.refs.problems.add(problem)
                continue
            channel_key, channel = self.channel_3(operation.get("channel"), where)
            if channel is None:
                continue
            listed = operation.get("messages")
            details = self.details(
                channel_key,
                channel,
                operation,
                self.messages_3(listed, channel, where),
                where,
            )
            details["reply"] = self.reply(operation.get("reply"), where)
            yield (
                str(action),
                _address(channel, channel_key),
                str(key),
                operation.get("deprecated") is True or channel.get("deprecated") is True,
                _sunset(operation, channel),
                details,
            )

    def operations_2(self) -> Iterator[_Read]:
        for name, raw in _mapping(self.document.get("channels")).items():
            where = f"channel {name}"
            channel = self.refs.follow(raw, where)
            if not isinstance(channel, dict):
                continue
            for verb in [verb for verb in channel if verb in ROLE_OF_VERB]:  # as written
                role, at = ROLE_OF_VERB[verb], f"{where} {verb}"
                operation = self.traited(self.refs.follow(channel.get(verb), at), at)
                if operation is None:
                    continue
                messages = self.messages_2(operation.get("message"), at)
                details = self.details(str(name), channel, operation, messages, at)
                yield (
                    role,
                    str(name),
                    _text(operation.get("operationId")),
                    operation.get("deprecated") is True or channel.get("deprecated") is True,
                    _sunset(operation, channel),
                    details,
                )

    def channel_3(self, raw: Any, where: str) -> tuple[str | None, dict | None]:
        """A 3.x channel a ``$ref`` names, with its key; (None, None), a problem noted, when it
        cannot be followed."""
        if raw is None:
            self.refs.problems.add(f"{where}: no channel (not read)")
            return None, None
        channel = self.refs.follow(raw, f"{where} channel")
        if not isinstance(channel, dict):
            return None, None
        key = _ref_key(raw)
        if key is None and not isinstance(channel.get("address"), str):
            self.refs.problems.add(f"{where}: its channel has neither an address nor a key")
            return None, None
        return key, channel

    def messages_3(self, listed: Any, channel: dict, where: str) -> list[tuple[str | None, dict]]:
        """The messages a 3.x operation (or reply) lists, else all of its channel's, by key."""
        if isinstance(listed, list):
            found = [(_ref_key(raw), self.refs.follow(raw, f"{where} message")) for raw in listed]
        else:
            found = [
                (str(key), self.refs.follow(raw, f"{where} message {key}"))
                for key, raw in _mapping(channel.get("messages")).items()
            ]
        return [
            (key, self.traited(m, f"{where} message {key}"))
            for key, m in found
            if isinstance(m, dict)
        ]

    def messages_2(self, raw: Any, where: str) -> list[tuple[str | None, dict]]:
        """A 2.x operation's ``message``, or each of its ``oneOf``, by ``messageId`` (else the
        key its ``$ref`` names)."""
        message = self.refs.follow(raw, f"{where} message")
        if isinstance(message, dict) and isinstance(message.get("oneOf"), list):
            found = [
                (_ref_key(one), self.refs.follow(one, f"{where} message"))
                for one in message["oneOf"]
            ]
        else:
            found = [(_ref_key(raw), message)]
        traited = [(key, self.traited(m, f"{where} message {key}")) for key, m in found]
        return [(_text(m.get("messageId")) or key, m) for key, m in traited if m is not None]

    def message(self, key: str | None, message: dict) -> dict:
        """What the checks compare of a message: its id, name, content type and schema format."""
        payload = message.get("payload")
        if self.three:  # a Multi Format Schema Object names its format beside the schema
            schema_format = payload.get("schemaFormat") if isinstance(payload, dict) else None
        else:
            schema_format = message.get("schemaFormat")
        return {
            "id": key,
            "name": _text(message.get("name")),
            "content_type": _text(message.get("contentType", self.default_content_type)),
            "schema_format": _text(schema_format),
        }

    def details(
        self,
        channel_key: str | None,
        channel: dict,
        operation: dict,
        messages: list[tuple[str | None, dict]],
        where: str,
    ) -> dict:
        """What the breaking-change checks compare of one operation."""
        bindings = [channel.get("bindings"), operation.get("bindings")]
        bindings += [message.get("bindings") for _, message in messages]
        return {
            "channel": channel_key,
            "summary": _text(operation.get("summary")),
            "tags": self.tags(operation.get("tags"), where),
            "messages": [self.message(key, message) for key, message in messages],
            "parameters": self.parameters(channel, where),
            "bindings": self.protocols(bindings, where),
            "reply": None,
            "security": self.security(operation.get("security"), where),
            "server_security": self.server_security(channel),
        }

    def protocols(self, bindings: list, where: str) -> list[str]:
        """The protocols bindings objects name (their keys, extensions aside)."""
        return sorted(
            {
                str(protocol)
                for raw in bindings
                for protocol in _mapping(self.refs.follow(raw, f"{where} bindings"))
                if not str(protocol).startswith("x-")
            }
        )

    def reply(self, raw: Any, where: str) -> dict | None:
        """A 3.x operation's reply (request-reply): its channel's key and path (address, else
        key), the runtime expression giving the address where the request names it, and its
        messages (those listed, else all of its channel's)."""
        reply = self.refs.follow(raw, f"{where} reply")
        if not isinstance(reply, dict):
            return None
        where = f"{where} reply"
        key, channel = None, None
        if reply.get("channel") is not None:
            key, channel = self.channel_3(reply["channel"], where)
        address = self.refs.follow(reply.get("address"), f"{where} address")
        messages = self.messages_3(reply.get("messages"), channel or {}, where)
        return {
            "channel": key,
            "path": None if channel is None else _address(channel, key),
            "address": _text(address.get("location")) if isinstance(address, dict) else None,
            "messages": [self.message(name, message) for name, message in messages],
        }

    def parameters(self, channel: dict, where: str) -> list[dict]:
        found = []
        for name, raw in _mapping(channel.get("parameters")).items():
            at = f"{where} parameter {name}"
            parameter = self.refs.follow(raw, at)
            if not isinstance(parameter, dict):
                continue
            # 2.x describes a parameter by a schema, 3.x by the parameter's own enum and default
            schema = parameter if self.three else self.refs.follow(parameter.get("schema"), at)
            schema = schema if isinstance(schema, dict) else {}
            enum = schema.get("enum")
            found.append(
                {
                    "name": str(name),
                    "enum": [str(v) for v in enum] if isinstance(enum, list) else None,
                    "default": _text(schema.get("default")),
                    "location": _text(parameter.get("location")),
                }
            )
        return sorted(found, key=lambda p: p["name"])

    def tags(self, raw: Any, where: str) -> list[str]:
        tags = []
        for item in raw if isinstance(raw, list) else []:
            tag = self.refs.follow(item, f"{where} tag")
            if isinstance(tag, dict) and tag.get("name") is not None:
                tags.append(str(tag["name"]))
        return tags

    def server_security(self, channel: dict) -> list[list[str]]:
        """The security alternatives of the servers a channel is on (all, unless it names
        some), each once."""
        listed = channel.get("servers")
        names = None
        if isinstance(listed, list) and listed:
            names = {_ref_key(s) if self.three else str(s) for s in listed}
        found: set[tuple[str, ...]] = set()
        for name, _, server in self.servers:
            if names is None or name in names:
                alternatives = self.security(server.get("security"), f"server {name}")
                found.update(map(tuple, alternatives))
        return [list(alternative) for alternative in sorted(found)]

    def security(self, raw: Any, where: str) -> list[list[str]]:
        """Security alternatives, each as the schemes it needs. 3.x lists schemes (``$ref``, its
        key being the name, or inline, by its ``type``), one alternative each; 2.x lists
        requirements (scheme name → scopes), as 3.x's own examples still do."""
        found = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict):
                continue
            if not self.three or ("$ref" not in item and "type" not in item):
                found.append(sorted(map(str, item)))
                continue
            scheme = self.refs.follow(item, f"{where} security")
            name = _ref_key(item) or (
                _text(scheme.get("type")) if isinstance(scheme, dict) else None
            )
            if isinstance(scheme, dict) and name is not None:
                found.append([name])
        return found

    def _servers(self) -> Iterator[tuple[str, str, dict]]:
        """Each server: its name, its URL (variables given their defaults) and itself."""
        for name, raw in _mapping(self.document.get("servers")).items():
            server = self.refs.follow(raw, f"server {name}")
            if not isinstance(server, dict):
                continue
            protocol = _text(server.get("protocol"))
            if self.three:
                url = f"{server.get('host') or ''}{server.get('pathname') or ''}"
            else:
                url = str(server.get("url") or "")
            if protocol and "://" not in url:
                url = f"{protocol}://{url}"
            for variable, raw_variable in _mapping(server.get("variables")).items():
                value = self.refs.follow(raw_variable, f"server {name} variable {variable}")
                if isinstance(value, dict) and value.get("default") is not None:
                    url = url.replace("{" + str(variable) + "}", str(value["default"]))
            yield str(name), url, server

    def traited(self, node: Any, where: str) -> dict | None:
        """An operation or message with its ``traits`` applied: 2.x's patch the object (JSON
        Merge Patch, in order, the trait winning); 3.x's may not override what the object has
        (traits merged first, the object last)."""
        if not isinstance(node, dict):
            return None
        if not isinstance(node.get("traits"), list):
            return node
        own = {key: value for key, value in node.items() if key != "traits"}
        traits = [self.refs.follow(trait, f"{where} trait") for trait in node["traits"]]
        traits = [trait for trait in traits if isinstance(trait, dict)]
        merged: Any = {}
        for patch in [*traits, own] if self.three else [own, *traits]:
            merged = _merge_patch(merged, patch)
        return merged


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386's MergePatch, building new mappings rather than changing either."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


def _address(channel: dict, key: str | None) -> str:
    """A 3.x channel's address; its key when the address is null or absent (unknown)."""
    address = channel.get("address")
    return str(address) if isinstance(address, str) else str(key)


def _sunset(operation: dict, channel: dict) -> str | None:
    return _text(operation.get("x-sunset", channel.get("x-sunset")))


def _ref_key(node: Any) -> str | None:
    """The last token of a local ``$ref`` (``#/channels/lightTurnOn/messages/turnOn`` →
    ``turnOn``): the name the document gives what it refers to."""
    if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
        return None
    fragment = unquote(node["$ref"])
    if not fragment.startswith("#/"):
        return None
    return fragment.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
