"""``clew report``: the compliance report from the store's findings, runs and waivers, as HTML,
PDF, CSV, JSON, SARIF or JUnit XML.

The command is added to ``clew.cli``'s group there; this module does not import ``clew.cli``
(which imports it): the shared ``--db`` and ``--json`` options come from ``clew.cli_options``,
and its ``--since`` (a period's start, 30 days by default) is its own.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from clew import store
from clew.cli_options import db_option, json_option
from clew.store import findings, queries

since_option = click.option(
    "--since",
    default=None,
    help="The period's start: 3h, 90m, 2d (before now), ISO 8601, epoch s (default: 30d).",
)


def known_rules() -> dict[str, dict[str, Any]]:
    """The descriptions, severities and packs of the built-in rules and of the user's packs in
    CLEW_POLICY_PACKS (as ``clew check`` loads them), by id."""
    from policies import run
    from policies.engine import PolicyError

    folder = os.environ.get("CLEW_POLICY_PACKS")
    try:
        ruleset = run.rules(Path(folder) if folder else None)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None
    return ruleset.table()


@click.command()
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["html", "pdf", "csv", "json", "sarif", "junit"]),
    help="The report's format.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="The file to write ('-' for standard output).",
)
@click.option("--team", default=None, help="Only this team's findings.")
@click.option("--system", default=None, help="Only this system's findings.")
@since_option
@db_option
@json_option
def report(
    fmt: str,
    output: Path,
    team: str | None,
    system: str | None,
    since: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Write the compliance report: findings by rule, severity, team and system, the trend
    since --since against the period before, scorecards and waivers."""
    from policies import reports

    now = store.utcnow()
    start = None
    if since is not None:
        try:
            start_ns = queries.parse_time(since, int(now.timestamp() * 1_000_000_000))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--since") from None
        start = datetime.fromtimestamp(start_ns / 1_000_000_000, UTC)
        if start >= now:
            raise click.BadParameter(f"{since!r} is not before now", param_hint="--since")
    engine = store.open_engine(db)
    store.ensure_schema(engine)
    try:
        with engine.begin() as conn:
            findings.reopen_expired(conn, now)
            built = reports.build(
                conn, now=now, team=team, system=system, since=start, rules=known_rules()
            )
    finally:
        engine.dispose()
    try:
        content = reports.render(built, fmt)
    except RuntimeError as error:  # a PDF without Pango
        raise click.ClickException(str(error)) from None
    if str(output) == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    else:
        try:
            output.write_bytes(content)
        except OSError as error:
            raise click.ClickException(f"{output}: {error.strerror or error}") from None
    if as_json:
        summary = {
            "format": fmt,
            "output": str(output),
            "findings": len(built.findings),
            "bytes": len(content),
        }
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    elif str(output) != "-":
        what = f"{len(built.findings)} findings" if built.evaluated else built.message
        click.echo(f"{fmt} report written to {output} ({len(content):,} bytes): {what}")
