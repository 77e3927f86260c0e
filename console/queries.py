"""The console's only door into the kernel: thin functions returning view models.

Each takes the engine and a resolved window (see ``console.state``) and calls ``clew.metrics``,
so the console shows exactly what the JSON API and ``clew graph --json`` show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Engine

from clew import metrics
from clew.store import accounts
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


@dataclass
class NodeDetail:
    """What the node panel shows beyond the graph view: endpoints, inbound series, dependents."""

    endpoints: list[dict]
    series: list[dict]
    blast_radius: list[str]


def node_detail(engine: Engine, window: Window, name: str) -> NodeDetail:
    """The endpoints ``name`` serves, its inbound per-minute series, and who depends on it."""
    with engine.connect() as conn:
        return NodeDetail(
            endpoints=metrics.service_endpoints(conn, window, name),
            series=metrics.edge_series(conn, window, None, name),
            blast_radius=metrics.blast_radius(conn, window, name),
        )


def edge_endpoints(engine: Engine, window: Window, client: str, server: str) -> list[dict]:
    """The endpoints ``client`` calls on ``server``, with their metrics."""
    with engine.connect() as conn:
        return metrics.edge_endpoints(conn, window, client, server)


def blast_radius(engine: Engine, window: Window, node: str) -> list[str]:
    """Sorted names of every node that depends on ``node``, directly or transitively."""
    with engine.connect() as conn:
        return metrics.blast_radius(conn, window, node)


@dataclass
class GraphDiff:
    """A window compared with the one before it, and what is known of the nodes it names."""

    old: Window
    new: Window
    diff: dict
    #: name → kind, namespace, environment, parent of every node an edge of the diff touches.
    nodes: dict[str, dict]


def graph_diff(engine: Engine, new: Window, old: Window | None = None) -> GraphDiff:
    """Edges added, removed and changed from ``old`` (by default the window of the same length
    just before ``new``) to ``new``: ``clew.metrics.graph_diff``, with the nodes it names."""
    with engine.connect() as conn:
        if old is None:
            old = metrics.previous_window(new, store_queries.data_range(conn)[1])
        diff = metrics.graph_diff(conn, old, new)
        known = store_queries.nodes(conn)
    names = {
        name
        for edge in [*diff["added"], *diff["removed"], *diff["changed"]]
        for name in (edge["client"], edge["server"])
    }
    nodes = {
        name: {
            "kind": node.kind,
            "namespace": node.namespace,
            "environment": node.environment,
            "parent": node.parent,
        }
        for name, node in known.items()
        if name in names
    }
    return GraphDiff(old=old, new=new, diff=diff, nodes=nodes)


def failing_paths(engine: Engine, window: Window, limit: int = 50) -> list[dict]:
    """Failing integration paths (entry operation → … → failing edge), worst first."""
    with engine.connect() as conn:
        return metrics.failing_paths(conn, window, limit=limit)


def node_kinds(engine: Engine) -> dict[str, str]:
    """The kind of every known node, by name (for drawing shapes off the map)."""
    with engine.connect() as conn:
        return {name: node.kind for name, node in store_queries.nodes(conn).items()}


def sources(engine: Engine) -> dict:
    """What the Sources page shows: every source read, and the newest quarantined input."""
    with engine.connect() as conn:
        return {
            "sources": store_queries.sources(conn),
            "quarantine": store_queries.quarantine(conn),
        }


def endpoints(engine: Engine, window: Window) -> dict:
    """What the Endpoints page shows: the inventory, and declared against observed dependencies."""
    from clew import inventory

    with engine.connect() as conn:
        return {
            "endpoints": inventory.as_json(inventory.inventory(conn, window)),
            "dependencies": [asdict(d) for d in inventory.dependencies(conn, window)],
            "data_range": store_queries.data_range(conn),
        }


def contract_versions(engine: Engine) -> list[dict]:
    """Every stored contract version, by contract, oldest first (the Contracts page)."""
    from clew.store import contracts

    with engine.connect() as conn:
        return [asdict(version) for version in contracts.versions(conn)]


def contract_diff(engine: Engine, window: Window, old_hash: str, new_hash: str) -> dict | None:
    """The changes between two stored versions, breaking ones with the consumers seen in
    ``window``; None when either version is not stored."""
    from clew import diff
    from clew.store import contracts

    with engine.connect() as conn:
        old = contracts.version(conn, old_hash)
        new = contracts.version(conn, new_hash)
        if old is None or new is None:
            return None
        found = diff.changes(old[1], new[1])
        served = diff.observed(conn, window, old[2], old[3])
    found = diff.with_consumers(found, served)
    return {
        "old": old[0],
        "new": new[0],
        "service": served.service,
        "gateways": served.gateways,
        "changes": [asdict(change) for change in found],
    }


# --- Governance: findings, waivers and the compliance report ----------------------------------


def _plain_times(row: dict) -> dict:
    """``row`` with its datetimes as ISO 8601 text, so the page and the API show the same."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


@cache
def known_rules() -> dict[str, dict]:
    """The built-in rules' descriptions, severities and packs, by id (read once: the packs
    are files of the package). Not to be changed by callers."""
    from policies.engine import default_rules

    return default_rules().table()


def lapse_waivers(engine: Engine, now: datetime) -> None:
    """Open again the findings whose waiver lapsed before ``now``, so that what the console
    shows never holds a waived finding its waiver no longer covers (a write only when some
    did lapse)."""
    from clew.store import findings as stored

    with engine.begin() as conn:
        stored.reopen_expired(conn, now)


def governance(
    engine: Engine, now: datetime, team: str | None = None, system: str | None = None
) -> dict:
    """The compliance report of ``team`` and ``system`` (all when None) at ``now``, as data
    (``policies.reports``' model, the document ``/api/governance`` serves)."""
    from policies import reports

    lapse_waivers(engine, now)
    with engine.connect() as conn:
        report = reports.build(conn, now=now, team=team, system=system, rules=known_rules())
    return report.as_dict()


def governance_report(
    engine: Engine, now: datetime, fmt: str, team: str | None = None, system: str | None = None
) -> bytes:
    """The compliance report of ``team`` and ``system`` rendered as ``fmt`` (html, pdf, csv,
    json, sarif or junit)."""
    from policies import reports

    lapse_waivers(engine, now)
    with engine.connect() as conn:
        report = reports.build(conn, now=now, team=team, system=system, rules=known_rules())
    return reports.render(report, fmt)


def findings(
    engine: Engine,
    *,
    states: Sequence[str] = ("open", "waived"),
    team: str | None = None,
    system: str | None = None,
) -> list[dict]:
    """Stored findings in ``states`` (of ``team`` and ``system`` when given), most severe
    first, times as ISO text; ``ValueError`` for an unknown state."""
    from clew.store import findings as stored

    with engine.connect() as conn:
        return [
            _plain_times(f) for f in stored.findings(conn, states=states, team=team, system=system)
        ]


def waivers(engine: Engine, now: datetime, soon: timedelta | None = None) -> list[dict]:
    """Every waiver, soonest expiry first, with its state at ``now`` (active, expiring within
    ``soon``, expired, revoked), the findings it waives now (``findings``) and the current
    findings its rule and subject patterns cover (``covers``: rule, subject, state)."""
    from clew.store import findings as stored
    from policies.reports.model import EXPIRING_WITHIN

    soon = EXPIRING_WITHIN if soon is None else soon
    lapse_waivers(engine, now)
    with engine.connect() as conn:
        found = stored.list_waivers(conn)
        current = stored.findings(conn)
        waived = stored.covered_counts(conn)
    return [
        _plain_times(
            w
            | {
                "state": stored.waiver_state(w, now, soon),
                "findings": waived.get(w["id"], 0),
                "covers": [
                    {"rule": f["rule"], "subject": f["subject"], "state": f["state"]}
                    for f in current
                    if stored.covers(w, f["rule"], f["subject"])
                ],
            }
        )
        for w in found
    ]


# The console's writes: waivers, behind ``console.access.may_change_waivers``.


def add_waiver(
    engine: Engine,
    now: datetime,
    *,
    rule: str,
    subject: str,
    reason: str,
    approver: str,
    expires: object,
    created_by: str | None = None,
) -> dict:
    """Store a waiver and waive the open findings it covers; returns ``{"id", "waived"}``.

    ``ValueError`` with a message for the user when a field is missing, the expiry is not a
    date after ``now``, or the rule pattern names no rule known or found."""
    from policies import run

    added = run.add_waiver(
        engine,
        now,
        rule=rule,
        subject=subject,
        reason=reason,
        approver=approver,
        expires=expires,
        known_rules=known_rules(),
        origin="console",
        created_by=created_by,
    )
    return {"id": added["id"], "waived": added["waived"]}


def revoke_waiver(engine: Engine, waiver_id: int, now: datetime) -> bool:
    """Revoke a waiver (its findings open again); False when no such active waiver exists."""
    from clew.store import findings as stored

    with engine.begin() as conn:
        return stored.revoke_waiver(conn, waiver_id, now)


# Accounts and API tokens, behind ``console.access.may_administer`` (the admin role).


def users(engine: Engine) -> list[dict]:
    """Every account for the Admin page: name, role, how it logs in, when, and its state."""
    with engine.begin() as conn:
        found = accounts.list_users(conn)
    return [
        {
            "username": u["username"],
            "role": u["role"],
            "login": f"single sign-on ({u['oidc_issuer']})" if u["oidc_issuer"] else "password",
            "created": _minute(u["created_at"]),
            "last_login": _minute(u["last_login_at"]) or "never",
            "state": "disabled" if u["disabled_at"] else "enabled",
        }
        for u in found
    ]


def tokens(engine: Engine) -> list[dict]:
    """Every API token for the Admin page (never its text, which is not kept), newest first."""
    with engine.begin() as conn:
        found = accounts.list_tokens(conn)
    return [
        {
            "id": t["id"],
            "name": t["name"],
            "scope": t["scope"],
            "created": _minute(t["created_at"]),
            "last_used": _minute(t["last_used_at"]) or "never",
            "state": f"revoked {_minute(t['revoked_at'])}" if t["revoked_at"] else "in force",
        }
        for t in found
    ]


def _minute(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None


def add_user(engine: Engine, username: str, password: str, role: str, now: datetime) -> None:
    """Add a local account; ``ValueError`` with the reason when it cannot be added."""
    with engine.begin() as conn:
        accounts.add_user(conn, username, password, role, now)


def set_user_role(engine: Engine, username: str, role: str, actor: str | None) -> None:
    """Give ``username`` ``role``; ``NoSuchAccount`` when there is no such account,
    ``LockoutRefused`` when ``actor`` (the admin asking) would change their own account or no
    enabled admin would be left."""
    with engine.begin() as conn:
        _check_change(conn, username, actor, "change the role of", role=role)
        if not accounts.set_role(conn, username, role):
            raise accounts.NoSuchAccount(f"there is no account {username!r}")


def set_user_disabled(
    engine: Engine, username: str, disabled: bool, now: datetime, actor: str | None
) -> None:
    """Disable ``username`` (its sessions end at their next request) or enable it again;
    errors as ``set_user_role``."""
    with engine.begin() as conn:
        if disabled:
            _check_change(conn, username, actor, "disable", disable=True)
        if not accounts.set_disabled(conn, username, now if disabled else None):
            raise accounts.NoSuchAccount(f"there is no account {username!r}")


def _check_change(conn, username: str, actor: str | None, verb: str, **change) -> None:
    if actor is not None and username == actor:
        raise accounts.LockoutRefused(f"you cannot {verb} your own account here; another admin can")
    if accounts.count_admins(conn) and not accounts.leaves_an_admin(conn, username, **change):
        raise accounts.LockoutRefused(
            f"that would leave no enabled admin: {username!r} is the last one"
        )


def create_token(engine: Engine, name: str, scope: str, now: datetime) -> tuple[int, str]:
    """Make an API token; returns its id and its text, shown once and never kept."""
    with engine.begin() as conn:
        return accounts.create_token(conn, name, scope, now)


def revoke_token(engine: Engine, token_id: int, now: datetime) -> bool:
    """Revoke an API token; False when there is no such token in force."""
    with engine.begin() as conn:
        return accounts.revoke_token(conn, token_id, now)


def open_findings(engine: Engine) -> list[dict]:
    """The open findings now (for the map's badges and panels)."""
    from clew.store import utcnow

    lapse_waivers(engine, utcnow())
    return findings(engine, states=("open",))


def contract_services(engine: Engine, window: Window) -> dict[str, str]:
    """``Title@version`` → the service serving it in ``window`` (from the inventory)."""
    from clew import inventory

    with engine.connect() as conn:
        found = inventory.inventory(conn, window)
    served: dict[str, str] = {}
    for endpoint in found:
        if endpoint.contract and not endpoint.service.startswith("["):
            served.setdefault(endpoint.contract, endpoint.service)
    return served
