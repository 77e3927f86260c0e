"""The console's only door into the kernel: thin, read-only functions returning view models.

Each takes the engine and a resolved window (see ``console.state``) and calls ``clew.metrics``,
so the console shows exactly what the JSON API and ``clew graph --json`` show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Engine

from clew import metrics
from clew.store import queries as store_queries
from clew.store.queries import Window


@dataclass
class OverviewModel:
    """What the Overview page shows: the headline figures, the trend and the worst edges."""

    figures: dict
    series: list[dict]
    data_range: tuple[int | None, int | None]

    @property
    def empty(self) -> bool:
        return self.figures["calls"] == 0


@dataclass
class Facets:
    """The values the map's filters offer, from every known node."""

    namespaces: list[str]
    environments: list[str]


def graph(engine: Engine, window: Window) -> dict:
    """The dependency graph with per-edge metrics (the ``clew graph --json`` document)."""
    with engine.connect() as conn:
        return metrics.graph_view(conn, window)


def overview(engine: Engine, window: Window, worst: int = 10) -> OverviewModel:
    """Headline figures, per-minute series and the worst edges of ``window``."""
    with engine.connect() as conn:
        figures = asdict(metrics.overview(conn, window, worst=worst))
        series = metrics.edge_series(conn, window)
        first, last = store_queries.data_range(conn)
    return OverviewModel(figures=figures, series=series, data_range=(first, last))


def edge_series(engine: Engine, window: Window, client: str, server: str) -> list[dict]:
    """Per-minute rate, error ratio and p95 of one edge (all its connection types)."""
    with engine.connect() as conn:
        return metrics.edge_series(conn, window, client, server)


def data_range(engine: Engine) -> tuple[int | None, int | None]:
    """The first and last minute that hold data, to tell an empty window from an empty store."""
    with engine.connect() as conn:
        return store_queries.data_range(conn)


def facets(engine: Engine) -> Facets:
    """Namespaces and environments of every known node, sorted."""
    with engine.connect() as conn:
        nodes = store_queries.nodes(conn).values()
    return Facets(
        namespaces=sorted({n.namespace for n in nodes if n.namespace}),
        environments=sorted({n.environment for n in nodes if n.environment}),
    )
