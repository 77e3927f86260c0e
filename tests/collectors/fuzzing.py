"""Fuzzing every collector through the door ``clew ingest`` uses: a file's bytes, made by mutating
real samples of its format, read with ``collector.collect(Source(path))``. Whatever the bytes,
reading gives records (what cannot be read is quarantined) or refuses the file with the one
documented error, ``CollectorError``; any other exception is a defect.

Shared by the test that runs a modest budget in every run (``test_fuzz_collectors.py``) and the
long runs of ``bench/fuzz.py``, which uses ``mutate`` with its own random stream.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from clew.records import Quarantined
from collectors import CollectorError, Source, load_registry

#: The bytes of one sample used as a seed, at most (a large file's head).
SEED_BYTES = 48 * 1024
#: Bytes that mean something to one format or another, spliced in by the mutations.
TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"NaN",
    b"&a",
    b"*a",
    b"<<: *a",
    b"!!python",
    b"$ref",
    b"#/",
    b"%",
    b"%2e%2e/",
    b"- -",
    b"\t",
    b" " * 64,
    b"9" * 40,
    b"\x1f\x8b",
]


def seeds(corpus_dir: Path) -> dict[str, list[bytes]]:
    """Collector name → real samples of its format: the corpus folder of that name (a large
    file's head), Kong's records from its documentation pages, an OTLP/protobuf request made
    from each OTLP/JSON sample, and API Gateway records written as its access logs hold them."""
    found: dict[str, list[bytes]] = {}
    for name in load_registry():
        folder = corpus_dir / name
        if folder.is_dir():
            found[name] = [p.read_bytes()[:SEED_BYTES] for p in sorted(folder.iterdir())]
    found["kong"] = _kong_lines(corpus_dir / "kong")
    requests = [_protobuf(p.read_bytes()) for p in sorted((corpus_dir / "otlp_json").iterdir())]
    found["otlp_proto"] = [r for r in requests if r]
    found["aws_apigateway"] = [json.dumps(r).encode() + b"\n" for r in _apigateway_records()]
    found.update(_connector_metrics())
    return {name: samples for name, samples in found.items() if samples}


def _connector_metrics() -> dict[str, list[bytes]]:
    """The corpus holds no metrics: the servicegraph and spanmetrics exports the file tests
    build with the OpenTelemetry SDK, as the Collector's file exporter writes them (JSON lines,
    length-prefixed protobuf)."""
    from tests.clew.test_metrics_files import connector_exports
    from tests.collectors.test_otlp_metrics_files import framed, json_line

    exports = connector_exports()
    return {
        "otlp_metrics_json": [b"".join(json_line(m) for m in exports)],
        "otlp_metrics_proto": [framed([m.SerializeToString() for m in exports])],
    }


def _kong_lines(folder: Path) -> list[bytes]:
    """The JSON records of Kong's log-format pages, one a line as the file-log plugin writes."""
    lines = []
    for page in sorted(folder.glob("*.md")):
        for block in page.read_text().split("```json")[1:]:
            text = block.split("```", 1)[0]
            try:
                record = json.loads(text)
            except ValueError:
                continue
            lines.append(json.dumps(record).encode() + b"\n")
    return [b"".join(lines)] if lines else []


def _protobuf(document: bytes) -> bytes | None:
    """An OTLP/JSON request as OTLP/protobuf (its hex ids made the bytes protobuf's JSON
    mapping reads as base64); None for a sample that is not one request."""
    import base64

    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def ids_as_base64(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else ids_as_base64(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [ids_as_base64(v) for v in node]
        return node

    try:
        request = ids_as_base64(json.loads(document))
        message = json_format.ParseDict(request, ExportTraceServiceRequest())
    except (json_format.ParseError, ValueError, TypeError):
        return None
    return message.SerializeToString() if message.resource_spans else None


def _apigateway_records() -> list[dict]:
    """A REST and an HTTP API access log record, with the fields AWS's examples name."""
    return [
        {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "ip": "198.51.100.7",
            "caller": "-",
            "user": "-",
            "requestTime": "07/Dec/2026:01:02:03 +0000",
            "httpMethod": "GET",
            "resourcePath": "/pets/{petId}",
            "status": "200",
            "protocol": "HTTP/1.1",
            "responseLength": "48",
        },
        {
            "requestId": "JKJaJjHlPHcEM5w=",
            "ip": "203.0.113.9",
            "requestTime": "07/Dec/2026:01:02:04 +0000",
            "httpMethod": "POST",
            "routeKey": "POST /orders",
            "status": "201",
            "protocol": "HTTP/1.1",
            "responseLength": "12",
            "integrationLatency": "31",
            "responseLatency": "35",
        },
    ]


def mutate(rng: random.Random, samples: list[bytes]) -> bytes:
    """One sample with a few mutations: bytes flipped, cut, doubled or replaced by a token,
    the text truncated, or two samples spliced."""
    data = bytearray(rng.choice(samples))
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(6)
        at = rng.randint(0, len(data))
        if how == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[at : at + rng.randint(1, 64)]
        elif how == 2:
            data[at:at] = data[at : at + rng.randint(1, 256)]
        elif how == 3:
            data[at:at] = rng.choice(TOKENS)
        elif how == 4:
            del data[at:]
        else:
            other = rng.choice(samples)
            data[at:] = other[rng.randint(0, len(other)) :]
    return bytes(data)


_REGISTRY: list = []


def _registry():
    """The collectors, loaded once (entry points are slow to read for every input)."""
    if not _REGISTRY:
        _REGISTRY.append(load_registry())
    return _REGISTRY[0]


def read(name: str, data: bytes, path: Path) -> tuple[int, int]:
    """Read ``data`` as a file of collector ``name``: (records, quarantined). A
    ``CollectorError`` (the documented refusal) counts as nothing read; any other exception
    propagates."""
    path.write_bytes(data)
    collector = _registry()[name]
    records = quarantined = 0
    try:
        for record in collector.collect(Source(path)):
            records += 1
            quarantined += isinstance(record, Quarantined)
    except CollectorError:
        return 0, 0
    return records, quarantined
