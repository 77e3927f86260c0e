"""Pure view builders: health colours, edge widths, cytoscape elements, charts, numbers."""

from __future__ import annotations

import pytest

from clew.records import NodeKind
from console import figures, formatting


def node(name, kind="service", requests=10, error_ratio=0.0, namespace=None):
    return {
        "id": name,
        "kind": kind,
        "namespace": namespace,
        "environment": None,
        "requests": requests,
        "errors": round(requests * error_ratio),
        "error_ratio": error_ratio,
    }


def edge(client, server, rps=1.0, error_ratio=0.0, connection_type="direct"):
    return {
        "client": client,
        "server": server,
        "connection_type": connection_type,
        "rps": rps,
        "error_ratio": error_ratio,
        "count": 60,
        "errors": 0,
        "p50_ms": 1.0,
        "p95_ms": 2.0,
        "p99_ms": 3.0,
    }


@pytest.mark.parametrize(
    ("ratio", "level", "colour"),
    [
        (0.0, "ok", figures.OK),
        (0.0099, "ok", figures.OK),
        (0.01, "warn", figures.WARN),
        (0.0499, "warn", figures.WARN),
        (0.05, "bad", figures.BAD),
        (1.0, "bad", figures.BAD),
    ],
)
def test_health_thresholds_are_one_and_five_percent(ratio, level, colour):
    assert figures.health(ratio) == level
    assert figures.edge_colour(ratio) == colour


def test_edge_width_is_log_scaled_against_the_busiest_edge():
    assert figures.edge_width(500, 500) == figures.MAX_WIDTH
    one_decade = figures.edge_width(50, 500)
    two_decades = figures.edge_width(5, 500)
    assert figures.MAX_WIDTH > one_decade > two_decades > figures.MIN_WIDTH
    # equal steps per decade: the scale is logarithmic, not linear
    assert figures.MAX_WIDTH - one_decade == pytest.approx(one_decade - two_decades, abs=0.02)
    assert figures.edge_width(0.0005, 500) == figures.MIN_WIDTH  # clamped past 3 decades
    assert figures.edge_width(0, 500) == figures.MIN_WIDTH
    assert figures.edge_width(1, 0) == figures.MIN_WIDTH


def test_every_node_kind_has_its_own_shape():
    assert set(figures.NODE_STYLES) == set(NodeKind.ALL)
    shapes = [style["shape"] for style in figures.NODE_STYLES.values()]
    assert len(set(shapes)) == len(shapes)


def test_map_elements_carry_kind_health_and_selection():
    elements = figures.map_elements(
        [node("web"), node("db", kind="database", error_ratio=0.2)],
        [edge("web", "db", rps=2.0, error_ratio=0.02), edge("client", "web", rps=20.0)],
        selected_node="db",
    )
    nodes = {e["data"]["id"]: e for e in elements if e["group"] == "nodes"}
    edges = {
        (e["data"]["source"], e["data"]["target"]): e for e in elements if e["group"] == "edges"
    }
    assert nodes["db"]["classes"].split() == ["database", "node-bad"]
    assert nodes["db"]["selected"] and not nodes["web"]["selected"]
    assert nodes["web"]["data"]["label"] == "web"
    assert edges[("web", "db")]["data"]["colour"] == figures.WARN
    assert "warn" in edges[("web", "db")]["classes"].split()
    assert edges[("client", "web")]["data"]["width"] == figures.MAX_WIDTH
    assert edges[("web", "db")]["data"]["width"] < figures.MAX_WIDTH
    assert edges[("web", "db")]["data"]["label"] == "2.00/s · 2.00 % · p95 2.0 ms"


def test_map_elements_are_in_a_stable_order_with_unique_ids():
    nodes = [node("b"), node("a"), node("c")]
    edges = [edge("b", "c"), edge("a", "b"), edge("a", "b", connection_type="messaging_system")]
    first = figures.map_elements(nodes, edges)
    assert first == figures.map_elements(list(reversed(nodes)), list(reversed(edges)))
    ids = [e["data"]["id"] for e in first]
    assert len(ids) == len(set(ids))


def test_search_highlights_matches_and_dims_the_rest():
    elements = figures.map_elements(
        [node("payments-api"), node("orders-db", kind="database")],
        [edge("payments-api", "orders-db"), edge("orders-db", "orders-db")],
        query="PAY",
    )
    classes = {e["data"]["id"]: e["classes"].split() for e in elements}
    assert "match" in classes["payments-api"]
    assert "dim" in classes["orders-db"]
    assert "dim" not in classes[figures.edge_id("payments-api", "orders-db", "direct")]
    assert "dim" in classes[figures.edge_id("orders-db", "orders-db", "direct")]


def test_context_nodes_and_their_edges_are_faded():
    elements = figures.map_elements([node("a"), node("b")], [edge("a", "b")], context={"b"})
    classes = {e["data"]["id"]: e["classes"].split() for e in elements}
    assert "context" in classes["b"] and "context" not in classes["a"]
    assert "context" in classes[figures.edge_id("a", "b", "direct")]


def test_hostile_names_stay_plain_data():
    name = "<img src=x onerror=alert(1)>"
    elements = figures.map_elements([node(name)], [edge("client", name)])
    assert elements[0]["data"]["label"] == name


def test_stylesheet_styles_every_kind_and_labels_edges_only_when_asked():
    plain = figures.map_stylesheet()
    selectors = [rule["selector"] for rule in plain]
    for kind in NodeKind.ALL:
        assert f"node.{kind}" in selectors
    assert not any(r["selector"] == "edge" and "label" in r["style"] for r in plain)
    labelled = figures.map_stylesheet(edge_labels=True)
    assert any(
        r["selector"] == "edge" and r["style"].get("label") == "data(label)" for r in labelled
    )


def test_the_map_layout_is_deterministic():
    layout = figures.map_layout()
    assert layout["name"] == "dagre"  # layered and deterministic, unlike cose
    assert layout["animate"] is False


def test_fill_minutes_makes_silent_minutes_zero():
    series = [
        {"minute": 10, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 5.0},
        {"minute": 13, "rps": 2.0, "errors": 1, "error_ratio": 0.5, "p95_ms": 7.0},
    ]
    filled = figures.fill_minutes(series, since=8, until=15)
    assert [row["minute"] for row in filled] == list(range(8, 15))
    assert [row["rps"] for row in filled] == [0, 0, 1.0, 0, 0, 2.0, 0]
    assert figures.fill_minutes(series) == [series[0], *filled[3:5], series[1]]
    assert figures.fill_minutes([]) == []
    assert figures.fill_minutes(series, since=0, until=10**6, limit=100) == series


def test_series_figure_draws_rate_and_error_ratio_on_two_axes():
    series = [
        {"minute": 29_916_666, "rps": 1.5, "errors": 0, "error_ratio": 0.0, "p95_ms": 3.0},
        {"minute": 29_916_667, "rps": 2.5, "errors": 3, "error_ratio": 0.02, "p95_ms": 4.0},
    ]
    figure = figures.series_figure(series)
    rate, errors = figure.data
    assert list(rate.y) == [1.5, 2.5] and rate.yaxis in (None, "y")
    assert list(errors.y) == [0.0, 0.02] and errors.yaxis == "y2"
    assert rate.x[0].isoformat() == "2026-11-18T11:06:00+00:00"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0, "0/s"),
        (0.00042, "0.0004/s"),
        (0.042, "0.04/s"),
        (3.14159, "3.14/s"),
        (42.42, "42.4/s"),
        (1234.5, "1,234/s"),
    ],
)
def test_rates_read_well(value, text):
    assert formatting.rate(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0, "0 %"), (0.00001, "<0.01 %"), (0.0231, "2.31 %"), (0.1215, "12.2 %")],
)
def test_ratios_read_as_percentages(value, text):
    assert formatting.ratio(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0.27, "0.27 ms"), (4.26, "4.3 ms"), (229.4, "229 ms"), (1250, "1.25 s")],
)
def test_latencies_read_in_ms_or_s(value, text):
    assert formatting.ms(value) == text


def test_minutes_read_in_utc():
    assert formatting.minute(29_916_666) == "2026-11-18 11:06 UTC"
    assert formatting.minute(None) == "–"
    assert formatting.count(12345) == "12,345"
