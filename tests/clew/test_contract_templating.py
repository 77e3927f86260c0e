"""Templating accuracy: concrete paths made from every corpus contract's templates (realistic
numbers, UUIDs, prefixed ids, dates, emails, names) map back to their own template through the
contract's ``Templates``, for at least 99 % of operations."""

from __future__ import annotations

import random
import string

import orjson
import pytest

from clew.records import Operation
from clew.routes import Templates
from collectors import Source
from collectors.openapi import OpenApiCollector
from tests.collectors.test_openapi import openapi_files

TARGET = 0.99


def concrete_value(name: str, parameter: dict | None, rng: random.Random) -> str:
    """A value a client would send for a path parameter, by its declared type and its name."""
    kind = (parameter or {}).get("type")
    lowered = name.lower()
    if kind in ("integer", "number") or (lowered in ("id", "year", "page") and rng.random() < 0.5):
        return str(rng.randint(1, 10 ** rng.randint(1, 9)))
    if "uuid" in lowered or "guid" in lowered:
        return "-".join(
            "".join(rng.choice("0123456789abcdef") for _ in range(size))
            for size in (8, 4, 4, 4, 12)
        )
    if "date" in lowered:
        return f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if "email" in lowered:
        return f"{rng.choice(['ann', 'bob', 'chen'])}@example.com"
    if lowered in ("name", "slug", "username", "login", "owner", "repo", "site_id", "account"):
        return rng.choice(["acme-shop", "northwind", "jane_doe", "blue-fin"])
    # An id as APIs write them: a type prefix and random letters and digits (Stripe, Twilio…)
    prefix = "".join(ch for ch in lowered if ch.isalpha())[:4] or "obj"
    alphabet = string.ascii_letters + string.digits
    return f"{prefix}_{''.join(rng.choice(alphabet) for _ in range(16))}"


def concrete_path(operation: Operation, rng: random.Random) -> str:
    parameters = {p["name"]: p for p in orjson.loads(operation.details)["parameters"]}
    out = []
    for segment in operation.path.split("/"):
        while "{" in segment and "}" in segment[segment.index("{") :]:
            start = segment.index("{")
            end = segment.index("}", start)
            name = segment[start + 1 : end]
            segment = (
                segment[:start]
                + concrete_value(name, parameters.get(name), rng)
                + segment[end + 1 :]
            )
        out.append(segment)
    return "/".join(out)


def test_concrete_paths_map_back_to_their_templates(capsys: pytest.CaptureFixture):
    rng = random.Random(20261206)
    lines, right, total = [], 0, 0
    for path in openapi_files():
        operations = [
            r
            for r in OpenApiCollector().collect(Source(path))
            if type(r) is Operation and r.role == "server"
        ]
        templates = Templates((op.method, op.path) for op in operations)
        matched = sum(
            templates.match(op.method, concrete_path(op, rng)) == op.path for op in operations
        )
        right, total = right + matched, total + len(operations)
        lines.append(f"{path.name}: {matched}/{len(operations)}")
    share = right / total
    with capsys.disabled():
        print(f"\ntemplating accuracy: {right}/{total} = {share:.2%} ({'; '.join(lines)})")
    assert total > 600
    assert share >= TARGET
