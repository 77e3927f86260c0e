"""``clew check`` (evaluate the policies on contract files, or on the store, and fail at a chosen
severity, as ``spectral lint`` does in CI) and ``clew waivers`` (list, add, load, revoke).

The commands are added to ``clew.cli``'s group there; this module does not import ``clew.cli``
(which imports it): its shared options come from ``clew.cli_options``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from clew.cli_options import db_option, json_option
from clew.cli_options import open_db as _open
from policies.engine import SEVERITIES, PolicyError, RuleSet, at_or_above

CHECK_FORMATS = ("text", "json", "sarif", "junit")
#: The window the store is evaluated over by default.
DEFAULT_SINCE = "24h"
_FAIL_ON = (*SEVERITIES, "never")

packs_option = click.option(
    "--packs",
    "packs",
    envvar="CLEW_POLICY_PACKS",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of your own rule packs (*.yaml), after the built-in ones; a rule of a"
    " built-in id replaces it (default: CLEW_POLICY_PACKS).",
)
ruleset_option = click.option(
    "--ruleset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A Spectral ruleset (.spectral.yaml) whose rules are applied to contracts too.",
)
waivers_option = click.option(
    "--waivers",
    "waivers_file",
    envvar="CLEW_WAIVERS_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A waivers file (YAML): its waivers replace the ones it gave before"
    " (default: CLEW_WAIVERS_FILE).",
)


class _Unusable(click.ClickException):
    """A pack, ruleset, waivers file or contract that cannot be used: exit 2, apart from the
    findings' exit 1."""

    exit_code = 2


def _rules(packs: Path | None, ruleset: Path | None, only: tuple[str, ...]) -> RuleSet:
    from policies import run

    try:
        found = run.rules(packs, ruleset)
    except PolicyError as error:
        raise _Unusable(str(error)) from None
    if only:
        known = {rule.pack for rule in found.rules.values()}
        unknown = sorted(set(only) - known)
        if unknown:
            raise click.BadParameter(
                f"no packs named {unknown}; known: {sorted(known)}", param_hint="--pack"
            )
        found.rules = {k: r for k, r in found.rules.items() if r.pack in only}
    return found


@dataclass
class _Outcome:
    findings: list[dict[str, Any]]
    run: dict[str, Any] | None  # the recorded run, for the store


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--fail-on",
    type=click.Choice(_FAIL_ON),
    default="error",
    show_default=True,
    help="Exit 1 when an open finding is this severe or more (never: always exit 0).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(CHECK_FORMATS),
    default="text",
    show_default=True,
    help="What to print: lines for people, JSON, SARIF 2.1.0 (code scanning) or JUnit XML.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.option(
    "--pack", "only", multiple=True, help="Only this pack's rules (repeatable), by its name."
)
@packs_option
@ruleset_option
@waivers_option
@click.option(
    "--since",
    default=DEFAULT_SINCE,
    show_default=True,
    help="The store's window: its start (3h, 7d, ISO 8601).",
)
@click.option("--until", default=None, help="…and its end (default: now).")
@click.option("--no-record", is_flag=True, help="Evaluate the store without recording the run.")
@db_option
@json_option
def check(
    paths: tuple[Path, ...],
    fail_on: str,
    fmt: str,
    output: Path | None,
    only: tuple[str, ...],
    packs: Path | None,
    ruleset: Path | None,
    waivers_file: Path | None,
    since: str,
    until: str | None,
    no_record: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Evaluate the policies: on the contract files or folders PATH… (as ``spectral lint``
    does), else on everything the store holds over the window, recording the run (findings
    first and last seen, resolved, waived). Exits 1 when an open finding is as severe as
    ``--fail-on`` or more."""
    fmt = "json" if as_json else fmt
    rules = _rules(packs, ruleset, only)
    for warning in rules.warnings:
        click.echo(f"warning: {warning}", err=True)
    now = datetime.now(UTC)
    if paths:
        outcome = _check_files(paths, rules, now, waivers_file)
    else:
        outcome = _check_store(db, rules, now, since, until, waivers_file, not no_record)
    text = _render(outcome, rules, fmt, fail_on)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(outcome.findings)} findings written to {output}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))
    failing = [
        f
        for f in outcome.findings
        if f.get("state", "open") == "open"
        and fail_on != "never"
        and at_or_above(f["severity"], fail_on)
    ]
    if failing:
        sys.exit(1)


def _check_files(
    paths: tuple[Path, ...], rules: RuleSet, now: datetime, waivers_file: Path | None
) -> _Outcome:
    from clew.store.findings import active, covers
    from policies import run

    try:
        evaluation = run.check_files(paths, rules, now)
        waivers = run.read_waivers(waivers_file) if waivers_file else []
    except PolicyError as error:
        raise _Unusable(str(error)) from None
    waivers = [w | {"revoked_at": None} for w in waivers]
    found = []
    for finding in evaluation.findings:
        row = finding.as_dict()
        waiver = next(
            (w for w in waivers if active(w, now) and covers(w, row["rule"], row["subject"])),
            None,
        )
        row["state"] = "waived" if waiver else "open"
        if waiver:
            row["waiver"] = {k: waiver[k] for k in ("reason", "approver")} | {
                "expires_at": waiver["expires_at"].isoformat()
            }
        found.append(row)
    return _Outcome(found, None)


def _check_store(
    db: str | None,
    rules: RuleSet,
    now: datetime,
    since: str,
    until: str | None,
    waivers_file: Path | None,
    record: bool,
) -> _Outcome:
    from clew.store import findings as stored
    from clew.store import queries
    from policies import run

    try:
        window = queries.window_between(since, until, time.time_ns())
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since/--until") from None
    engine = _open(db)
    try:
        result = run.check_store(engine, rules, window, now, record=record, waivers=waivers_file)
    except PolicyError as error:
        raise _Unusable(str(error)) from None
    if result.summary is None:
        rows = [f.as_dict() | {"state": "open"} for f in result.evaluation.findings]
        return _Outcome(rows, None)
    with engine.connect() as conn:
        states = {
            row["fingerprint"]: row for row in stored.findings(conn, states=("open", "waived"))
        }
        waivers = {w["id"]: w for w in stored.list_waivers(conn)}
    rows = []
    for finding in result.evaluation.findings:
        row = finding.as_dict()
        kept = states.get(row["fingerprint"], {})
        row["state"] = kept.get("state", "open")
        row["first_seen_at"] = kept["first_seen_at"].isoformat() if kept else None
        waiver = waivers.get(kept.get("waiver_id"))
        if waiver:
            row["waiver"] = {
                "id": waiver["id"],
                "reason": waiver["reason"],
                "approver": waiver["approver"],
                "expires_at": waiver["expires_at"].isoformat(),
            }
        rows.append(row)
    summary = result.summary
    return _Outcome(
        rows,
        {
            "id": summary.run_id,
            "findings": summary.findings,
            "open": summary.open,
            "waived": summary.waived,
            "opened": summary.opened,
            "resolved": summary.resolved,
        },
    )


def _render(outcome: _Outcome, rules: RuleSet, fmt: str, fail_on: str) -> str:
    if fmt == "json":
        data: dict[str, Any] = {
            "findings": outcome.findings,
            "counts": _counts(outcome.findings),
            "fail_on": fail_on,
        }
        if outcome.run is not None:
            data["run"] = outcome.run
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "sarif":
        from policies.reports.sarif import sarif

        log = sarif(outcome.findings, rules.table(), base=Path.cwd())
        return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "junit":
        from policies.reports.junit import junit

        return junit(outcome.findings, rules.table())
    return _text(outcome)


def _counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = {severity: 0 for severity in SEVERITIES} | {"waived": 0}
    for f in findings:
        if f.get("state", "open") == "waived":
            counts["waived"] += 1
        else:
            counts[f["severity"]] += 1
    return counts


def json_path(path: list | tuple) -> str:
    """A finding's place as Spectral writes it: ``paths./pets/{id}.get.responses``."""
    return ".".join(str(part) for part in path)


def _text(outcome: _Outcome) -> str:
    """Findings grouped by file (with line and column) or, from the store, by subject; each
    with its severity, rule, message and place."""
    lines: list[str] = []
    current = None

    def heading(f: dict[str, Any]) -> str:
        return f"{f['source']} ({f['subject']})" if f.get("line") else f["subject"]

    for f in sorted(outcome.findings, key=lambda f: (heading(f), f.get("line") or 0)):
        if heading(f) != current:
            if current is not None:
                lines.append("")
            current = heading(f)
            lines.append(current)
        place = f"{f['line']}:{f['column']}" if f.get("line") else ""
        where = "" if f.get("line") or not f["path"] else f"  at {json_path(f['path'])}"
        waived = "  (waived)" if f.get("state") == "waived" else ""
        lines.append(
            f"  {place:>9}  {f['severity']:<7}  {f['rule']:<30}  {f['message']}{where}{waived}"
        )
    counts = _counts(outcome.findings)
    total = sum(counts[s] for s in SEVERITIES)
    summary = f"{total} open finding{'s' if total != 1 else ''}"
    parts = [f"{n} {s}" for s, n in counts.items() if n and s != "waived"]
    if parts:
        summary += f" ({', '.join(parts)})"
    if counts["waived"]:
        summary += f", {counts['waived']} waived"
    if outcome.run is not None:
        run = outcome.run
        summary += f"; run {run['id']}: {run['opened']} new, {run['resolved']} resolved"
    if lines:
        lines.append("")
    lines.append(summary)
    return "\n".join(lines) + "\n"


@click.group()
def waivers() -> None:
    """Waivers: a rule (id or glob) on subjects matching a glob, accepted for a reason by an
    approver until an expiry, after which its findings open again."""


@waivers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Expired and revoked ones too.")
@click.option(
    "--expiring",
    default=None,
    metavar="DAYS",
    type=click.IntRange(0, 3650),
    help="Only active waivers expiring within DAYS days.",
)
@db_option
@json_option
def waivers_list(show_all: bool, expiring: int | None, db: str | None, as_json: bool) -> None:
    """The waivers in force (soonest expiry first), with their state and findings covered."""
    from clew.store import findings as stored

    now = datetime.now(UTC)
    soon = timedelta(days=14 if expiring is None else expiring)
    with _open(db).begin() as conn:
        stored.reopen_expired(conn, now)
        rows = stored.list_waivers(conn)
        covered = stored.covered_counts(conn)
    found = []
    for w in rows:
        state = stored.waiver_state(w, now, soon)
        if expiring is not None and state != "expiring":
            continue
        if not show_all and state in ("expired", "revoked"):
            continue
        found.append(
            {
                "id": w["id"],
                "rule": w["rule"],
                "subject": w["subject"],
                "reason": w["reason"],
                "approver": w["approver"],
                "expires_at": w["expires_at"].isoformat(),
                "state": state,
                "origin": w["origin"],
                "findings": covered.get(w["id"], 0),
            }
        )
    if as_json:
        click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        click.echo("no waivers")
        return
    for w in found:
        click.echo(
            f"{w['id']:>4}  {w['state']:<8}  until {w['expires_at'][:10]}  {w['rule']}  on"
            f" {w['subject']}  ({w['findings']} findings)  approved by {w['approver']}:"
            f" {w['reason']}"
        )


@waivers.command("add")
@click.option("--rule", required=True, help="A rule id, or a glob of them.")
@click.option("--subject", required=True, help="A glob of subject names ('payments-api *').")
@click.option("--reason", required=True)
@click.option("--approver", required=True)
@click.option("--expires", required=True, help="A date (YYYY-MM-DD, to its end) or date-time.")
@packs_option
@db_option
@json_option
def waivers_add(
    rule: str,
    subject: str,
    reason: str,
    approver: str,
    expires: str,
    packs: Path | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Add a waiver; the open findings it covers are waived at once. The rule must match a
    rule of the packs (built-in and ``CLEW_POLICY_PACKS``) or of a stored finding."""
    from policies import run

    try:
        known = run.rules(packs).rules
        added = run.add_waiver(
            _open(db),
            datetime.now(UTC),
            rule=rule,
            subject=subject,
            reason=reason,
            approver=approver,
            expires=expires,
            known_rules=known,
            origin="cli",
        )
    except PolicyError as error:
        raise _Unusable(str(error)) from None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    expires_at = added["expires_at"].isoformat()
    if as_json:
        data = {"id": added["id"], "expires_at": expires_at, "findings": added["waived"]}
        click.echo(orjson.dumps(data).decode())
    else:
        click.echo(f"waiver {added['id']} added, until {expires_at}: {added['waived']} findings")


@waivers.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@json_option
def waivers_load(path: Path, db: str | None, as_json: bool) -> None:
    """Make the store's waivers from the file PATH its waivers now: new ones added, ones no
    longer in it revoked."""
    from clew.store import findings as stored
    from policies.run import read_waivers

    try:
        found = read_waivers(path)
    except PolicyError as error:
        raise _Unusable(str(error)) from None
    with _open(db).begin() as conn:
        added, revoked = stored.replace_file_waivers(conn, str(path), found, datetime.now(UTC))
    if as_json:
        data = {"file": str(path), "waivers": len(found), "added": added, "revoked": revoked}
        click.echo(orjson.dumps(data).decode())
    else:
        click.echo(f"{path}: {len(found)} waivers, {added} added, {revoked} revoked")


@waivers.command("revoke")
@click.argument("waiver_id", type=int)
@db_option
def waivers_revoke(waiver_id: int, db: str | None) -> None:
    """Revoke a waiver: its findings open again."""
    from clew.store import findings as stored

    with _open(db).begin() as conn:
        if not stored.revoke_waiver(conn, waiver_id, datetime.now(UTC)):
            raise click.ClickException(f"no waiver {waiver_id} in force")
    click.echo(f"waiver {waiver_id} revoked")
