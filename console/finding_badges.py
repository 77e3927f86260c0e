"""Findings placed on the map: which node or edge each finding is about, and the badge (how
many, how severe) each one carries.

Findings name their subject as text: an edge ``CLIENT → SERVER`` (``(messaging)`` after it for a
topic's), an endpoint ``SERVICE METHOD ROUTE`` (counted on its service), a service by its name,
a contract ``Title@version`` (on the service the inventory says serves it), a dependency cycle
as its members joined by `` → `` (on each member).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from policies.engine import SEVERITIES

ARROW = " → "
MESSAGING = " (messaging)"

#: A place on the map: ``("node", name)`` or ``("edge", client, server)``.
Place = tuple[str, ...]


def _edge_pair(subject: str) -> tuple[str, str] | None:
    text = subject.removesuffix(MESSAGING)
    if ARROW not in text:
        return None
    client, server = text.split(ARROW, 1)
    return client, server


def places(
    finding: Mapping,
    nodes: set[str],
    edges: set[tuple[str, str]],
    contract_services: Mapping[str, str] | None = None,
) -> list[Place]:
    """The nodes and edges among ``nodes`` and ``edges`` that ``finding`` is about."""
    kind, subject = finding.get("subject_kind"), finding["subject"]
    if kind == "cycle" or (kind == "graph" and ARROW in subject):
        members = dict.fromkeys(subject.split(ARROW))
        return [("node", m) for m in members if m in nodes]
    if kind == "edge":
        pair = _edge_pair(subject)
        return [("edge", *pair)] if pair in edges else []
    if kind == "endpoint":
        # The longest node name the subject starts with: names may hold spaces.
        owner = max((n for n in nodes if subject.startswith(n + " ")), key=len, default=None)
        return [("node", owner)] if owner else []
    if kind in ("contract", "operation"):
        contract = subject.split(" ", 1)[0] if kind == "operation" else subject
        service = (contract_services or {}).get(subject) or (contract_services or {}).get(contract)
        return [("node", service)] if service in nodes else []
    return [("node", subject)] if subject in nodes else []


def by_place(
    findings: Iterable[Mapping],
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str]],
    contract_services: Mapping[str, str] | None = None,
) -> dict[Place, list[Mapping]]:
    """Each node and edge with the findings about it, most severe first."""
    nodes, edges = set(nodes), set(edges)
    found: dict[Place, list[Mapping]] = {}
    for finding in findings:
        for place in places(finding, nodes, edges, contract_services):
            found.setdefault(place, []).append(finding)
    for listed in found.values():
        listed.sort(key=lambda f: (_rank(f["severity"]), f["rule"], f["subject"]))
    return found


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def badge(findings: Sequence[Mapping]) -> dict | None:
    """``{"count", "worst"}`` for a node's or an edge's findings; None when it has none."""
    if not findings:
        return None
    worst = min((f["severity"] for f in findings), key=_rank)
    return {"count": len(findings), "worst": worst}


def badges(placed: Mapping[Place, Sequence[Mapping]]) -> dict[Place, dict]:
    """The badge of every place that has findings."""
    return {place: b for place, listed in placed.items() if (b := badge(listed))}
