"""The compliance report's content, read from the store once and handed to every renderer.

What is wrong now (open and waived findings, counted by rule, severity, team, system and
state), what changed (the findings present at the last run of this period and of the one of
the same length before it, what is new and what was resolved since the period's start, and the
runs' open findings by severity for a chart), how each team and system scores, and which
waivers accept what until when.

A **scorecard** reads the latest run's coverage: the (rule, subject) evaluations of a team or
system and how many of them found something. Its score is the passing share, ``100 × (evaluated
− failing) / evaluated``, rounded to one decimal; its grade is A at 90 or more, B at 80, C at 70,
D at 60, else F. A team or system with no evaluation has neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from clew.store import findings as store
from policies.engine import SEVERITIES

#: The period a report covers when no start is given.
DEFAULT_PERIOD = timedelta(days=30)
#: A waiver expiring within this is shown as ``expiring``.
EXPIRING_WITHIN = timedelta(days=14)
#: Grades by the lowest score that earns them, best first.
GRADES = (("A", 90.0), ("B", 80.0), ("C", 70.0), ("D", 60.0))
#: The name counted for a finding or scorecard with no team (or no system).
NONE = "(none)"
NO_RUN = "No policy evaluation has run yet: there is nothing to report."


def grade(score: float | None) -> str | None:
    """The letter for a score in percent (A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F)."""
    if score is None:
        return None
    return next((letter for letter, lowest in GRADES if score >= lowest), "F")


def score(evaluated: int, failing: int) -> float | None:
    """The passing share of ``evaluated`` in percent, one decimal; None when nothing was."""
    if evaluated <= 0:
        return None
    return round(100.0 * (evaluated - failing) / evaluated, 1)


@dataclass
class Report:
    """A compliance report: every figure the renderers draw, as plain data."""

    generated_at: datetime
    team: str | None
    system: str | None
    since: datetime
    #: False when no evaluation has run: the report then says so and holds nothing else.
    evaluated: bool
    message: str = ""
    last_run: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    trend: dict[str, Any] = field(default_factory=dict)
    scorecards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    #: Rule id → description, severity and pack, for every rule a finding names.
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: times as ISO 8601 text."""
        return _plain(
            {
                "generated_at": self.generated_at,
                "filters": {"team": self.team, "system": self.system},
                "since": self.since,
                "evaluated": self.evaluated,
                "message": self.message,
                "last_run": self.last_run,
                "findings": self.findings,
                "counts": self.counts,
                "trend": self.trend,
                "scorecards": self.scorecards,
                "waivers": self.waivers,
                "rules": self.rules,
            }
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def build(
    conn: Connection,
    *,
    now: datetime,
    team: str | None = None,
    system: str | None = None,
    since: datetime | None = None,
    rules: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """The report at ``now`` on the findings of ``team`` and ``system`` (all when None), its
    trend over ``since``..now (default: the last 30 days) against the period of the same
    length before. ``rules`` (id → description, severity, pack) describes the rules; a rule
    it does not know is described by its id."""
    since = store.aware(since) if since is not None else now - DEFAULT_PERIOD
    report = Report(generated_at=now, team=team, system=system, since=since, evaluated=False)
    latest = store.latest_run(conn)
    if latest is None:
        report.message = NO_RUN
        report.trend = _empty_trend(now, since)
        return report
    report.evaluated = True
    report.last_run = {
        "id": latest["id"],
        "at": latest["started_at"],
        "rules": latest["rules"],
        "findings": latest["findings"],
    }
    waivers = store.list_waivers(conn)
    by_id = {w["id"]: w for w in waivers}
    current = store.findings(conn, team=team, system=system)
    for finding in current:
        waiver = by_id.get(finding["waiver_id"]) if finding["state"] == "waived" else None
        finding["waiver"] = _waiver_note(waiver) if waiver else None
    report.findings = current
    report.counts = _counts(current)
    report.trend = _trend(conn, now, since, team, system)
    report.scorecards = _scorecards(latest["coverage"], current, team, system)
    filtered = team is not None or system is not None
    report.waivers = _waivers(waivers, current, now, filtered=filtered)
    report.rules = _rules(current, rules or {})
    return report


def _waiver_note(waiver: Mapping[str, Any]) -> dict[str, Any]:
    return {k: waiver[k] for k in ("id", "reason", "approver", "expires_at")}


def _by(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    counted = Counter(item[key] if item[key] is not None else NONE for item in items)
    return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))


def _by_severity(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counted = Counter(item["severity"] for item in items)
    return {s: counted.get(s, 0) for s in SEVERITIES}


def _counts(current: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    states = Counter(f["state"] for f in current)
    return {
        "rule": _by(current, "rule"),
        "severity": _by_severity(current),
        "team": _by(current, "team"),
        "system": _by(current, "system"),
        "state": {"open": states.get("open", 0), "waived": states.get("waived", 0)},
    }


def _empty_trend(now: datetime, since: datetime) -> dict[str, Any]:
    length = now - since
    return {
        "current": _snapshot(since, now, None, []),
        "previous": _snapshot(since - length, since, None, []),
        "change": {"open": 0, "waived": 0},
        "new": [],
        "resolved": [],
        "series": [],
    }


def _snapshot(
    start: datetime, end: datetime, run: Mapping[str, Any] | None, present: list[dict[str, Any]]
) -> dict[str, Any]:
    """A period: its bounds, its last run, and the findings present at that run."""
    opened = [f for f in present if f["state"] == "open"]
    return {
        "start": start,
        "end": end,
        "run": {"id": run["id"], "at": run["started_at"]} if run else None,
        "open": len(opened),
        "waived": len(present) - len(opened),
        "severity": _by_severity(opened),
        "findings": [
            {k: f[k] for k in ("fingerprint", "rule", "severity", "subject", "state")}
            for f in present
        ],
    }


def _trend(
    conn: Connection, now: datetime, since: datetime, team: str | None, system: str | None
) -> dict[str, Any]:
    length = now - since
    start = since - length
    runs = store.runs_between(conn, start, now, team=team, system=system)
    before = [r for r in runs if r["started_at"] < since]
    during = [r for r in runs if r["started_at"] >= since]
    periods = {}
    for name, low, high, in_period in (
        ("previous", start, since, before),
        ("current", since, now, during),
    ):
        last = in_period[-1] if in_period else None
        present = store.run_findings(conn, last["id"], team=team, system=system) if last else []
        periods[name] = _snapshot(low, high, last, present)
    everything = store.findings(conn, states=store.STATES, team=team, system=system)
    new = [f for f in everything if f["first_seen_at"] >= since]
    resolved = [
        f
        for f in everything
        if f["state"] == "resolved" and f["resolved_at"] is not None and f["resolved_at"] >= since
    ]
    keep = ("fingerprint", "rule", "severity", "subject", "team", "system", "state")
    return {
        **periods,
        "change": {
            "open": periods["current"]["open"] - periods["previous"]["open"],
            "waived": periods["current"]["waived"] - periods["previous"]["waived"],
        },
        "new": [{**{k: f[k] for k in keep}, "first_seen_at": f["first_seen_at"]} for f in new],
        "resolved": [
            {**{k: f[k] for k in keep}, "resolved_at": f["resolved_at"]} for f in resolved
        ],
        "series": [
            {
                "run": r["id"],
                "at": r["started_at"],
                "open": {s: r["counts"].get(s, 0) for s in SEVERITIES},
                "waived": r["counts"].get("waived", 0),
            }
            for r in runs
        ],
    }


def _scorecards(
    coverage: list[list[Any]],
    current: list[dict[str, Any]],
    team: str | None,
    system: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """Per team and per system: evaluations, failing ones, score, grade and open findings."""
    rows = [
        (t, s, int(evaluated), int(failing))
        for t, s, evaluated, failing in coverage
        if (team is None or t == team) and (system is None or s == system)
    ]
    opened = [f for f in current if f["state"] == "open"]
    cards: dict[str, list[dict[str, Any]]] = {}
    for kind, index in (("team", 0), ("system", 1)):
        tally: dict[str, list[int]] = {}
        for row in rows:
            name = row[index] if row[index] is not None else NONE
            counts = tally.setdefault(name, [0, 0])
            counts[0] += row[2]
            counts[1] += row[3]
        for f in opened:  # owners with findings but no coverage row still get a card
            tally.setdefault(f[kind] if f[kind] is not None else NONE, [0, 0])
        cards[kind] = []
        for name, (evaluated, failing) in sorted(tally.items()):
            mine = [f for f in opened if (f[kind] if f[kind] is not None else NONE) == name]
            value = score(evaluated, failing)
            cards[kind].append(
                {
                    "name": name,
                    "evaluated": evaluated,
                    "failing": failing,
                    "score": value,
                    "grade": grade(value),
                    "open": _by_severity(mine),
                }
            )
    return cards


def _waivers(
    waivers: list[dict[str, Any]], current: list[dict[str, Any]], now: datetime, filtered: bool
) -> list[dict[str, Any]]:
    """Each waiver with its state and how many of the findings it waives; with a team or
    system filter, only the waivers that match one of its findings."""
    result = []
    for w in waivers:
        covered = sum(1 for f in current if f["state"] == "waived" and f["waiver_id"] == w["id"])
        if filtered and not any(store.covers(w, f["rule"], f["subject"]) for f in current):
            continue
        result.append(
            {
                "id": w["id"],
                "rule": w["rule"],
                "subject": w["subject"],
                "state": store.waiver_state(w, now, EXPIRING_WITHIN),
                "approver": w["approver"],
                "reason": w["reason"],
                "expires_at": w["expires_at"],
                "created_at": w["created_at"],
                "revoked_at": w["revoked_at"],
                "origin": w["origin"],
                "findings": covered,
            }
        )
    return result


def _rules(
    current: list[dict[str, Any]], known: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    described: dict[str, dict[str, Any]] = {}
    for f in current:
        if f["rule"] in described:
            continue
        given = known.get(f["rule"], {})
        described[f["rule"]] = {
            "description": given.get("description") or f["rule"],
            "severity": given.get("severity") or f["severity"],
            "pack": given.get("pack") or f.get("pack"),
        }
    for rule_id, given in known.items():
        described.setdefault(
            rule_id,
            {
                "description": given.get("description") or rule_id,
                "severity": given.get("severity"),
                "pack": given.get("pack"),
            },
        )
    return dict(sorted(described.items()))
