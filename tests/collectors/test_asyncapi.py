"""AsyncAPI 2.x and 3.x contracts: every corpus file read, its channels and operations found by an
independent walk of the raw document; 2.x's publish and subscribe as the application's receive
and send; 3.x's request-reply; references followed, or noted when they cannot be."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from clew.records import Checkpoint, Contract, Operation, Quarantined
from collectors import Registry, Source, asyncapi
from collectors.asyncapi import AsyncApiCollector
from collectors.openapi import OpenApiCollector
from tests.conftest import corpus, examples


def asyncapi_files() -> list[Path]:
    return sorted(p for p in (corpus() / "asyncapi").iterdir() if p.is_file())


def raw_document(path: Path) -> dict:
    """The document as plain YAML reads it, with nothing of the collector's."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def walk(document: dict) -> tuple[list[tuple[str, str, str]], set[str]]:
    """(role, channel address, operation id) of every operation, and the keys of the channels
    they or their replies use, by walking the raw document: 3.x's ``operations`` and the
    channel each one's ``$ref`` names; 2.x's channels and their ``publish`` (the application
    receives) and ``subscribe`` (it sends)."""
    operations, used = [], set()
    if str(document["asyncapi"]).startswith("3."):
        for key, operation in document.get("operations", {}).items():
            name = operation["channel"]["$ref"].removeprefix("#/channels/")
            channel = document["channels"][name]
            operations.append((operation["action"], channel.get("address") or name, key))
            used.add(name)
            if "reply" in operation:
                used.add(operation["reply"]["channel"]["$ref"].removeprefix("#/channels/"))
    else:
        for name, channel in document["channels"].items():
            for verb, role in (("publish", "receive"), ("subscribe", "send")):
                if verb in channel:
                    operations.append((role, name, channel[verb]["operationId"]))
                    used.add(name)
    return sorted(operations), used


def read(path: Path) -> tuple[list[Contract], list[Operation], list[Quarantined]]:
    records = list(AsyncApiCollector().collect(Source(path)))
    assert records[-1] == Checkpoint(path.stat().st_size)
    return (
        [r for r in records if type(r) is Contract],
        [r for r in records if type(r) is Operation],
        [r for r in records if type(r) is Quarantined],
    )


def details(operation: Operation) -> dict:
    assert operation.details is not None
    return orjson.loads(operation.details)


@pytest.mark.parametrize("path", asyncapi_files(), ids=lambda p: p.name)
def test_every_corpus_contract_is_read_with_the_operations_a_raw_walk_finds(path: Path):
    (contract,), operations, quarantined = read(path)
    assert quarantined == []
    raw = raw_document(path)
    expected, used = walk(raw)
    found = sorted((op.role, op.path, op.operation_id) for op in operations)
    assert found == expected
    assert (contract.kind, contract.spec_version) == ("asyncapi", str(raw["asyncapi"]))
    assert all(op.protocol == "messaging" and op.method is None for op in operations)
    assert all(op.content_hash == contract.content_hash for op in operations)
    # every channel the document declares is one an operation or a reply uses
    replies = [details(op)["reply"] for op in operations if details(op)["reply"]]
    channels = {details(op)["channel"] for op in operations} | {r["channel"] for r in replies}
    assert channels == used == set(raw["channels"])
    assert contract.problems == ()  # every reference the collector follows is local and resolves
    assert orjson.loads(contract.document) == orjson.loads(orjson.dumps(raw))


@pytest.mark.parametrize("path", asyncapi_files(), ids=lambda p: p.name)
def test_asyncapi_files_are_detected_as_asyncapi_beside_openapi(path: Path):
    assert isinstance(Registry([AsyncApiCollector()]).detect(path), AsyncApiCollector)
    both = Registry([AsyncApiCollector(), OpenApiCollector()])
    assert isinstance(both.detect(path), AsyncApiCollector)


def test_openapi_files_and_inline_definitions_are_not_detected():
    registry = Registry([AsyncApiCollector()])
    for path in sorted((corpus() / "openapi").iterdir()):
        assert registry.detect(path) is None, path.name
    # a Backstage API entity holding an AsyncAPI document in a block string is a catalog file
    assert registry.detect(corpus() / "backstage" / "streetlights-api.yaml") is None


def test_specific_values_per_file():
    by_name = {p.name: read(p) for p in asyncapi_files()}
    (lights,), light_ops, _ = by_name["streetlights-kafka-asyncapi.yml"]
    assert (lights.title, lights.version) == ("Streetlights Kafka API", "1.0.0")
    assert lights.servers == (
        "kafka-secure://test.mykafkacluster.org:18092",
        "kafka-secure://test.mykafkacluster.org:28092",
    )
    measured = next(op for op in light_ops if op.operation_id == "receiveLightMeasurement")
    assert measured.role == "receive"
    assert (
        measured.path == "smartylighting.streetlights.1.0.event.{streetlightId}.lighting.measured"
    )
    info = details(measured)
    assert info["channel"] == "lightingMeasured"
    assert info["messages"] == [
        {
            "id": "lightMeasured",
            "name": "lightMeasured",
            "content_type": "application/json",
            "schema_format": None,
        }
    ]
    assert [p["name"] for p in info["parameters"]] == ["streetlightId"]
    assert info["bindings"] == ["kafka"]  # from the operation's trait
    assert (info["security"], info["server_security"]) == ([], [["certs"], ["saslScram"]])
    turn_on = next(op for op in light_ops if op.operation_id == "turnOn")
    # the channel's message key, and the message's name behind it (the default content type)
    assert [(m["id"], m["name"], m["content_type"]) for m in details(turn_on)["messages"]] == [
        ("turnOn", "turnOnOff", "application/json")
    ]

    (rpc,), rpc_ops, _ = by_name["v2.6.0_rpc-server.yml"]
    assert (rpc.spec_version, rpc.servers) == ("2.6.0", ("amqp://rabbitmq.example.org",))
    assert sorted((op.role, op.path, op.operation_id) for op in rpc_ops) == [
        ("receive", "rpc_queue", "sum"),  # publish: clients send it the numbers to add
        ("send", "{queue}", "sendSumResult"),  # subscribe: it sends the result back
    ]
    send = next(op for op in rpc_ops if op.role == "send")
    assert details(send)["bindings"] == ["amqp"]
    assert details(send)["messages"] == [
        {"id": None, "name": None, "content_type": "application/json", "schema_format": None}
    ]


def test_2x_publish_and_subscribe_are_the_same_roles_as_3x_send_and_receive():
    """The streetlights API in 2.6.0 and in 3.1.0: the same operations on the same addresses
    with the same roles, though 2.x names the other side's verb."""
    _, two, _ = read(corpus() / "asyncapi" / "v2.6.0_streetlights-kafka.yml")
    _, three, _ = read(corpus() / "asyncapi" / "streetlights-kafka-asyncapi.yml")
    assert sorted((op.role, op.path, op.operation_id) for op in two) == sorted(
        (op.role, op.path, op.operation_id) for op in three
    )
    raw = raw_document(corpus() / "asyncapi" / "v2.6.0_streetlights-kafka.yml")
    for op in two:
        verb = "publish" if op.role == "receive" else "subscribe"
        assert raw["channels"][op.path][verb]["operationId"] == op.operation_id
    # 2.x names a message by its messageId, else the key its $ref names
    turn_on = next(op for op in two if op.operation_id == "turnOn")
    assert [m["id"] for m in details(turn_on)["messages"]] == ["turnOnOff"]


def test_3x_request_reply():
    (adeo,), (request,), _ = read(corpus() / "asyncapi" / "adeo-kafka-request-reply-asyncapi.yml")
    assert adeo.servers == (
        "kafka://prod.url:9092",
        "kafka://staging.url:9092",
        "kafka://dev.url:9092",
    )
    assert adeo.version == "%REPLACED_BY_MAVEN%"
    assert (request.role, request.path, request.operation_id) == (
        "receive",
        "adeo-{env}-case-study-COSTING-REQUEST-{version}",
        "receiveACostingRequest",
    )
    info = details(request)
    avro = "application/vnd.apache.avro;version=1.9.0"
    # no messages listed on the operation: all of its channel's
    assert info["messages"] == [
        {
            "id": "CostingRequest",
            "name": "CostingRequestV1",
            "content_type": None,
            "schema_format": avro,
        }
    ]
    assert info["reply"] == {
        "channel": "costingResponseChannel",
        "path": "costingResponseChannel",  # its address is null: unknown until runtime
        "address": "$message.header#/REPLY_TOPIC",
        "messages": [
            {
                "id": "costingResponse",
                "name": "CostingResponse",
                "content_type": None,
                "schema_format": avro,
            }
        ],
    }
    assert info["parameters"] == [
        {
            "name": "env",
            "enum": ["dev", "sit", "uat1", "preprod", "prod"],
            "default": None,
            "location": None,
        },
        {"name": "version", "enum": None, "default": "V1", "location": None},
    ]
    assert (info["tags"], info["bindings"], info["server_security"]) == (
        ["costing"],
        ["kafka"],
        [["sasl-ssl"]],
    )
    assert info["summary"].startswith("[COSTING] Request one or more Costing")


def write(tmp_path: Path, document: dict | str, name: str = "events.yaml") -> Path:
    path = tmp_path / name
    if isinstance(document, str):
        path.write_text(document)
    else:
        path.write_bytes(orjson.dumps(document))
    return path


def test_references_are_followed_and_what_cannot_be_is_noted(tmp_path: Path):
    document = {
        "asyncapi": "3.0.0",
        "info": {"title": "Refs", "version": "2"},
        "servers": {
            "eu": {"$ref": "#/components/servers/regional"},
            "gone": {"$ref": "#/components/servers/nothing"},
        },
        "channels": {
            "orders": {"$ref": "#/components/channels/orders"},
            "loop": {"$ref": "#/components/channels/loop1"},
            "remote": {"$ref": "https://example.com/channels.yaml#/audit"},
        },
        "operations": {
            "onOrder": {"$ref": "#/components/operations/onOrder"},
            "onLoop": {"action": "receive", "channel": {"$ref": "#/channels/loop"}},
            "toRemote": {"action": "send", "channel": {"$ref": "#/channels/remote"}},
            "toNowhere": {"action": "send", "channel": {"$ref": "#/channels/nowhere"}},
            "shout": {"action": "publish", "channel": {"$ref": "#/channels/orders"}},
            "onSelf": {"action": "receive", "channel": {"$ref": "#/components/channels/self/a"}},
        },
        "components": {
            "servers": {
                "regional": {
                    "host": "{region}.broker.example.com:9093",
                    "pathname": "/v1",
                    "protocol": "kafka-secure",
                    "variables": {"region": {"$ref": "#/components/serverVariables/region"}},
                    "security": [{"$ref": "#/components/securitySchemes/mtls"}],
                }
            },
            "serverVariables": {"region": {"enum": ["eu", "us"], "default": "eu"}},
            "channels": {
                "orders": {
                    "address": "orders.{tenant}.placed",
                    "deprecated": True,
                    "x-sunset": "2026-06-30",
                    "parameters": {"tenant": {"$ref": "#/components/parameters/tenant"}},
                    "messages": {
                        "placed": {"$ref": "#/components/messages/orderPlaced"},
                        "cancelled": {"name": "OrderCancelled"},
                    },
                    "bindings": {"$ref": "#/components/channelBindings/kafka"},
                },
                "loop1": {"$ref": "#/components/channels/loop2"},
                "loop2": {"$ref": "#/components/channels/loop1"},
                "self": {"$ref": "#/components/channels/self/a"},  # a pointer through itself
            },
            "operations": {
                "onOrder": {
                    "action": "receive",
                    "channel": {"$ref": "#/channels/orders"},
                    "summary": "Own summary",
                    "security": [
                        {"$ref": "#/components/securitySchemes/mtls"},
                        {"type": "httpApiKey", "name": "X-Key", "in": "user"},
                        {"oauth": ["orders:read"]},  # a 2.x requirement, as 3.x's examples write
                    ],
                    "messages": [{"$ref": "#/channels/orders/messages/placed"}],
                    "traits": [{"$ref": "#/components/operationTraits/common"}],
                }
            },
            "operationTraits": {
                "common": {
                    "summary": "A trait's summary does not override the operation's",
                    "tags": [{"name": "orders"}],
                    "bindings": {"amqp": {}},
                }
            },
            "parameters": {"tenant": {"enum": ["a", "b"], "location": "$message.payload#/t"}},
            "messages": {
                "orderPlaced": {
                    "name": "OrderPlaced",
                    "payload": {"schemaFormat": "application/vnd.apache.avro;version=1.9.0"},
                    "traits": [{"contentType": "application/avro", "bindings": {"kafka": {}}}],
                }
            },
            "channelBindings": {"kafka": {"kafka": {"partitions": 3}, "x-note": {}}},
            "securitySchemes": {"mtls": {"type": "X509"}},
        },
    }
    (contract,), operations, quarantined = read(write(tmp_path, document, "refs.json"))
    assert quarantined == []
    # the loops, the remote, the dangling and the 'publish' are not read
    (order,) = operations
    assert (order.role, order.path, order.operation_id) == (
        "receive",
        "orders.{tenant}.placed",
        "onOrder",
    )
    assert (order.deprecated, order.sunset) == (True, "2026-06-30")  # the channel's
    info = details(order)
    assert (info["summary"], info["tags"]) == ("Own summary", ["orders"])
    assert info["messages"] == [
        {
            "id": "placed",
            "name": "OrderPlaced",
            "content_type": "application/avro",
            "schema_format": "application/vnd.apache.avro;version=1.9.0",
        }
    ]
    assert info["bindings"] == ["amqp", "kafka"]  # the trait's, the channel's, the message's
    assert info["parameters"] == [
        {"name": "tenant", "enum": ["a", "b"], "default": None, "location": "$message.payload#/t"}
    ]
    assert info["security"] == [["mtls"], ["httpApiKey"], ["oauth"]]
    assert info["server_security"] == [["mtls"]]
    assert contract.servers == ("kafka-secure://eu.broker.example.com:9093/v1",)
    problems = "\n".join(contract.problems)
    assert (
        "operation onLoop channel: $ref '#/components/channels/loop1' refers to itself" in problems
    )
    assert (
        "operation toRemote channel: $ref 'https://example.com/channels.yaml#/audit'"
        " is in another document (not fetched)"
    ) in problems
    assert "operation toNowhere channel: $ref '#/channels/nowhere' points at nothing" in problems
    assert "server gone: $ref '#/components/servers/nothing' points at nothing" in problems
    assert "operation shout: action 'publish' is neither send nor receive (not read)" in problems
    assert "operation onSelf channel: $ref '#/components/channels/self/a' points at nothing" in (
        problems
    )


def test_2x_traits_override_and_one_of_messages(tmp_path: Path):
    document = {
        "asyncapi": "2.4.0",
        "info": {"title": "Two", "version": "1"},
        "servers": {
            "local": {
                "url": "mqtt://localhost:{port}",
                "protocol": "mqtt",
                "variables": {"port": {"default": "1883"}},
            },
            "ws": {"url": "broker.example.com/ws", "protocol": "wss"},
        },
        "channels": {
            "user/{id}/events": {
                "parameters": {"id": {"schema": {"type": "string", "enum": ["x"]}}},
                "publish": {
                    "operationId": "onUserEvent",
                    "summary": "The operation's own",
                    "deprecated": True,
                    "traits": [{"summary": "The trait's, which wins in 2.x"}],
                    "security": [{"oauth": ["read"], "apiKey": []}, {"token": []}],
                    "message": {
                        "oneOf": [
                            {"$ref": "#/components/messages/signedUp"},
                            {"messageId": "left", "name": "UserLeft", "contentType": "text/plain"},
                        ]
                    },
                },
                "subscribe": {"operationId": "sendUserEvent", "x-sunset": "2027-01-01"},
            }
        },
        "components": {
            "messages": {
                "signedUp": {
                    "name": "UserSignedUp",
                    "schemaFormat": "application/schema+json;version=draft-07",
                }
            }
        },
    }
    (contract,), operations, _ = read(write(tmp_path, document, "two.json"))
    assert contract.servers == ("mqtt://localhost:1883", "wss://broker.example.com/ws")
    receive, send = operations
    assert (receive.role, receive.operation_id, receive.deprecated) == (
        "receive",
        "onUserEvent",
        True,
    )
    assert (send.role, send.operation_id, send.sunset) == ("send", "sendUserEvent", "2027-01-01")
    info = details(receive)
    assert info["summary"] == "The trait's, which wins in 2.x"
    assert [
        (m["id"], m["name"], m["content_type"], m["schema_format"]) for m in info["messages"]
    ] == [
        ("signedUp", "UserSignedUp", None, "application/schema+json;version=draft-07"),
        ("left", "UserLeft", "text/plain", None),
    ]
    assert info["parameters"] == [{"name": "id", "enum": ["x"], "default": None, "location": None}]
    assert (info["security"], info["server_security"]) == ([["apiKey", "oauth"], ["token"]], [])
    assert details(send)["messages"] == []


def test_bad_files_are_quarantined_whole(tmp_path: Path):
    _, _, (bad,) = read(write(tmp_path, "asyncapi: 3.0.0\nchannels: {a: 1\n", "bad.yaml"))
    assert bad.position == "line 3 column 1" and bad.reason.startswith(
        "invalid YAML: while parsing"
    )
    openapi = corpus() / "openapi" / "v3.0_petstore-expanded.json"
    contracts, operations, (other,) = read(openapi)
    assert (contracts, operations) == ([], [])
    assert (other.position, other.reason) == (
        "document",
        "not an AsyncAPI document: no asyncapi version at its top",
    )
    _, _, (old,) = read(
        write(tmp_path, "asyncapi: '1.2.0'\ninfo: {title: Old}\ntopics: {}\n", "old.yaml")
    )
    assert old.reason == "AsyncAPI version 1.2.0 is not read (2.x and 3.x are)"
    _, _, (listed,) = read(write(tmp_path, "- asyncapi: 2.6.0\n", "list.yaml"))
    assert listed.reason == "not an AsyncAPI document: its top is not a mapping"
    _, _, (broken,) = read(write(tmp_path, '{"asyncapi": "3.0.0", ', "broken.json"))
    assert broken.position == "line 1 column 23" and broken.reason.startswith("invalid JSON")


#: Names and pointers of generated documents, few enough that references often land.
NAMES = st.sampled_from(["a", "b"])
CHANNELS = ["#/channels/a", "#/channels/b", "#/components/channels/a"]
MESSAGES = [
    "#/channels/a/messages/a", "#/channels/b/messages/b", "#/components/channels/a/messages/b",
]  # fmt: skip
POINTERS = [
    "#/channels/a", "#/channels/a/messages/b", "#/channels/b", "#/operations/a/channel",
    "#/components/channels/a", "#/components/a", "#/servers/a", "#", "#/", "#a", "other.yaml#/a",
]  # fmt: skip


def asyncapi_like() -> st.SearchStrategy:
    """Documents shaped like AsyncAPI 2.x and 3.x ones (channels, operations, messages, traits,
    replies, servers), any part of which may be a reference, missing or of the wrong type."""
    anything = st.recursive(
        st.none() | st.booleans() | st.integers(-1, 1) | st.sampled_from(["a", "{a}", "kafka"]),
        lambda children: st.lists(children, max_size=2) | st.dictionaries(NAMES, children),
        max_leaves=6,
    )
    ref = st.fixed_dictionaries({"$ref": st.sampled_from(POINTERS)})
    channel_ref = st.fixed_dictionaries({"$ref": st.sampled_from(CHANNELS)}) | ref
    message_ref = st.fixed_dictionaries({"$ref": st.sampled_from(MESSAGES)}) | ref

    def either(strategy: st.SearchStrategy) -> st.SearchStrategy:
        """Mostly ``strategy``, else a reference or anything at all."""
        return st.one_of(strategy, strategy, strategy, ref, anything)

    def named(strategy: st.SearchStrategy, least: int = 0) -> st.SearchStrategy:
        return st.dictionaries(NAMES, either(strategy), min_size=least, max_size=2)

    trait = st.fixed_dictionaries(
        {}, optional={"summary": anything, "bindings": named(anything), "contentType": anything}
    )
    message = st.fixed_dictionaries(
        {},
        optional={
            "name": anything,
            "messageId": anything,
            "contentType": anything,
            "payload": either(st.fixed_dictionaries({"schemaFormat": anything})),
            "bindings": named(anything),
            "traits": st.lists(either(trait), max_size=2),
            "oneOf": st.lists(message_ref, max_size=2),
        },
    )
    reply = st.fixed_dictionaries(
        {},
        optional={
            "channel": channel_ref,
            "address": either(st.fixed_dictionaries({"location": anything})),
            "messages": st.lists(message_ref, max_size=2),
        },
    )
    operation = st.fixed_dictionaries(
        {
            "action": st.sampled_from(["send", "receive", "publish"]),
            "channel": channel_ref,
            "reply": st.none() | either(reply),
        },
        optional={
            "operationId": anything,
            "messages": st.lists(message_ref, max_size=2),
            "message": either(message),
            "traits": st.lists(either(trait), max_size=2),
            "security": st.lists(ref | named(st.lists(anything)), max_size=2),
            "tags": st.lists(either(st.fixed_dictionaries({"name": anything})), max_size=2),
            "deprecated": anything,
        },
    )
    channel = st.fixed_dictionaries(
        {},
        optional={
            "address": st.none() | st.sampled_from(["a.{id}", "b"]),
            "messages": named(message),
            "parameters": named(st.fixed_dictionaries({}, optional={"enum": anything})),
            "servers": st.lists(ref | NAMES, max_size=2),
            "publish": either(operation),
            "subscribe": either(operation),
            "bindings": either(named(anything)),
        },
    )
    server = st.fixed_dictionaries(
        {},
        optional={
            "host": anything,
            "url": anything,
            "protocol": anything,
            "variables": named(st.fixed_dictionaries({"default": anything})),
            "security": st.lists(ref | named(st.lists(anything)), max_size=2),
        },
    )
    return st.fixed_dictionaries(
        {
            "asyncapi": st.sampled_from(["2.0.0", "2.6.0", "3.0.0", "3.1.0"]),
            "channels": named(channel, least=1),
            "operations": named(operation, least=1),
        },
        optional={
            "servers": named(server),
            "components": st.fixed_dictionaries({"channels": named(channel)}),
            "defaultContentType": anything,
        },
    )


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=asyncapi_like())
def test_any_asyncapi_shaped_document_gives_a_contract_and_never_crashes(document: dict):
    contract, *operations = asyncapi.read(document, "0" * 64)
    assert type(contract) is Contract and all(isinstance(p, str) for p in contract.problems)
    for operation in operations:
        assert type(operation) is Operation and operation.role in ("send", "receive")
        assert isinstance(operation.path, str)
        assert set(details(operation)) >= {"channel", "messages", "security", "server_security"}
