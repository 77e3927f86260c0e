"""Builders for small OTLP/JSON documents in tests."""

from __future__ import annotations

from pathlib import Path

import orjson

BASE_NS = 1_790_000_000_000_000_000


def attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(
    trace: int,
    span_id: int,
    parent: int | None = None,
    *,
    kind: int = 1,
    name: str = "op",
    start_ms: float = 0,
    duration_ms: float = 10,
    error: bool = False,
    **attributes: object,
) -> dict:
    start = BASE_NS + int(start_ms * 1_000_000)
    out = {
        "traceId": f"{trace:032x}",
        "spanId": f"{span_id:016x}",
        "parentSpanId": f"{parent:016x}" if parent else "",
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(duration_ms * 1_000_000)),
        "attributes": [attr(k.replace("__", "."), v) for k, v in attributes.items()],
        "status": {"code": 2} if error else {},
    }
    return out


def request(spans_by_service: dict[str, list[dict]]) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
            for service, spans in spans_by_service.items()
        ]
    }


def write_lines(path: Path, requests: list[dict], mode: str = "wb") -> Path:
    with path.open(mode) as handle:
        for r in requests:
            handle.write(orjson.dumps(r) + b"\n")
    return path
