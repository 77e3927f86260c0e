"""The sample landscape generator, loaded by path as `clew demo` loads it, and one run of it
shared by the tests of its traces, its logs and its declarations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import orjson
import pytest

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
GENERATOR = SAMPLE_DATA / "generator.py"
# A whole minute, so the window is the same whichever way a caller floors it.
END_NS = 1_795_000_000_000_000_000 // 60_000_000_000 * 60_000_000_000
ERROR = 2


def load(path: Path) -> ModuleType:
    """A module of sample_data/, loaded by path."""
    spec = importlib.util.spec_from_file_location(f"sample_{path.stem}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(any_value: dict) -> object:
    ((kind, value),) = any_value.items()
    return int(value) if kind == "intValue" else value


def read_traces(path: Path) -> tuple[list[dict], list[dict]]:
    """The file's lines as parsed requests, and its spans flattened with service and attributes."""
    requests, spans = [], []
    for line in path.read_bytes().splitlines():
        request = orjson.loads(line)
        requests.append(request)
        for resource_spans in request["resourceSpans"]:
            attributes = resource_spans["resource"]["attributes"]
            resource = {a["key"]: _value(a["value"]) for a in attributes}
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    spans.append(
                        {
                            **span,
                            "resource": resource,
                            "service": resource["service.name"],
                            "attrs": {
                                a["key"]: _value(a["value"]) for a in span.get("attributes", [])
                            },
                            "start": int(span["startTimeUnixNano"]),
                            "end": int(span["endTimeUnixNano"]),
                            "error": span["status"].get("code") == ERROR,
                        }
                    )
    return requests, spans


@pytest.fixture(scope="package")
def generator() -> ModuleType:
    return load(GENERATOR)


@pytest.fixture(scope="package")
def landscape(generator, tmp_path_factory):
    """One 1000-trace run shared by the read-only tests: (manifest, requests, spans, out dir)."""
    out = tmp_path_factory.mktemp("landscape")
    manifest = generator.generate(out, end_ns=END_NS, traces=1000)
    requests, spans = read_traces(out / "traces.otlp.jsonl")
    return manifest, requests, spans, out
