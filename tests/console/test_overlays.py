"""The map's overlays as data: the window diff, the blast radius, slow edges, latency charts."""

from __future__ import annotations

from console import figures, formatting, overlay

from .test_figures import edge, node


def classes_of(elements, group):
    return {
        (e["data"]["id"] if group == "nodes" else (e["data"]["source"], e["data"]["target"])): e[
            "classes"
        ].split()
        for e in elements
        if e["group"] == group
    }


def graph_view():
    return {
        "nodes": [node("web"), node("hub"), node("wms"), node("pay")],
        "edges": [edge("web", "hub"), edge("hub", "wms", error_ratio=0.25), edge("web", "pay")],
        "cycles": [],
    }


def diff():
    """A ``metrics.graph_diff`` result: web → pay is new, hub → wms got worse, hub → gone left."""
    old_wms = {**edge("hub", "wms", error_ratio=0.002), "p95_ms": 20.0}
    return {
        "added": [edge("web", "pay")],
        "removed": [edge("hub", "gone", rps=0.5)],
        "changed": [
            {
                "client": "hub",
                "server": "wms",
                "connection_type": "direct",
                "old": old_wms,
                "new": edge("hub", "wms", error_ratio=0.25),
                "changes": ["error_ratio", "p95"],
            }
        ],
        "thresholds": {"error_ratio": 0.05, "p95": 0.5, "p95_ms": 10.0, "min_count": 20},
    }


def test_the_diff_marks_added_and_changed_edges_and_adds_back_removed_ones():
    known = {"gone": {"kind": "external", "namespace": "legacy", "environment": None}}
    marked = overlay.with_diff(graph_view(), diff(), known)
    marks = {(e["client"], e["server"]): e.get("diff") for e in marked["edges"]}
    assert marks == {
        ("web", "hub"): None,
        ("hub", "wms"): "changed",
        ("web", "pay"): "added",
        ("hub", "gone"): "removed",
    }
    changed = next(e for e in marked["edges"] if e.get("diff") == "changed")
    assert changed["changes"] == ["error ratio ↑", "p95 ↓"]
    gone = next(n for n in marked["nodes"] if n["id"] == "gone")
    assert gone["kind"] == "external" and gone["namespace"] == "legacy"
    assert gone["diff"] == "removed" and gone["requests"] == 0
    assert overlay.counts(marked["edges"]) == {"added": 1, "removed": 1, "changed": 1}
    assert overlay.current(marked)["edges"] == [
        e for e in marked["edges"] if e.get("diff") != "removed"
    ]
    assert graph_view()["edges"] == [e for e in graph_view()["edges"]]  # the input is untouched


def test_an_empty_diff_marks_nothing():
    empty = {"added": [], "removed": [], "changed": [], "thresholds": {}}
    marked = overlay.with_diff(graph_view(), empty)
    assert marked["nodes"] == graph_view()["nodes"] and marked["edges"] == graph_view()["edges"]


def test_diff_elements_carry_classes_and_the_overlay_labels():
    marked = overlay.with_diff(graph_view(), diff())
    elements = figures.map_elements(marked["nodes"], marked["edges"])
    edges = classes_of(elements, "edges")
    assert "diff-added" in edges[("web", "pay")]
    assert "diff-changed" in edges[("hub", "wms")]
    assert "diff-removed" in edges[("hub", "gone")]
    assert "diff-removed" in classes_of(elements, "nodes")["gone"]
    data = {
        (e["data"]["source"], e["data"]["target"]): e["data"]
        for e in elements
        if "source" in e["data"]
    }
    assert data[("hub", "gone")]["colour"] == figures.REMOVED  # not a health colour
    assert data[("web", "pay")]["diff_label"] == "new"
    assert data[("hub", "wms")]["diff_label"] == "error ratio ↑, p95 ↓"
    assert "diff_label" not in data[("web", "hub")]
    selectors: dict[str, dict] = {}
    for rule in figures.map_stylesheet():
        selectors.setdefault(rule["selector"], {}).update(rule["style"])
    assert selectors["edge.diff-removed"]["line-style"] == "dashed"
    assert "underlay-color" in selectors["edge.diff-added"]
    assert "underlay-color" in selectors["edge.diff-changed"]


def test_thresholds_read_as_words():
    text = overlay.thresholds_text(diff()["thresholds"])
    assert text == (
        "error ratio moved by 5 points or p95 moved by 50 % and 10 ms,"
        " on edges with 20 calls in each window"
    )
    assert overlay.thresholds_text({"jitter": 2.0}) == "jitter 2"


def test_the_blast_radius_marks_the_node_its_dependents_and_the_edges_among_them():
    view = graph_view()
    elements = figures.map_elements(view["nodes"], view["edges"], blast=("wms", ["hub", "web"]))
    nodes, edges = classes_of(elements, "nodes"), classes_of(elements, "edges")
    assert "blast-origin" in nodes["wms"]
    assert "blast" in nodes["hub"] and "blast" in nodes["web"]
    assert "outside" in nodes["pay"]
    assert "blast" in edges[("web", "hub")] and "blast" in edges[("hub", "wms")]
    assert "outside" in edges[("web", "pay")]
    plain = figures.map_elements(view["nodes"], view["edges"])
    assert not any("outside" in e["classes"] or "blast" in e["classes"] for e in plain)


def test_slow_edges_carry_their_p95_on_the_map():
    slow = {**edge("rec", "catalog"), "p95_ms": 1250.0}
    elements = figures.map_elements([node("rec"), node("catalog")], [slow, edge("rec", "x")])
    edges = {e["data"]["target"]: e for e in elements if e["group"] == "edges"}
    assert "slow" in edges["catalog"]["classes"].split()
    assert "slow" not in edges["x"]["classes"].split()
    assert edges["catalog"]["data"]["slow_label"] == "p95 1.25 s"
    rules = {r["selector"]: r["style"] for r in figures.map_stylesheet()}
    assert rules["edge.slow"]["label"] == "data(slow_label)"


def test_the_latency_chart_draws_the_percentiles_the_series_holds():
    series = [
        {"minute": 29_916_666, "p50_ms": 10.0, "p95_ms": 30.0, "p99_ms": 80.0},
        {"minute": 29_916_667, "p50_ms": None, "p95_ms": None, "p99_ms": None},
    ]
    figure = figures.latency_figure(series)
    assert [t.name for t in figure.data] == ["p50", "p95", "p99"]
    assert list(figure.data[1].y) == [30.0, None]  # a silent minute is a gap, not a zero
    only_p95 = figures.latency_figure([{"minute": 1, "p95_ms": 4.0}])
    assert [t.name for t in only_p95.data] == ["p95"]


def test_new_number_formats():
    assert formatting.latencies(12.0, 40.0, 88.0) == "12 / 40 / 88 ms"
    assert formatting.latencies(12.0, 1250.0, None) == "12 ms / 1.25 s / –"
    assert formatting.duration_minutes(45) == "45 minutes"
    assert formatting.duration_minutes(180) == "3 hours"
    assert formatting.duration_minutes(1501) == "1 day 1 hour 1 minute"
    assert formatting.instant(1_794_999_960_000_000_000) == "2026-11-18 11:06:00 UTC"
    now = 1_795_000_000_000_000_000
    assert formatting.ago(now - 90_000_000_000, now) == "1 minute ago"
    assert formatting.ago(now - 3 * 86_400_000_000_000, now) == "3 days ago"
    assert formatting.ago(now, now) == "just now"
