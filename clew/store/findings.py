"""Findings at rest: each known by its fingerprint, with first and last seen and its state; one
history row per run for trends; and the waivers that accept findings until their expiry.

A run (``record_run``) is a whole evaluation of the store. Each finding it brings is **waived**
when an active waiver covers it (its rule matches the waiver's rule, an id or a glob, and its
subject the waiver's subject glob), else **open**; a finding of an earlier run that this run did
not bring is **resolved**; a resolved one brought again opens again. A waiver is active from its
creation until its expiry (or its revocation); when it lapses, its findings open again: at the
next run, or at once through ``reopen_expired`` (which the worker and the console call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.store import executemany

STATES = ("open", "waived", "resolved")

_FINDING_COLUMNS = (
    "id, fingerprint, rule, pack, severity, subject_kind, subject, message, location, team,"
    " system, state, waiver_id, first_seen_at, last_seen_at, resolved_at, first_run_id,"
    " last_run_id"
)
_WAIVER_COLUMNS = (
    "id, rule, subject, reason, approver, expires_at, created_at, created_by, origin, revoked_at"
)


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    findings: int
    open: int
    waived: int
    opened: int  # new findings, and resolved ones found again
    resolved: int


def aware(moment: datetime | str | None) -> datetime | None:
    """A stored or given time as an aware UTC datetime (SQLite gives naive ones back, or text)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def covers(waiver: Mapping[str, Any], rule: str, subject: str) -> bool:
    """Whether ``waiver`` (its ``rule`` and ``subject`` globs) covers a finding."""
    return fnmatchcase(rule, waiver["rule"]) and fnmatchcase(subject, waiver["subject"])


def active(waiver: Mapping[str, Any], now: datetime) -> bool:
    return waiver["revoked_at"] is None and aware(waiver["expires_at"]) > now


def record_run(
    conn: Connection,
    findings: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    rules: int,
    coverage: Mapping[tuple[str | None, str | None], Sequence[int]] | None = None,
    since_minute: int | None = None,
    until_minute: int | None = None,
) -> RunSummary:
    """Store one evaluation's findings (``Finding.as_dict()`` rows): upsert each by fingerprint,
    resolve the ones no longer found, write the history rows; returns what changed."""
    coverage_rows = [
        [team, system, counts[0], counts[1]] for (team, system), counts in (coverage or {}).items()
    ]
    run_id = conn.execute(
        text(
            "INSERT INTO policy_runs (started_at, finished_at, since_minute, until_minute, rules,"
            " findings, opened, resolved, coverage) VALUES (:now, :now, :since, :until, :rules,"
            " 0, 0, 0, :coverage) RETURNING id"
        ),
        {
            "now": now,
            "since": since_minute,
            "until": until_minute,
            "rules": rules,
            "coverage": orjson.dumps(coverage_rows).decode(),
        },
    ).scalar_one()
    waivers = [w for w in list_waivers(conn) if active(w, now)]
    known = {
        row.fingerprint: row
        for row in conn.execute(text("SELECT id, fingerprint, state FROM findings"))
    }
    unique: dict[str, Mapping[str, Any]] = {}
    for finding in findings:
        unique.setdefault(finding["fingerprint"], finding)
    inserts, updates, history_keys = [], [], []
    opened = waived = 0
    for fingerprint, finding in unique.items():
        waiver = next((w for w in waivers if covers(w, finding["rule"], finding["subject"])), None)
        state = "waived" if waiver else "open"
        waived += state == "waived"
        location = orjson.dumps(
            {
                "source": finding.get("source"),
                "path": list(finding.get("path") or ()),
                "line": finding.get("line"),
                "column": finding.get("column"),
            }
        ).decode()
        row = {
            "fingerprint": fingerprint,
            "rule": finding["rule"],
            "pack": finding.get("pack"),
            "severity": finding["severity"],
            "subject_kind": finding["subject_kind"],
            "subject": finding["subject"],
            "message": finding["message"],
            "location": location,
            "team": finding.get("team"),
            "system": finding.get("system"),
            "state": state,
            "waiver_id": waiver["id"] if waiver else None,
            "now": now,
            "run": run_id,
        }
        before = known.get(fingerprint)
        if before is None:
            inserts.append(row)
            opened += 1
        else:
            updates.append(row)
            opened += before.state == "resolved"
        history_keys.append((fingerprint, state, finding["severity"]))
    if inserts:
        conn.execute(
            text(
                "INSERT INTO findings (fingerprint, rule, pack, severity, subject_kind, subject,"
                " message, location, team, system, state, waiver_id, first_seen_at,"
                " last_seen_at, resolved_at, first_run_id, last_run_id) VALUES (:fingerprint,"
                " :rule, :pack, :severity, :subject_kind, :subject, :message, :location, :team,"
                " :system, :state, :waiver_id, :now, :now, NULL, :run, :run)"
            ),
            inserts,
        )
    if updates:
        conn.execute(
            text(
                "UPDATE findings SET rule = :rule, pack = :pack, severity = :severity,"
                " subject_kind = :subject_kind, subject = :subject, message = :message,"
                " location = :location, team = :team, system = :system, state = :state,"
                " waiver_id = :waiver_id, last_seen_at = :now, resolved_at = NULL,"
                " last_run_id = :run WHERE fingerprint = :fingerprint"
            ),
            updates,
        )
    gone = [
        {"id": row.id, "now": now}
        for fingerprint, row in known.items()
        if fingerprint not in unique and row.state != "resolved"
    ]
    if gone:
        conn.execute(
            text(
                "UPDATE findings SET state = 'resolved', waiver_id = NULL, resolved_at = :now"
                " WHERE id = :id"
            ),
            gone,
        )
    ids = dict(
        conn.execute(
            text("SELECT fingerprint, id FROM findings WHERE last_run_id = :run"), {"run": run_id}
        ).all()
    )
    executemany(
        conn,
        "INSERT INTO finding_history (run_id, finding_id, state, severity) VALUES (?, ?, ?, ?)",
        [(run_id, ids[fp], state, severity) for fp, state, severity in history_keys],
    )
    conn.execute(
        text(
            "UPDATE policy_runs SET findings = :findings, opened = :opened, resolved = :resolved"
            " WHERE id = :run"
        ),
        {"findings": len(unique), "opened": opened, "resolved": len(gone), "run": run_id},
    )
    return RunSummary(run_id, len(unique), len(unique) - waived, waived, opened, len(gone))


def reopen_expired(conn: Connection, now: datetime) -> int:
    """Open again the waived findings whose waiver has expired or been revoked; returns how
    many. Writes only when there are some (a read of the console calls it)."""
    in_use = {
        waiver_id
        for (waiver_id,) in conn.execute(
            text("SELECT DISTINCT waiver_id FROM findings WHERE state = 'waived'")
        )
    }
    lapsed = [
        {"id": w["id"]} for w in list_waivers(conn) if w["id"] in in_use and not active(w, now)
    ]
    if not lapsed:
        return 0
    result = conn.execute(
        text(
            "UPDATE findings SET state = 'open', waiver_id = NULL WHERE state = 'waived'"
            " AND waiver_id = :id"
        ),
        lapsed,
    )
    return result.rowcount or 0


def findings(
    conn: Connection,
    *,
    states: Iterable[str] = ("open", "waived"),
    team: str | None = None,
    system: str | None = None,
) -> list[dict[str, Any]]:
    """The findings in ``states`` (of ``team`` and ``system`` when given), most severe first."""
    wanted = list(states)
    unknown = set(wanted) - set(STATES)
    if unknown:
        raise ValueError(f"unknown finding states {sorted(unknown)}; known: {list(STATES)}")
    where, params = (
        ["state IN (" + ", ".join(f":s{i}" for i in range(len(wanted))) + ")"],
        {f"s{i}": s for i, s in enumerate(wanted)},
    )
    if team is not None:
        where.append("team = :team")
        params["team"] = team
    if system is not None:
        where.append("system = :system")
        params["system"] = system
    rows = conn.execute(
        text(f"SELECT {_FINDING_COLUMNS} FROM findings WHERE {' AND '.join(where)}"), params
    )
    found = [_finding(dict(row._mapping)) for row in rows]
    order = {"error": 0, "warning": 1, "info": 2, "hint": 3}
    found.sort(key=lambda f: (order.get(f["severity"], 9), f["rule"], f["subject"], f["id"]))
    return found


def _finding(row: dict[str, Any]) -> dict[str, Any]:
    location = orjson.loads(row.pop("location"))
    row.update(location)
    for key in ("first_seen_at", "last_seen_at", "resolved_at"):
        row[key] = aware(row[key])
    return row


def runs(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its findings by state, and open ones by
    severity, in ``counts``."""
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            text(
                "SELECT id, started_at, finished_at, since_minute, until_minute, rules, findings,"
                " opened, resolved, coverage FROM policy_runs ORDER BY id DESC LIMIT :limit"
            ),
            {"limit": limit},
        )
    ]
    for r in _counted(conn, rows):
        r["finished_at"] = aware(r["finished_at"])
    return rows


def _counted(
    conn: Connection, rows: list[dict[str, Any]], team: str | None = None, system: str | None = None
) -> list[dict[str, Any]]:
    """``rows`` of ``policy_runs`` given their ``counts`` (the findings each held, of ``team``
    and ``system`` when given, by state, and open ones by severity), their start as an aware
    time and their coverage read."""
    if not rows:
        return rows
    owner, params = _owner_filter(team, system)
    counts: dict[int, dict[str, int]] = {r["id"]: {} for r in rows}
    for run_id, state, severity, n in conn.execute(
        text(
            "SELECT h.run_id, h.state, h.severity, count(*) FROM finding_history h"
            " JOIN findings f ON f.id = h.finding_id WHERE h.run_id >= :low AND h.run_id <= :high"
            f"{owner} GROUP BY h.run_id, h.state, h.severity"
        ),
        {"low": min(counts), "high": max(counts), **params},
    ):
        if run_id in counts:
            by = counts[run_id]
            by[state] = by.get(state, 0) + n
            if state == "open":
                by[severity] = by.get(severity, 0) + n
    for r in rows:
        r["started_at"] = aware(r["started_at"])
        r["coverage"] = orjson.loads(r["coverage"])
        r["counts"] = counts[r["id"]]
    return rows


def latest_run(conn: Connection) -> dict[str, Any] | None:
    found = runs(conn, limit=1)
    return found[0] if found else None


def list_waivers(conn: Connection) -> list[dict[str, Any]]:
    """Every waiver, soonest expiry first."""
    rows = conn.execute(text(f"SELECT {_WAIVER_COLUMNS} FROM waivers ORDER BY expires_at, id"))
    found = []
    for row in rows:
        waiver = dict(row._mapping)
        for key in ("expires_at", "created_at", "revoked_at"):
            waiver[key] = aware(waiver[key])
        found.append(waiver)
    return found


def covered_counts(conn: Connection) -> dict[int, int]:
    """Waiver id → the findings it waives now."""
    rows = conn.execute(
        text(
            "SELECT waiver_id, count(*) FROM findings WHERE state = 'waived'"
            " AND waiver_id IS NOT NULL GROUP BY waiver_id"
        )
    )
    return {waiver_id: n for waiver_id, n in rows}


def waiver_state(waiver: Mapping[str, Any], now: datetime, soon: timedelta) -> str:
    """``revoked``, ``expired``, ``expiring`` (within ``soon``) or ``active``."""
    if waiver["revoked_at"] is not None:
        return "revoked"
    expires = aware(waiver["expires_at"])
    if expires <= now:
        return "expired"
    return "expiring" if expires - now <= soon else "active"


def expiry(value: object) -> datetime:
    """A waiver's expiry from a date (the end of that day, UTC), a datetime or ISO text."""
    if isinstance(value, datetime):
        return aware(value)  # type: ignore[return-value]
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC) + timedelta(days=1)
    if isinstance(value, str):
        text_value = value.strip()
        try:
            if len(text_value) == 10:
                return expiry(date.fromisoformat(text_value))
            return aware(datetime.fromisoformat(text_value.replace("Z", "+00:00")))  # type: ignore[return-value]
        except ValueError:
            pass
    raise ValueError(f"expiry {value!r} is not a date (YYYY-MM-DD) or an ISO date-time")


def add_waiver(
    conn: Connection,
    *,
    rule: str,
    subject: str,
    reason: str,
    approver: str,
    expires_at: datetime,
    now: datetime,
    created_by: str | None = None,
    origin: str = "console",
) -> int:
    """Store a waiver (its fields checked: none empty, expiry after ``now``); returns its id.
    The findings it covers are waived at once."""
    for name, value in (("rule", rule), ("subject", subject), ("reason", reason)):
        if not value or not value.strip():
            raise ValueError(f"a waiver needs a {name}")
    if not approver or not approver.strip():
        raise ValueError("a waiver needs an approver")
    if aware(expires_at) <= now:
        raise ValueError(f"the expiry {expires_at.isoformat()} is not after now")
    waiver_id = conn.execute(
        text(
            "INSERT INTO waivers (rule, subject, reason, approver, expires_at, created_at,"
            " created_by, origin, revoked_at) VALUES (:rule, :subject, :reason, :approver,"
            " :expires_at, :now, :created_by, :origin, NULL) RETURNING id"
        ),
        {
            "rule": rule.strip(),
            "subject": subject.strip(),
            "reason": reason.strip(),
            "approver": approver.strip(),
            "expires_at": aware(expires_at),
            "now": now,
            "created_by": created_by,
            "origin": origin,
        },
    ).scalar_one()
    _apply(conn, waiver_id, rule.strip(), subject.strip())
    return waiver_id


def _apply(conn: Connection, waiver_id: int, rule: str, subject: str) -> None:
    """Waive the open findings ``waiver_id`` covers."""
    waiver = {"rule": rule, "subject": subject}
    hits = [
        {"id": fid, "waiver": waiver_id}
        for fid, f_rule, f_subject in conn.execute(
            text("SELECT id, rule, subject FROM findings WHERE state = 'open'")
        )
        if covers(waiver, f_rule, f_subject)
    ]
    if hits:
        conn.execute(
            text("UPDATE findings SET state = 'waived', waiver_id = :waiver WHERE id = :id"), hits
        )


def revoke_waiver(conn: Connection, waiver_id: int, now: datetime) -> bool:
    """Revoke a waiver: its findings open again. False when there is no such active waiver."""
    result = conn.execute(
        text("UPDATE waivers SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
        {"id": waiver_id, "now": now},
    )
    if not result.rowcount:
        return False
    reopen_expired(conn, now)
    return True


def replace_file_waivers(
    conn: Connection, origin: str, waivers: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[int, int]:
    """Make the waivers of the file ``origin`` those in ``waivers`` (rule, subject, reason,
    approver, expires_at): the ones no longer in the file are revoked, new ones added, ones
    unchanged kept (with their ids). Returns (added, revoked)."""

    def key(w: Mapping[str, Any]) -> tuple:
        return (w["rule"], w["subject"], w["reason"], w["approver"], aware(w["expires_at"]))

    present = {
        key(w): w["id"]
        for w in list_waivers(conn)
        if w["origin"] == origin and w["revoked_at"] is None
    }
    wanted = {key(w): w for w in waivers}
    revoked = 0
    for k, waiver_id in present.items():
        if k not in wanted:
            revoked += revoke_waiver(conn, waiver_id, now)
    added = 0
    for k, w in wanted.items():
        if k in present:
            continue
        if aware(w["expires_at"]) <= now:
            # Kept on record as expired: a file may well hold lapsed waivers.
            conn.execute(
                text(
                    "INSERT INTO waivers (rule, subject, reason, approver, expires_at, created_at,"
                    " created_by, origin, revoked_at) VALUES (:rule, :subject, :reason, :approver,"
                    " :expires_at, :now, NULL, :origin, NULL)"
                ),
                {
                    **{n: w[n] for n in ("rule", "subject", "reason", "approver")},
                    "expires_at": aware(w["expires_at"]),
                    "now": now,
                    "origin": origin,
                },
            )
        else:
            add_waiver(
                conn,
                now=now,
                origin=origin,
                **{n: w[n] for n in ("rule", "subject", "reason", "approver", "expires_at")},
            )
        added += 1
    return added, revoked


def _owner_filter(team: str | None, system: str | None) -> tuple[str, dict[str, Any]]:
    """The ``AND`` clauses (on ``findings`` as ``f``) and parameters for a team and a system."""
    clauses, params = "", {}
    if team is not None:
        clauses += " AND f.team = :team"
        params["team"] = team
    if system is not None:
        clauses += " AND f.system = :system"
        params["system"] = system
    return clauses, params


def runs_between(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    system: str | None = None,
) -> list[dict[str, Any]]:
    """The runs started from ``start`` to ``end`` (both included), oldest first, each with the
    findings it held (of ``team`` and ``system`` when given) by state, and open ones by
    severity, in ``counts``."""
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            text(
                "SELECT id, started_at, rules, findings, coverage FROM policy_runs"
                " WHERE started_at >= :start AND started_at <= :end ORDER BY started_at, id"
            ),
            {"start": aware(start), "end": aware(end)},
        )
    ]
    return _counted(conn, rows, team, system)


def run_findings(
    conn: Connection, run_id: int, *, team: str | None = None, system: str | None = None
) -> list[dict[str, Any]]:
    """The findings present in run ``run_id`` (of ``team`` and ``system`` when given), each
    with its state and severity in that run, most severe first."""
    owner, params = _owner_filter(team, system)
    columns = ", ".join(
        f"f.{c.strip()}" for c in _FINDING_COLUMNS.split(",") if c.strip() not in ("state",)
    ).replace("f.severity", "h.severity")
    rows = conn.execute(
        text(
            f"SELECT {columns}, h.state FROM finding_history h JOIN findings f"
            f" ON f.id = h.finding_id WHERE h.run_id = :run{owner}"
        ),
        {"run": run_id, **params},
    )
    found = [_finding(dict(row._mapping)) for row in rows]
    order = {"error": 0, "warning": 1, "info": 2, "hint": 3}
    found.sort(key=lambda f: (order.get(f["severity"], 9), f["rule"], f["subject"], f["id"]))
    return found
