"""The window diff as an overlay on the map's graph view: marks on its edges, and the edges (and
nodes) of the previous window that are gone, added back so they can be drawn dashed.

Pure data in, data out: ``clew.metrics.graph_diff`` decides what changed; this only marks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: A metric named in a diff's ``changes`` → the edge key holding its value.
_METRIC_KEYS = {"error_ratio": "error_ratio", "p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms"}


def _key(edge: Mapping) -> tuple[str, str, str]:
    return edge["client"], edge["server"], edge["connection_type"]


def change_text(change: Mapping) -> list[str]:
    """What changed on an edge, in words with the direction: ``["error ratio ↑"]``."""
    out = []
    for metric in change.get("changes") or []:
        key = _METRIC_KEYS.get(metric, metric)
        old, new = (change.get("old") or {}).get(key), (change.get("new") or {}).get(key)
        arrow = ""
        if isinstance(old, int | float) and isinstance(new, int | float) and old != new:
            arrow = " ↑" if new > old else " ↓"
        out.append(metric.replace("_", " ") + arrow)
    return out


def with_diff(view: dict, diff: Mapping, known: Mapping[str, Mapping] | None = None) -> dict:
    """``view`` with each edge marked ``diff``: ``added``, ``changed`` (with ``changes`` in words)
    or, for the previous window's edges that are gone, ``removed``.

    Nodes that only a removed edge touches are added from ``known`` (name → kind, namespace,
    environment, parent), marked ``removed`` too, so filters and shapes still apply to them.
    """
    known = known or {}
    added = {_key(e) for e in diff.get("added", ())}
    changed = {_key(c): change_text(c) for c in diff.get("changed", ())}
    edges = []
    for edge in view["edges"]:
        key = _key(edge)
        if key in added:
            edge = {**edge, "diff": "added"}
        elif key in changed:
            edge = {**edge, "diff": "changed", "changes": changed[key]}
        edges.append(edge)
    nodes = list(view["nodes"])
    present = {n["id"] for n in nodes}
    for edge in diff.get("removed", ()):
        edges.append({**edge, "diff": "removed"})
        for name in (edge["client"], edge["server"]):
            if name in present:
                continue
            present.add(name)
            nodes.append(_absent_node(name, known, diff="removed"))
    return {**view, "nodes": nodes, "edges": edges}


def counts(edges: list[dict]) -> dict[str, int]:
    """How many of ``edges`` the overlay marks added, removed and changed."""
    out = {"added": 0, "removed": 0, "changed": 0}
    for edge in edges:
        if edge.get("diff") in out:
            out[edge["diff"]] += 1
    return out


def current(view: dict) -> dict:
    """``view`` without the previous window's removed edges and nodes: what the window holds."""
    return {
        **view,
        "nodes": [n for n in view["nodes"] if n.get("diff") != "removed"],
        "edges": [e for e in view["edges"] if e.get("diff") != "removed"],
    }


def thresholds_text(thresholds: Mapping[str, float]) -> str:
    """What the diff counts as a change, in words (``clew.graph.diff``'s thresholds)."""
    known = dict(thresholds)
    parts = []
    if "error_ratio" in known:
        parts.append(f"error ratio moved by {known.pop('error_ratio') * 100:g} points")
    if "p95" in known:
        text = f"p95 moved by {known.pop('p95') * 100:g} %"
        if "p95_ms" in known:
            text += f" and {known.pop('p95_ms'):g} ms"
        parts.append(text)
    out = " or ".join(parts)
    if "min_count" in known:
        out += f", on edges with {known.pop('min_count'):g} calls in each window"
    extra = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in known.items())
    return "; ".join(p for p in (out, extra) if p)


def with_declared(
    view: dict, dependencies: Sequence[Mapping], known: Mapping[str, Mapping] | None = None
) -> dict:
    """``view`` with the catalog's declarations over it: each observed edge no declaration covers
    marked ``declared: undeclared``, and each declared dependency not observed in the window
    added as an edge marked ``declared: unused`` (its nodes added when the window has none,
    marked the same), so both can be drawn (``clew.inventory.dependencies`` decides)."""
    known = known or {}
    undeclared = {(d["client"], d["server"]) for d in dependencies if d["status"] == "undeclared"}
    edges = []
    for edge in view["edges"]:
        if (edge["client"], edge["server"]) in undeclared:
            edge = {**edge, "declared": "undeclared"}
        edges.append(edge)
    nodes = list(view["nodes"])
    present = {n["id"] for n in nodes}
    for dependency in dependencies:
        if dependency["status"] != "unused":
            continue
        client, server = dependency["client"], dependency["server"]
        edges.append(
            {
                "client": client,
                "server": server,
                "connection_type": "direct",
                "count": 0,
                "errors": 0,
                "error_ratio": 0.0,
                "rps": 0.0,
                "p95_ms": None,
                "declared": "unused",
            }
        )
        for name in (client, server):
            if name in present:
                continue
            present.add(name)
            nodes.append(_absent_node(name, known, declared="unused"))
    return {**view, "nodes": nodes, "edges": edges}


def declared_counts(edges: list[dict]) -> dict[str, int]:
    """How many of ``edges`` are undeclared, and how many declared dependencies are unused."""
    out = {"undeclared": 0, "unused": 0}
    for edge in edges:
        if edge.get("declared") in out:
            out[edge["declared"]] += 1
    return out


def _absent_node(name: str, known: Mapping[str, Mapping], **mark: str) -> dict:
    """A node the window has no traffic of, drawn for an overlay's edge: its kind and place from
    ``known`` (name → kind, namespace, environment, parent), no requests, and the overlay's
    ``mark``."""
    info = known.get(name) or {}
    return {
        "id": name,
        "kind": info.get("kind") or "service",
        "namespace": info.get("namespace"),
        "environment": info.get("environment"),
        "parent": info.get("parent"),
        "requests": 0,
        "errors": 0,
        "error_ratio": 0.0,
        **mark,
    }
