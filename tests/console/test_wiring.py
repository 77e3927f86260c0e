"""Wiring: ids are unique across pages, and every callback names components that exist."""

from __future__ import annotations

from collections import Counter

import pytest
from dash import Dash

from clew.app import create_app
from clew.exemplars import Exemplar, QueryApi
from console import ids, panels, shell
from console.pages import paths
from console.state import ViewState

from . import fakes
from .tree import walk

TEMPO = QueryApi("tempo", "http://tempo:3200")


def page_trees() -> dict[str, list]:
    """Every component tree the console can show, by where it comes from."""
    trees = {
        "shell": [shell.layout(demo=True)],  # holds an empty page frame
        "not found": [shell.not_found("/x")],
    }
    for path, page in shell.PAGES.items():
        trees[path] = [page.layout()]
    # Panels are drawn by callbacks; their ids belong to the map page too.
    view = {
        "nodes": [
            {
                "id": "b",
                "kind": "service",
                "requests": 1,
                "errors": 0,
                "error_ratio": 0.0,
                "rps": 1.0,
            }
        ],
        "edges": [
            {
                "client": "a",
                "server": "b",
                "connection_type": "direct",
                "sources": [],
                "count": 1,
                "errors": 0,
                "error_ratio": 0.0,
                "rps": 1.0,
                "p50_ms": 1,
                "p95_ms": 1,
                "p99_ms": 1,
            }
        ],
    }
    series = [{"minute": 1, "rps": 1.0, "errors": 0, "error_ratio": 0.0, "p95_ms": 1.0}]
    trees["/map"].append(panels.edge_panel(view, "a", "b", series))
    finding = {"severity": "error", "rule": "r", "message": "m"}
    trees["/map"].append(
        panels.node_panel(view, "b", series=series, blast_radius=["a"], findings=[finding])
    )
    # The Paths page draws its detail (small map, waterfall, failing span) from a callback.
    # (a fetched trace: every part a stored one has, and the notes of where it came from)
    fetched = Exemplar("t1", fakes.TRACE, fetched_from=TEMPO, unread=("x: y",), unread_count=1)
    trees["/paths"].append(paths.detail(fakes.PATHS[1], fetched, ViewState()))
    return trees


def ids_in(trees: list) -> list[str]:
    return [c.id for tree in trees for c in walk(tree) if getattr(c, "id", None) is not None]


@pytest.fixture(scope="module")
def dash_app(tmp_path_factory) -> Dash:
    folder = tmp_path_factory.mktemp("wiring")
    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/clew.db", "AUTH": False})
    return app.extensions["clew.console"]


def test_component_ids_are_unique_within_and_across_pages():
    owners: dict[str, set[str]] = {}
    for where, trees in page_trees().items():
        counts = Counter(ids_in(trees))
        assert [i for i, n in counts.items() if n > 1] == [], where
        for component_id in counts:
            owners.setdefault(component_id, set()).add(where)
    shared = {i: sorted(w) for i, w in owners.items() if len(w) > 1}
    assert shared == {}


def test_every_id_is_declared_in_the_ids_module():
    declared = {v for v in vars(ids).values() if isinstance(v, str)}
    for page in (
        ids.Overview,
        ids.ServiceMap,
        ids.Paths,
        ids.Endpoints,
        ids.Contracts,
        ids.Sources,
        ids.Governance,
        ids.Admin,
    ):
        declared |= {v for k, v in vars(page).items() if k.isupper() and isinstance(v, str)}
        if hasattr(page, "TOOLBAR"):  # the Sources page has no window or filters
            declared |= {v for k, v in vars(page.TOOLBAR).items() if k.isupper()}
    declared |= {ids.nav_link(path) for path in shell.PAGES}
    every = {i for trees in page_trees().values() for i in ids_in(trees)}
    assert every - declared == set()


def _outputs(key: str) -> list[str]:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [part.split("@")[0].rsplit(".", 1)[0] for part in parts]


def test_every_callback_names_existing_components(dash_app):
    present = {i for trees in page_trees().values() for i in ids_in(trees)}
    assert dash_app.callback_map, "no callbacks registered"
    for key, callback in dash_app.callback_map.items():
        named = _outputs(key) + [d["id"] for d in callback["inputs"] + callback["state"]]
        missing = sorted(set(named) - present)
        assert missing == [], key


def test_each_page_registers_its_callbacks_once(dash_app):
    outputs = [o for key in dash_app.callback_map for o in _outputs(key)]
    assert outputs.count(ids.PAGE) == 1
    assert outputs.count(ids.ServiceMap.GRAPH) == 2  # elements, and the stylesheet
    assert outputs.count(ids.Paths.DETAIL) == 1
    assert len(dash_app.callback_map) == 29


def test_create_app_twice_gives_two_independent_consoles(tmp_path):
    first = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "AUTH": False})
    second = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/b.db", "DEMO": True, "AUTH": False})
    one, two = first.extensions["clew.console"], second.extensions["clew.console"]
    assert one is not two and one.server is first and two.server is second
    assert one.callback_map.keys() == two.callback_map.keys()
    assert len(one.callback_map) == len(two.callback_map) == 29
    banner = [c for c in walk(two.layout) if getattr(c, "id", None) == ids.BANNER]
    assert banner and not [c for c in walk(one.layout) if getattr(c, "id", None) == ids.BANNER]
