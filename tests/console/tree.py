"""Walking Dash component trees in tests."""

from __future__ import annotations

from collections.abc import Iterator

from dash.development.base_component import Component


def walk(tree) -> Iterator[Component]:
    """Every component in ``tree`` (a component, a list of them, or text), depth first."""
    if isinstance(tree, list | tuple):
        for child in tree:
            yield from walk(child)
    elif isinstance(tree, Component):
        yield tree
        yield from walk(getattr(tree, "children", None))


def by_id(tree) -> dict:
    """The components of ``tree`` that have an id, by id."""
    return {c.id: c for c in walk(tree) if getattr(c, "id", None) is not None}


def texts(tree) -> str:
    """All the text in ``tree``, space-separated."""
    if tree is None:
        return ""
    if isinstance(tree, str | int | float):
        return str(tree)
    if isinstance(tree, list | tuple):
        return " ".join(texts(c) for c in tree)
    return texts(getattr(tree, "children", None))
