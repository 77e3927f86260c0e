"""Paths (``/paths``), for on-call: the failing integration paths, entry operation → … → failing
edge, worst first; the chosen one's exemplar trace as a waterfall, its failing span, and the path
drawn on a small map."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from itertools import pairwise

import dash_cytoscape as cyto
from dash import Dash, Input, Output, dcc, html

from clew import exemplars, store
from clew.exemplars import Exemplar
from console import components, figures, formatting, ids, queries, waterfall
from console.state import WINDOW_KEYS, ViewState, parse, search

PATH = "/paths"
TITLE = "Failing paths"
ID = ids.Paths
TB = ID.TOOLBAR


# --- URL state of this page -------------------------------------------------------------------


def paths_search(state: ViewState, path_id: str | None = None) -> str:
    """This page's query string: the window and the chosen path."""
    return search(state, WINDOW_KEYS, path=path_id)


def choose(paths: Sequence[dict], wanted: str | None) -> tuple[dict | None, str | None]:
    """The path the URL asks for, else the worst; and a problem when the asked one is gone."""
    if not paths:
        return None, None
    if wanted:
        found = next((p for p in paths if p["id"] == wanted), None)
        if found is not None:
            return found, None
        return paths[0], (
            f"Path {wanted!r} is not among the failing paths in this window; showing the worst."
        )
    return paths[0], None


def worst_first(paths: Sequence[dict]) -> list[dict]:
    """Most failing traces first, then the most recently seen, then by id (a stable order)."""
    return sorted(paths, key=lambda p: (-p["count"], -p["last_seen_ns"], p["id"]))


# --- The view ---------------------------------------------------------------------------------


def hops(path: dict) -> list[str]:
    """The nodes along ``path`` ending with its failing edge. A failure that began in the entry
    service has the edge caller → entry, whose caller is not on the path: it goes in front."""
    names = list(path["path"])
    client, server = path["failing_edge"]["client"], path["failing_edge"]["server"]
    if names[-2:] != [client, server] and names[:1] == [server] and client not in names:
        names.insert(0, client)
    return names


def chain(path: dict) -> html.Span:
    """The path as text: each node, arrows between, the failing edge's server in red."""
    names = hops(path)
    parts: list = []
    for index, name in enumerate(names):
        if index:
            bad = index == len(names) - 1
            parts.append(html.Span(" → ", className="arrow" + (" tone-bad" if bad else "")))
        last = index == len(names) - 1
        parts.append(html.Span(name, className="path-node" + (" tone-bad" if last else "")))
    return html.Span(parts, className="path-chain")


def paths_list(
    paths: Sequence[dict], chosen: dict | None, state: ViewState, now_ns: int
) -> html.Ol:
    """The failing paths, worst first, the chosen one marked; each item links to itself."""
    items = []
    for path in paths:
        selected = chosen is not None and path["id"] == chosen["id"]
        items.append(
            html.Li(
                dcc.Link(
                    [
                        html.Div(
                            [
                                html.Span(
                                    formatting.count(path["count"]),
                                    className="path-count",
                                    title="failing traces",
                                ),
                                html.Span(path["entry"]["service"], className="strong"),
                                html.Span(path["entry"]["endpoint"], className="muted"),
                            ],
                            className="path-entry",
                        ),
                        html.Div(chain(path), className="path-line"),
                        html.Div(path.get("error") or "–", className="path-error"),
                        html.Div(
                            [
                                "since ",
                                html.Span(
                                    formatting.instant(path["first_seen_ns"]),
                                    title=formatting.ago(path["first_seen_ns"], now_ns),
                                ),
                                " · last seen ",
                                formatting.ago(path["last_seen_ns"], now_ns),
                            ],
                            className="path-when muted",
                        ),
                    ],
                    href=PATH + paths_search(state, path["id"]),
                    className="path-link",
                ),
                className="path-row selected" if selected else "path-row",
                **{"data-path-id": path["id"]},
            )
        )
    return html.Ol(items, className="paths-list")


def path_elements(path: dict, kinds: Mapping[str, str] | None = None) -> list[dict]:
    """Cytoscape elements for a path: its nodes left to right, the failing edge marked."""
    kinds = kinds or {}
    names = hops(path)
    failing = (path["failing_edge"]["client"], path["failing_edge"]["server"])
    elements, seen, edges = [], set(), set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        kind = kinds.get(name) or "service"
        classes = [kind if kind in figures.NODE_STYLES else "service"]
        if name == path["entry"]["service"]:
            classes.append("entry")
        if name == failing[1]:
            classes.append("node-bad")
        elements.append(
            {"group": "nodes", "data": {"id": name, "label": name}, "classes": " ".join(classes)}
        )
    for client, server in pairwise(names):
        if (client, server) in edges:
            continue
        edges.add((client, server))
        bad = (client, server) == failing
        elements.append(
            {
                "group": "edges",
                "data": {
                    "id": f"{client}\u2192{server}",
                    "source": client,
                    "target": server,
                    "colour": figures.BAD if bad else figures.MUTED,
                    "width": 5 if bad else 2.5,
                },
                "classes": "failing" if bad else "",
            }
        )
    return elements


def path_stylesheet() -> list[dict]:
    """The small map's stylesheet: the service map's, with the entry node outlined in blue and
    the failing edge's server in red."""
    return [
        *figures.map_stylesheet(),
        {"selector": "node.entry", "style": {"border-color": figures.ACCENT, "border-width": 3}},
        # where the failure began wins over the entry mark when they are one node
        {"selector": "node.node-bad", "style": {"border-color": figures.BAD, "border-width": 3}},
    ]


def path_map(path: dict, kinds: Mapping[str, str] | None = None) -> cyto.Cytoscape:
    """The path drawn left to right on a small map."""
    return cyto.Cytoscape(
        id=ID.MAP,
        elements=path_elements(path, kinds),
        layout={**figures.map_layout(), "rankDir": "LR", "rankSep": 60, "padding": 16},
        stylesheet=path_stylesheet(),
        autounselectify=True,
        userZoomingEnabled=False,
        userPanningEnabled=False,
        boxSelectionEnabled=False,
        maxZoom=1.2,
        className="path-canvas",
        style={"width": "100%", "height": "150px"},
    )


def span_details(span: dict | None, trace: dict) -> html.Div:
    """What the failing span says: service, name, status message, HTTP status, timing."""
    if span is None:
        return html.Div(
            html.P("This trace has no failing span of its own.", className="muted"),
            id=ID.FAILING_SPAN,
        )
    offset = (span["start_ns"] - trace["start_ns"]) / waterfall.NS_PER_MS
    return html.Div(
        [
            html.H4("The failing span"),
            components.key_values(
                [
                    ("Service", html.Strong(span["service"])),
                    ("Span", span["name"]),
                    ("Kind", waterfall.kind_name(span.get("kind"))),
                    ("Status message", span.get("status_message")),
                    ("HTTP status", span.get("http_status")),
                    ("Duration", formatting.ms(span["duration_ns"] / waterfall.NS_PER_MS)),
                    ("Starts at", "+" + formatting.ms(offset)),
                    ("Span id", html.Code(span["span_id"])),
                ]
            ),
        ],
        id=ID.FAILING_SPAN,
        className="failing-span",
    )


def origin_notes(exemplar: Exemplar) -> list:
    """What goes above a fetched trace's waterfall: where it came from, and what of the answer
    could not be read (nothing for a stored trace)."""
    if exemplar.fetched_from is None:
        return []
    notes: list = [
        html.P(
            [
                "Fetched from ",
                html.Strong(exemplar.fetched_from.label),
                ": the store no longer holds this trace. It is shown here, not stored.",
            ],
            className="notice notice-info trace-origin",
        )
    ]
    if exemplar.unread_count:
        more = exemplar.unread_count - len(exemplar.unread)
        notes.append(
            html.Div(
                [
                    html.P(
                        f"{formatting.count(exemplar.unread_count)} parts of the answer could not"
                        " be read and are not drawn:"
                    ),
                    html.Ul([html.Li(text) for text in exemplar.unread]),
                    *([html.P(f"… and {formatting.count(more)} more.")] if more else []),
                ],
                className="notice notice-warning trace-unread",
            )
        )
    return notes


def detail(
    path: dict, exemplar: Exemplar, state: ViewState, kinds: Mapping[str, str] | None = None
) -> list:
    """The chosen path: its map, its exemplar trace's waterfall (from the store, or fetched
    from the configured query API) and the failing span."""
    edge = path["failing_edge"]
    map_href = "/map" + search(state, WINDOW_KEYS, client=edge["client"], server=edge["server"])
    header = html.Div(
        [
            html.Div("Failing path", className="panel-kicker"),
            html.H2(
                [
                    path["entry"]["service"],
                    html.Span(" " + path["entry"]["endpoint"], className="muted"),
                ],
                className="detail-title",
            ),
            html.P(
                [
                    f"{formatting.count(path['count'])} failing traces, from ",
                    formatting.instant(path["first_seen_ns"]),
                    " to ",
                    formatting.instant(path["last_seen_ns"]),
                    ". Failing edge ",
                    html.Strong([edge["client"], " → ", edge["server"]]),
                    ": ",
                    path.get("error") or "–",
                    ". ",
                    dcc.Link("Show the edge on the service map", href=map_href, className="link"),
                ]
            ),
        ]
    )
    side = [path_map(path, kinds)]
    trace = exemplar.trace
    if trace is None:
        tone = "notice-info" if exemplar.problem is None else "notice-warning"
        body = html.Div(
            exemplar.explanation("The exemplar trace"),
            className=f"notice {tone}",
            id=ID.WATERFALL,
        )
        side.append(span_details(None, {"start_ns": 0}))
    else:
        body = html.Div(
            [
                *origin_notes(exemplar),
                html.H4(
                    [
                        "Exemplar trace ",
                        html.Code(trace["trace_id"]),
                        f" · {len(trace['spans'])} spans · "
                        + formatting.ms(trace["duration_ns"] / waterfall.NS_PER_MS),
                    ]
                ),
                waterfall.waterfall(trace),
            ],
            id=ID.WATERFALL,
        )
        side.append(span_details(waterfall.failing_span(trace), trace))
    return [header, html.Div(side, className="path-detail-grid"), body]


def no_failures(state: ViewState, data_range: tuple[int | None, int | None]) -> html.Div:
    """What an empty list says: nothing failed in this window, and where the data is."""
    first, last = data_range
    children: list = [
        html.Strong(f"No failing paths in this window ({state.describe()}). "),
        "Nothing failed on the way from an entry operation. ",
    ]
    if state.window != "all" or state.explicit:
        children += [
            f"The store holds data from {formatting.minute(first)} to {formatting.minute(last)}; ",
            dcc.Link("try all", href=PATH + "?window=all", className="link"),
            ".",
        ]
    return html.Div(children, className="notice notice-info")


def view(
    paths: Sequence[dict],
    exemplar: Exemplar | None,
    state: ViewState,
    wanted: str | None,
    data_range: tuple[int | None, int | None],
    now_ns: int,
    kinds: Mapping[str, str] | None = None,
) -> dict:
    """Everything ``refresh`` outputs (pure, for tests); ``exemplar`` is the chosen path's."""
    ordered = worst_first(paths)
    chosen, problem = choose(ordered, wanted)
    if chosen is None:
        message = (
            components.no_data(state, PATH, data_range)
            if data_range[0] is None
            else no_failures(state, data_range)
        )
        return {"message": message, "list": [], "detail": [], "problems": []}
    if exemplar is None or exemplar.trace_id != chosen["exemplar"]["trace_id"]:
        raise ValueError("the exemplar given is not the chosen path's")  # a caller's mistake
    return {
        "message": None,
        "list": [
            html.H2(f"{len(ordered)} failing paths"),
            html.P(
                "From the entry operation to the edge where the failure began; most failing"
                " traces first. Choose one for its exemplar trace.",
                className="muted",
            ),
            paths_list(ordered, chosen, state, now_ns),
        ],
        "detail": detail(chosen, exemplar, state, kinds),
        "problems": [problem] if problem else [],
    }


def layout(**query: str) -> html.Div:
    """The page for the URL parameters in ``query``; data arrives through ``refresh``."""
    return html.Div(
        [
            *components.window_page_top(TITLE, ID, query),
            html.Div(
                [
                    html.Section(id=ID.LIST, className="panel paths-panel"),
                    html.Section(id=ID.DETAIL, className="panel path-detail"),
                ],
                className="paths-layout",
            ),
        ],
        className="page page-paths",
    )


def register_callbacks(app: Dash) -> None:
    """Wire this page's callbacks to ``app`` (per app: never at import time)."""
    flask_app = app.server

    # A new window has other paths: the chosen one is dropped.
    components.register_window_sync(app, TB, ID.STATE, paths_search)

    @app.callback(
        Output(TB.PROBLEMS, "children"),
        Output(ID.WINDOW_LABEL, "children"),
        Output(ID.MESSAGE, "children"),
        Output(ID.LIST, "children"),
        Output(ID.DETAIL, "children"),
        Input(ID.STATE, "data"),
    )
    def refresh(raw):
        raw = raw or {}
        now = time.time_ns()
        state, problems = parse(raw, now)
        engine = store.engine_of(flask_app)
        paths = queries.failing_paths(engine, state.resolve(now))
        chosen, _ = choose(worst_first(paths), raw.get("path"))
        exemplar = None
        if chosen is not None:  # from the store, else the query API (cached a while)
            trace_query = exemplars.configured(flask_app)
            exemplar = exemplars.exemplar(engine, chosen["exemplar"]["trace_id"], trace_query)
        kinds = queries.node_kinds(engine) if chosen else {}
        out = view(paths, exemplar, state, raw.get("path"), queries.data_range(engine), now, kinds)
        return (
            components.problems(problems + out["problems"]),
            state.describe(),
            out["message"],
            out["list"],
            out["detail"],
        )
