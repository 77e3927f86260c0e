"""The Paths page's pure helpers and the waterfall, on view models shaped like the kernel's."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from plotly.io.json import to_json_plotly as to_json

from clew.exemplars import Exemplar, FetchError, QueryApi, TraceNotFound
from console import ids, waterfall
from console.pages import paths
from console.state import ViewState

from . import fakes
from .tree import by_id, texts, walk

NOW = fakes.T0 + 3600 * 1_000_000_000
STORED = Exemplar("t1", fakes.TRACE)
TEMPO = QueryApi("tempo", "http://tempo:3200")


def test_paths_are_listed_worst_first_and_the_worst_is_chosen_by_default():
    ordered = paths.worst_first(fakes.PATHS)
    assert [p["id"] for p in ordered] == ["p-big", "p-small"]
    assert paths.choose(ordered, None) == (ordered[0], None)
    assert paths.choose(ordered, "p-small") == (ordered[1], None)
    chosen, problem = paths.choose(ordered, "p-gone")
    assert chosen is ordered[0] and "'p-gone'" in problem and "showing the worst" in problem
    assert paths.choose([], "p-big") == (None, None)


def test_equal_counts_put_the_most_recent_first():
    early = fakes.failing_path("a", ["x", "y"], 3, last_s=10)
    late = fakes.failing_path("b", ["x", "z"], 3, last_s=20)
    assert [p["id"] for p in paths.worst_first([early, late])] == ["b", "a"]


def test_the_list_links_each_path_to_itself_keeping_the_window():
    ordered = paths.worst_first(fakes.PATHS)
    listing = paths.paths_list(ordered, ordered[1], ViewState(window="all"), NOW)
    links = [c for c in walk(listing) if getattr(c, "href", None)]
    targets = [parse_qs(urlsplit(link.href).query) for link in links]
    assert targets == [
        {"window": ["all"], "path": ["p-big"]},
        {"window": ["all"], "path": ["p-small"]},
    ]
    rows = [
        c
        for c in walk(listing)
        if getattr(c, "className", None) in ("path-row", "path-row selected")
    ]
    assert [r.className for r in rows] == ["path-row", "path-row selected"]
    text = " ".join(texts(listing).split())
    assert "web → orders → hub → wms" in text and "POST /checkout" in text
    assert "since 2026-11-18 10:50:00 UTC" in text and "last seen 50 minutes ago" in text
    assert "503 Service Unavailable" in text


def test_the_path_map_draws_the_nodes_in_order_and_marks_the_failing_edge():
    elements = paths.path_elements(fakes.PATHS[1], {"wms": "external"})
    nodes = [e for e in elements if e["group"] == "nodes"]
    edges = [e for e in elements if e["group"] == "edges"]
    assert [n["data"]["id"] for n in nodes] == ["web", "orders", "hub", "wms"]
    assert "entry" in nodes[0]["classes"].split()
    assert nodes[-1]["classes"].split() == ["external", "node-bad"]
    assert [(e["data"]["source"], e["data"]["target"]) for e in edges] == [
        ("web", "orders"),
        ("orders", "hub"),
        ("hub", "wms"),
    ]
    assert [e["classes"] for e in edges] == ["", "", "failing"]


def test_a_path_through_a_cycle_draws_each_node_and_hop_once():
    loop = fakes.failing_path("c", ["a", "b", "a", "b", "c"], 1)
    elements = paths.path_elements(loop)
    assert [e["data"]["id"] for e in elements if e["group"] == "nodes"] == ["a", "b", "c"]
    hops = [(e["data"]["source"], e["data"]["target"]) for e in elements if e["group"] == "edges"]
    assert hops == [("a", "b"), ("b", "a"), ("b", "c")]


def test_the_detail_shows_the_failing_span_the_waterfall_and_a_map_link():
    detail = paths.detail(fakes.PATHS[1], STORED, ViewState(window="all"))
    found = by_id(detail)
    assert {ids.Paths.MAP, ids.Paths.WATERFALL, ids.Paths.FAILING_SPAN} <= set(found)
    span = texts(found[ids.Paths.FAILING_SPAN])
    for fact in ("wms", "GET /stock/{sku}", "WMS connection pool exhausted", "503", "server"):
        assert fact in span
    link = next(c for c in walk(detail) if getattr(c, "href", "").startswith("/map"))
    assert parse_qs(urlsplit(link.href).query) == {
        "window": ["all"],
        "client": ["hub"],
        "server": ["wms"],
    }


def test_a_trace_no_longer_stored_is_said_so_with_how_to_fetch_it():
    detail = paths.detail(fakes.PATHS[1], Exemplar("t1"), ViewState())
    section = by_id(detail)[ids.Paths.WATERFALL]
    assert section.className == "notice notice-info"
    assert texts(section).startswith("The exemplar trace t1 is not in the store")
    assert "set CLEW_TRACE_QUERY_URL" in texts(section)


def test_a_trace_the_query_api_could_not_give_says_why():
    gone = TraceNotFound(f"{TEMPO.label} has no trace t1 either (HTTP 404 Not Found)")
    missing = Exemplar("t1", problem=gone)
    section = by_id(paths.detail(fakes.PATHS[1], missing, ViewState()))[ids.Paths.WATERFALL]
    assert section.className == "notice notice-warning"
    assert texts(section) == (
        "The exemplar trace t1 is not in the store, and Tempo at http://tempo:3200 has no"
        " trace t1 either (HTTP 404 Not Found)."
    )
    failed = Exemplar("t1", problem=FetchError("Tempo at … answered HTTP 500"))
    section = by_id(paths.detail(fakes.PATHS[1], failed, ViewState()))[ids.Paths.WATERFALL]
    assert "could not be fetched: Tempo at … answered HTTP 500." in texts(section)


def test_a_fetched_trace_is_drawn_as_a_stored_one_under_a_note_of_where_from():
    fetched = Exemplar("t1", fakes.TRACE, fetched_from=TEMPO)
    section = by_id(paths.detail(fakes.PATHS[1], fetched, ViewState()))[ids.Paths.WATERFALL]
    stored = by_id(paths.detail(fakes.PATHS[1], STORED, ViewState()))[ids.Paths.WATERFALL]
    note, *drawn = section.children
    assert to_json(drawn) == to_json(stored.children)
    assert note.className == "notice notice-info trace-origin"
    assert " ".join(texts(note).split()) == (
        "Fetched from Tempo at http://tempo:3200 : the store no longer holds this trace."
        " It is shown here, not stored."
    )
    assert paths.origin_notes(STORED) == []


def test_what_a_fetched_answer_held_unread_is_listed():
    unread = tuple(
        f"resourceSpans[0].scopeSpans[0].spans[{i}]: spanId is missing" for i in range(2)
    )
    fetched = Exemplar("t1", fakes.TRACE, fetched_from=TEMPO, unread=unread, unread_count=5)
    _, listing = paths.origin_notes(fetched)
    assert listing.className == "notice notice-warning trace-unread"
    assert [texts(item) for item in walk(listing) if type(item).__name__ == "Li"] == list(unread)
    assert "5 parts of the answer could not be read" in texts(listing)
    assert "… and 3 more." in texts(listing)


def test_the_view_explains_an_empty_store_and_an_empty_window():
    empty = paths.view([], None, ViewState(), None, (None, None), NOW)
    assert "No data yet" in texts(empty["message"]) and empty["detail"] == []
    quiet = paths.view([], None, ViewState(window="1h"), None, (29_916_000, 29_916_666), NOW)
    assert "No failing paths in this window (last hour)" in texts(quiet["message"])
    link = next(c for c in walk(quiet["message"]) if getattr(c, "href", None))
    assert link.href == "/paths?window=all"


def test_the_view_reports_a_path_id_that_is_gone():
    out = paths.view(fakes.PATHS, STORED, ViewState(), "p-gone", (1, 2), NOW)
    assert out["message"] is None and "'p-gone'" in out["problems"][0]


def test_the_view_refuses_an_exemplar_of_another_path():
    with pytest.raises(ValueError, match="not the chosen path's"):
        paths.view(fakes.PATHS, Exemplar("t2", fakes.TRACE), ViewState(), None, (1, 2), NOW)


# --- The waterfall ----------------------------------------------------------------------------


def rows(tree):
    return [
        c
        for c in walk(tree)
        if "wf-row" in (getattr(c, "className", "") or "").split()
        and "wf-header" not in c.className
    ]


def test_the_waterfall_indents_by_depth_and_marks_failing_and_critical_spans():
    tree = waterfall.waterfall(fakes.TRACE)
    drawn = rows(tree)
    assert [r.to_plotly_json()["props"]["data-span-id"] for r in drawn] == ["s1", "s2", "s3", "s4"]
    assert [r.className for r in drawn] == [
        "wf-row critical error",
        "wf-row critical error",
        "wf-row failing critical error",
        "wf-row",
    ]
    labels = [next(c for c in walk(r) if c.className == "wf-label") for r in drawn]
    assert [label.style["paddingLeft"] for label in labels] == ["4px", "18px", "32px", "18px"]
    assert "✕" in texts(drawn[2]) and "✕" not in texts(drawn[1])


def test_bars_sit_on_the_trace_time_axis():
    start, duration = fakes.TRACE["start_ns"], fakes.TRACE["duration_ns"]
    spans = {s["span_id"]: s for s in fakes.TRACE["spans"]}
    assert waterfall.bar(spans["s1"], start, duration) == (0.0, 100.0)
    assert waterfall.bar(spans["s3"], start, duration) == (10.0, 60.0)
    assert waterfall.bar(spans["s4"], start, duration) == (2.0, waterfall.MIN_BAR)  # instant
    assert waterfall.bar(spans["s3"], start, 0) == (0.0, 100.0)
    assert waterfall.ticks(duration) == [
        (0.0, "0.00 ms"),
        (25.0, "25 ms"),
        (50.0, "50 ms"),
        (75.0, "75 ms"),
        (100.0, "100 ms"),
    ]


def test_duration_labels_go_where_they_fit():
    assert waterfall.label_place(10, 20) == {"left": "30%"}
    assert waterfall.label_side(40, 50) == " wf-duration-before"
    assert waterfall.label_place(40, 50) == {"right": "60%"}
    assert waterfall.label_side(0, 100) == " wf-duration-inside"


def test_a_long_trace_is_cut_with_a_note():
    many = {**fakes.TRACE, "spans": fakes.TRACE["spans"] * 3}
    tree = waterfall.waterfall(many, spans_limit=5)
    assert len(rows(tree)) == 5 and "The first 5 of 12 spans" in texts(tree)


def test_span_kinds_read_as_words():
    assert [waterfall.kind_name(k) for k in (0, 1, 2, 3, 4, 5, None, 9)] == [
        "",
        "internal",
        "server",
        "client",
        "producer",
        "consumer",
        "",
        "",
    ]
    assert waterfall.failing_span(fakes.TRACE)["span_id"] == "s3"
    assert waterfall.failing_span({**fakes.TRACE, "failing_span_id": None}) is None


def test_a_failure_in_the_entry_service_draws_its_caller_in_front():
    inside = fakes.failing_path("e", ["web"], 2)
    assert paths.hops(inside) == ["client", "web"]
    assert " ".join(texts(paths.chain(inside)).split()) == "client → web"
    elements = paths.path_elements(inside, {"client": "client"})
    nodes = {e["data"]["id"]: e["classes"].split() for e in elements if e["group"] == "nodes"}
    assert nodes == {"client": ["client"], "web": ["service", "entry", "node-bad"]}
    edges = [e for e in elements if e["group"] == "edges"]
    assert [(e["data"]["source"], e["data"]["target"], e["classes"]) for e in edges] == [
        ("client", "web", "failing")
    ]
    assert paths.hops(fakes.PATHS[0]) == ["web", "hub", "wms"]
