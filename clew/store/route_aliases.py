"""Route aliases at rest (``RouteAlias``): (gateway, method, template) → the upstream's own
``http.route``, learned from the requests a gateway logged and the root spans that served them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.store import insert_ignoring_duplicates

Alias = tuple[str, str, str, str]  # gateway, method, template, route


def load(conn: Connection) -> dict[tuple[str, str, str], str]:
    """Every alias: (gateway, method, template) → route."""
    rows = conn.execute(text("SELECT gateway, method, template, route FROM route_aliases"))
    return {(gateway, method, template): route for gateway, method, template, route in rows}


def save(conn: Connection, aliases: Iterable[Alias]) -> int:
    """Keep aliases; the first route learned for a template stays. Returns how many are new."""
    columns = ("gateway", "method", "template", "route")
    return insert_ignoring_duplicates(conn, "route_aliases", columns, sorted(set(aliases)))
