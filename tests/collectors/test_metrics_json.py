"""The fast OTLP/JSON metrics reader (``collectors.metrics_json``) against protobuf's own
``ParseDict``: the same message for every export it takes, and None (``ParseDict`` then reads
it) for anything else, whatever a document's values are changed to."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.resources import Resource

from collectors import metrics_json
from collectors.otlp_metrics import read_document
from tests.clew.test_otlp_metrics import SECOND, T0, Connector, ServiceGraph, SpanMetrics
from tests.conftest import examples


def _documents() -> list[dict]:
    """Exports of every kind the connectors and an application send, as OTLP/JSON: explicit and
    exponential histograms, cumulative and delta, integer and double sums, a gauge, attributes
    of each scalar type, enums as numbers and as names, a resource with a schema URL."""
    graph = ServiceGraph()
    graph.calls("frontend", "checkout", [0.01, 0.2, 3.0], failed=1)
    exponential = SpanMetrics("checkout", exponential=True, delta=True)
    exponential.spans("GET /orders/{id}", "SERVER", [1.0, 20.0, 300.0], errors=1)
    app = Connector("my.app", Resource({"service.name": "shop", "pod.index": 3}), T0)
    app.meter.create_counter("orders").add(2, {"paid": True, "ratio": 0.5, "n": 7})
    app.meter.create_counter("weight", unit="kg").add(2.5)
    app.meter.create_observable_gauge(
        "queue.depth", [lambda options: iter(())], description="items waiting"
    )
    app.meter.create_up_down_counter("in.flight").add(-3)
    messages = [
        encode_metrics(connector.collect(T0 + 10 * SECOND))
        for connector in (graph, exponential, app)
    ]
    messages[0].resource_metrics[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    out = []
    for message in messages:
        out.append(json_format.MessageToDict(message, use_integers_for_enums=True))
        out.append(json_format.MessageToDict(message))  # enums by name
    return out


DOCUMENTS = _documents()


def _parsed(document: dict) -> ExportMetricsServiceRequest | None:
    message = ExportMetricsServiceRequest()
    try:
        json_format.ParseDict(copy.deepcopy(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError):
        return None
    return message


@pytest.mark.parametrize("document", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_every_regular_export_gives_the_message_parse_dict_gives(document):
    got = metrics_json.request_of(copy.deepcopy(document))
    assert got is not None
    assert got == _parsed(document)
    assert read_document(copy.deepcopy(document)).records  # and it is read


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(resource_metrics=d.pop("resourceMetrics")),  # snake_case
        lambda d: d["resourceMetrics"][0].update(unknown=1),
        lambda d: _first_point(d).update(timeUnixNano=" 12"),
        lambda d: _first_point(d).update(timeUnixNano=None),
        lambda d: _first_point(d).update(timeUnixNano=str(2**64)),
        lambda d: _first_point(d)["attributes"].append(
            {"key": "tags", "value": {"arrayValue": {"values": []}}}
        ),
        lambda d: _first_metric(d).update(summary={"dataPoints": []}),
    ],
    ids=["snake case", "unknown", "spaces", "null", "too large", "array", "two kinds"],
)
def test_anything_irregular_is_left_to_parse_dict(change):
    document = copy.deepcopy(DOCUMENTS[0])
    change(document)
    assert metrics_json.request_of(copy.deepcopy(document)) is None


def _first_metric(document: dict) -> dict:
    return document["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]


def _first_point(document: dict) -> dict:
    metric = _first_metric(document)
    kind = next(k for k in ("sum", "gauge", "histogram", "exponentialHistogram") if k in metric)
    return metric[kind]["dataPoints"][0]


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a document: (path to it)."""
    places = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            places += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += _places(item, (*path, index))
    return places


_VALUES = st.one_of(
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "12", "-3", "NaN", "1.5", " 7", "1_0", "AGGREGATION_TEMPORALITY_DELTA"]),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.builds(list),  # new objects each time: one put inside itself would never end
    st.builds(dict),
    st.builds(lambda: [{"key": "k"}]),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    which=st.integers(0, len(DOCUMENTS) - 1),
    changes=st.lists(
        st.tuples(st.integers(0, 10**6), _VALUES, st.sampled_from(["set", "drop", "add"])),
        min_size=1,
        max_size=3,
    ),
)
def test_whatever_a_document_holds_the_fast_reader_agrees_with_parse_dict_or_declines(
    which, changes
):
    document = copy.deepcopy(DOCUMENTS[which])
    for index, value, how in changes:
        places = [p for p in _places(document) if p]
        if not places:
            break  # everything dropped
        path = places[index % len(places)]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if how == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[f"{path[-1]}x"] = value
        else:
            parent[path[-1]] = value
    got = metrics_json.request_of(copy.deepcopy(document))
    if got is not None:
        assert got == _parsed(document)
