"""Dependency rules: forbidden edges (by name pattern, node kind, or what the catalog says of
the two ends: type, tag, system, lifecycle), dependency cycles, and dependencies traffic shows
that the catalog does not declare, or declares and traffic never shows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from policies.engine import CHECKS, Context, Hit, NoOptions
from policies.subjects import Owners, owners

if TYPE_CHECKING:  # the graph and the store are read only when a store is evaluated
    import networkx as nx

    from clew.store.queries import EdgeTotals

#: clew.graph.CYCLE_LENGTH_BOUND, written here so that loading the pack does not import
#: networkx (a test holds the two equal).
CYCLE_LENGTH_BOUND = 8


@dataclass(frozen=True)
class Selector:
    """Which nodes an end of a forbidden edge is: every field given must hold (an empty
    selector is every node)."""

    name: str | None = None  # a glob of the node's name
    kind: list[str] = field(default_factory=list)  # service, database, external, broker, ...
    type: list[str] = field(default_factory=list)  # the catalog's spec.type: website, service
    tag: list[str] = field(default_factory=list)  # any of these catalog tags
    system: list[str] = field(default_factory=list)
    lifecycle: list[str] = field(default_factory=list)

    def matches(self, node: str, kind: str | None, who: Owners) -> bool:
        if self.name is not None and not fnmatchcase(node, self.name):
            return False
        if self.kind and kind not in self.kind:
            return False
        entity = who.entities.get(node)
        if self.type and (entity is None or entity.get("type") not in self.type):
            return False
        if self.tag and (entity is None or not set(entity.get("tags") or ()) & set(self.tag)):
            return False
        if self.system and who.of_service(node)[1] not in self.system:
            return False
        return not (
            self.lifecycle and (entity is None or entity.get("lifecycle") not in self.lifecycle)
        )

    def describe(self) -> str:
        parts = [f"name {self.name}"] if self.name else []
        for label in ("kind", "type", "tag", "system", "lifecycle"):
            values = getattr(self, label)
            if values:
                parts.append(f"{label} {'/'.join(values)}")
        return ", ".join(parts) or "any node"


@dataclass(frozen=True)
class ForbiddenOptions:
    caller: Selector
    callee: Selector
    because: str = ""  # said in each finding: the rule's reason


def _kinds(context: Context) -> dict[str, str]:
    from clew.store import queries

    nodes = context.cached("nodes", lambda: queries.nodes(context.conn))
    return {name: node.kind for name, node in nodes.items()}


def _owners(context: Context) -> Owners:
    return context.cached("owners", lambda: owners(context.conn))


@CHECKS.register("forbidden-dependency", "edge", ForbiddenOptions)
def forbidden_dependency(edge: EdgeTotals, options: ForbiddenOptions, context: Context):
    """An edge whose caller and callee match a forbidden pair of selectors."""
    kinds, who = _kinds(context), _owners(context)
    if options.caller.matches(
        edge.client, kinds.get(edge.client, "service"), who
    ) and options.callee.matches(edge.server, kinds.get(edge.server, "service"), who):
        why = f": {options.because}" if options.because else ""
        yield Hit(
            f"{edge.client} calls {edge.server} ({edge.count:,} calls) — forbidden from"
            f" {options.caller.describe()} to {options.callee.describe()}{why}"
        )


@dataclass(frozen=True)
class CycleOptions:
    max_length: int = CYCLE_LENGTH_BOUND  # longest cycle looked for


@CHECKS.register("dependency-cycle", "graph", CycleOptions)
def dependency_cycle(graph: nx.MultiDiGraph, options: CycleOptions, context: Context):
    """A cycle of calls between services (each one found once, from its smallest name)."""
    from clew import graph as graphs

    kinds = _kinds(context)
    who = _owners(context)
    for cycle in graphs.cycles(graph, options.max_length):
        if any(kinds.get(node, "service") != "service" for node in cycle):
            continue  # through a topic or a gateway: not a call cycle
        loop = " → ".join([*cycle, cycle[0]])
        team, system = who.of_service(cycle[0])
        yield Hit(
            f"{len(cycle)} services call each other in a loop: {loop}",
            subject=loop,
            kind="cycle",
            team=team,
            system=system,
        )


def _dependencies(context: Context):
    from clew.inventory import dependencies

    return context.cached("dependencies", lambda: dependencies(context.conn, context.window))


def _dependency_hits(context: Context, status: str, message) -> Iterator[Hit]:
    """A hit on each of the catalog's dependencies in ``status``, named as an edge and owned
    by its caller's team, worded by ``message``."""
    who = _owners(context)
    for dependency in _dependencies(context):
        if dependency.status == status:
            team, system = who.of_service(dependency.client)
            yield Hit(
                message(dependency),
                subject=f"{dependency.client} → {dependency.server}",
                kind="edge",
                team=team,
                system=system,
            )


@CHECKS.register("undeclared-dependency", "graph")
def undeclared_dependency(graph: nx.MultiDiGraph, options: NoOptions, context: Context):
    """A service of the catalog calling something its catalog entry does not declare
    (``dependsOn``, or ``consumesApis`` of an API the callee provides)."""
    return _dependency_hits(
        context,
        "undeclared",
        lambda d: (
            f"{d.client} calls {d.server} ({d.calls:,} calls in the window), which its"
            " catalog entry does not declare"
        ),
    )


@CHECKS.register("unused-dependency", "graph")
def unused_dependency(graph: nx.MultiDiGraph, options: NoOptions, context: Context):
    """A dependency the catalog declares that traffic never shows in the window."""
    return _dependency_hits(
        context,
        "unused",
        lambda d: (
            f"{d.client} declares a dependency on {d.server}"
            f" ({'; '.join(d.declared_by)}) that no call in the window shows"
        ),
    )
