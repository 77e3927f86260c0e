"""An evaluation from end to end: the rules (built-in packs, a user's folder of packs, a
Spectral ruleset), the subjects (contract files, or the store over a window), the findings, and,
for the store, the run recorded with its waivers applied."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from clew.store import findings as stored
from clew.store import queries
from policies.engine import (
    Context,
    Evaluation,
    PolicyError,
    RuleSet,
    default_rules,
    evaluate,
    read_policy_file,
)
from policies.subjects import from_files, from_store

_WAIVER_KEYS = {"rule", "subject", "reason", "approver", "expires"}


def rules(packs: Path | None = None, spectral: Path | None = None) -> RuleSet:
    """The built-in packs, then a user's folder of packs, then a Spectral ruleset's rules."""
    ruleset = default_rules(packs)
    if spectral is not None:
        from policies.spectral import load_ruleset

        loaded = load_ruleset(spectral)
        ruleset.rules.update(loaded.rules.rules)
        ruleset.packs.extend(loaded.rules.packs)
        ruleset.warnings.extend(loaded.warnings)
    return ruleset


def check_files(paths: Sequence[Path], ruleset: RuleSet, now: datetime) -> Evaluation:
    """The rules on contract files alone (no store: rules on traffic find nothing)."""
    return evaluate(ruleset.active(), from_files(paths), Context(now=now))


@dataclass(frozen=True)
class StoreRun:
    evaluation: Evaluation
    summary: stored.RunSummary | None  # None when not recorded


def check_store(
    engine: Engine,
    ruleset: RuleSet,
    window: queries.Window,
    now: datetime,
    *,
    record: bool = True,
    waivers: Path | None = None,
    waivers_origin: str | None = None,
) -> StoreRun:
    """The rules on everything the store holds over ``window``; with ``record``, the run is
    stored (findings upserted, the ones gone resolved, waivers applied, lapsed ones reopened),
    after the waivers of the ``waivers`` file replace that file's earlier ones (the file is
    known by its path, or by ``waivers_origin``)."""
    with engine.connect() as conn:
        context = Context(now=now, window=window, conn=conn)
        evaluation = evaluate(ruleset.active(), from_store(context), context)
    if not record:
        return StoreRun(evaluation, None)
    with engine.begin() as conn:
        if waivers is not None:
            origin = waivers_origin or str(waivers)
            stored.replace_file_waivers(conn, origin, read_waivers(waivers), now)
        summary = stored.record_run(
            conn,
            [f.as_dict() for f in evaluation.findings],
            now=now,
            rules=evaluation.rules,
            coverage=evaluation.evaluated,
            since_minute=window.since_minute,
            until_minute=window.until_minute,
        )
        stored.reopen_expired(conn, now)
    return StoreRun(evaluation, summary)


def read_waivers(path: Path) -> list[dict[str, Any]]:
    """A waivers file::

        waivers:
          - rule: info-contact            # a rule id, or a glob of them
            subject: "Catalog API@*"      # a glob of subject names
            reason: the API is internal; its owners are in the catalog
            approver: jane.doe@shop.example
            expires: 2027-03-31           # a date (to the end of that day, UTC) or a date-time

    A PolicyError names the file and the waiver at fault."""
    data = read_policy_file(path, "a waivers file")
    if data is None:
        return []
    if (
        not isinstance(data, dict)
        or set(data) != {"waivers"}
        or not isinstance(data["waivers"], list)
    ):
        raise PolicyError(f"{path}: a waivers file is a mapping with one key, 'waivers', a list")
    found = []
    for index, item in enumerate(data["waivers"]):
        where = f"{path}: waivers[{index}]: "
        if not isinstance(item, dict):
            raise PolicyError(f"{where}a waiver is a mapping")
        unknown = set(item) - _WAIVER_KEYS
        missing = _WAIVER_KEYS - set(item)
        if unknown:
            raise PolicyError(f"{where}unknown keys {sorted(map(str, unknown))}")
        if missing:
            raise PolicyError(f"{where}{', '.join(sorted(missing))} required")
        for key in ("rule", "subject", "reason", "approver"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise PolicyError(f"{where}{key} must be non-empty text")
        try:
            expires = stored.expiry(item["expires"])
        except ValueError as error:
            raise PolicyError(f"{where}{error}") from error
        found.append(
            {
                "rule": item["rule"].strip(),
                "subject": item["subject"].strip(),
                "reason": item["reason"].strip(),
                "approver": item["approver"].strip(),
                "expires_at": expires,
            }
        )
    return found


def add_waiver(
    engine: Engine,
    now: datetime,
    *,
    rule: str,
    subject: str,
    reason: str,
    approver: str,
    expires: object,
    known_rules: Iterable[str],
    origin: str,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Store a waiver and waive the open findings it covers; returns ``{"id", "expires_at",
    "waived"}``. A ValueError with a message for people when a field is missing, the expiry
    is not a date after ``now``, or the rule pattern matches no rule of ``known_rules`` nor any
    stored finding's (a typo would waive nothing, silently)."""
    expires_at = stored.expiry(expires)
    pattern = (rule or "").strip()
    with engine.begin() as conn:
        seen = {f["rule"] for f in stored.findings(conn, states=stored.STATES)}
        if pattern and not any(fnmatchcase(r, pattern) for r in seen | set(known_rules)):
            raise ValueError(f"the rule {pattern!r} names no known rule")
        stored.reopen_expired(conn, now)
        waiver_id = stored.add_waiver(
            conn,
            rule=rule,
            subject=subject,
            reason=reason,
            approver=approver,
            expires_at=expires_at,
            now=now,
            created_by=created_by,
            origin=origin,
        )
        waived = stored.covered_counts(conn).get(waiver_id, 0)
    return {"id": waiver_id, "expires_at": expires_at, "waived": waived}
