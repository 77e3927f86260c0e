"""``clew pull`` (one registry or catalog, once) and ``clew worker`` (the pulls a TOML file
configures, each on its interval, until SIGINT or SIGTERM).

The commands are added to ``clew.cli``'s group there; this module does not import ``clew.cli``
(which imports it): the ``--db`` and ``--json`` options come from ``clew.cli_options``.

A worker's file::

    [[pull]]
    url = "http://registry:8080"      # Apicurio: v3 where served, else v2
    kind = "apicurio"                 # apicurio | ccompat | backstage
    every = "15m"                     # s, m, h or d; a number is seconds
    group = "payments"                # optional, apicurio only
    token_env = "APICURIO_TOKEN"      # optional: the variable holding its bearer token
    timeout = 30                      # optional: seconds per request

    [[pull]]
    url = "/srv/api-contracts"        # a folder (a git checkout kept up to date, say)
    kind = "folder"                   # read as clew ingest --follow reads it
    every = "1m"

    [[check]]
    every = "1h"                      # evaluate the policies over the store and record the run
    since = "24h"                     # optional: the window evaluated (default 24h)
    packs = "/srv/clew/policies"      # optional: a folder of your own rule packs
    waivers = "/srv/clew/waivers.yaml"  # optional: a waivers file, read at each run
    ruleset = "/srv/api/.spectral.yaml" # optional: a Spectral ruleset

    [retention]                       # optional: what is older is removed (clew.store.retention)
    raw = "7d"                        # spans and gateway requests: whole days (partitions)
    minutes = "30d"                   # the rollups' minute tier (and failing paths' minutes)
    hours = "400d"                    # the rollups' hour and day blocks
    every = "1h"                      # optional (default 1h)

A ``folder`` is read as ``clew ingest --follow`` reads a path: what its files gained, new and
rotated files, documents once they have stopped changing; each read resumes from the files'
checkpoints, so a contract edited in the checkout is stored as a new version. A ``check`` is
``clew check`` on the store: findings recorded, waivers applied, lapsed waivers' findings open.

Every job runs once when the worker starts, then every ``every``; one at a time, in the
scheduler's own thread (APScheduler's ``DebugExecutor``), so a late pull runs late, once.

Any number of workers may run the same file on one database: each run of a job takes the job's
lock (a PostgreSQL advisory lock) and is recorded, and a worker leaves a run that another worker
holds or made within the job's interval (``clew.scheduler``).
"""

from __future__ import annotations

import re
import signal
import sys
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from clew import registries, scheduler
from clew.cli_options import db_option, json_option
from clew.cli_options import open_db as _open
from clew.store import retention

token_env_option = click.option(
    "--token-env",
    default=registries.DEFAULT_TOKEN_ENV,
    show_default=True,
    metavar="NAME",
    help="The environment variable holding a bearer token for the registry (never printed).",
)

#: The shortest interval a worker's pull may have.
MIN_EVERY_S = 1.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PULL_KEYS = frozenset({"url", "kind", "every", "group", "token_env", "timeout"})
_CHECK_KEYS = frozenset({"every", "since", "packs", "waivers", "ruleset"})
_RETENTION_KEYS = frozenset({"raw", "minutes", "hours", "every"})
#: A worker's job that reads a local folder, beside the registries' kinds.
FOLDER = "folder"
WORKER_KINDS = (*registries.KINDS, FOLDER)


@click.command()
@click.argument("url")
@click.option(
    "--kind", type=click.Choice(registries.KINDS), required=True, help="The API the URL serves."
)
@click.option("--group", default=None, help="Apicurio: this group's artifacts only.")
@token_env_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=registries.TIMEOUT_S,
    show_default=True,
    help="Seconds each request may take.",
)
@db_option
@json_option
def pull(
    url: str,
    kind: str,
    group: str | None,
    token_env: str,
    timeout: float,
    db: str | None,
    as_json: bool,
) -> None:
    """Pull API contracts from a registry (Apicurio, or its Confluent-compatible API) or the
    catalog from Backstage, once: new and changed versions stored, each with its checkpoint."""
    if group is not None and kind != "apicurio":
        raise click.UsageError("--group names Apicurio artifacts: it applies to --kind apicurio")
    engine = _open(db)
    http = registries.Http.from_environment(token_env, timeout=timeout)
    report = registries.pull(
        engine, url, kind, http=http, group=group, log=lambda line: click.echo(line, err=True)
    )
    if as_json:
        sys.stdout.write(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        click.echo(summary(report))
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    if report.problems:
        sys.exit(1)


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of [[pull]] tables (url, kind, every; group, token_env, timeout),"
    " [[check]] tables (every; since, packs, waivers, ruleset) and a [retention] table"
    " (raw, minutes, hours; every).",
)
@db_option
@json_option
def worker(config_path: Path, db: str | None, as_json: bool) -> None:
    """Run the pulls, policy checks and retention a TOML file configures, each on its interval,
    until SIGINT or SIGTERM (the job under way finishes; a second signal abandons it, its
    transaction rolled back). Workers sharing a database share the jobs: each run is made by one."""
    try:
        jobs = load_config(config_path)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--config") from None
    engine = _open(db)
    running = build_scheduler(engine, jobs, _StoppingScheduler, _printer(as_json))

    def on_signal(signum: int, _frame: object) -> None:
        if running.stopping:
            raise KeyboardInterrupt  # inside a pull: its transaction rolls back
        running.stop()  # the pull under way, if any, finishes first

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    pulls = f"{len(jobs)} job{'s' if len(jobs) > 1 else ''}"
    click.echo(f"clew worker: {pulls} scheduled; SIGINT or SIGTERM stops it", err=True)
    try:
        running.start()  # blocks until shut down
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("clew worker stopped", err=True)


@click.command("retention")
@click.option("--raw", metavar="AGE", help="Keep spans and gateway requests this long (7d).")
@click.option("--minutes", metavar="AGE", help="Keep the rollups' minute tier this long (30d).")
@click.option("--hours", metavar="AGE", help="Keep the rollups' hour and day blocks this long.")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@db_option
@json_option
def retention_command(
    raw: str | None,
    minutes: str | None,
    hours: str | None,
    dry_run: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Remove what is older than each tier's age, once, by whole UTC days: raw spans and gateway
    requests (day partitions dropped on PostgreSQL), the rollups' minute tier, their hour and
    day blocks. clew worker does the same on schedule from its [retention] table."""
    import time

    ages = {"raw": raw, "minutes": minutes, "hours": hours}
    if all(age is None for age in ages.values()):
        raise click.UsageError("give at least one of --raw, --minutes, --hours")
    try:
        horizons = _horizons(ages, lambda key: (f"--{key}", "age"))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    engine = _open(db)
    with engine.begin() as conn:
        removed = retention.apply(conn, horizons, time.time_ns(), dry_run=dry_run)
    if as_json:
        sys.stdout.write(orjson.dumps(removed.as_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        click.echo(retention_summary(removed))


class _StoppingScheduler(BlockingScheduler):
    """A ``BlockingScheduler`` that stops between two rounds of jobs when asked. Its own
    ``shutdown``, called while a job runs (a signal's handler interrupts the pull it runs),
    empties the job store that the job is then updated in."""

    stopping = False

    def stop(self) -> None:
        """Stop once the job under way, if any, is done."""
        self.stopping = True
        self.wakeup()

    def _process_jobs(self) -> float | None:
        wait_seconds = None if self.stopping else super()._process_jobs()
        if self.stopping:
            self.shutdown(wait=False)
            return None
        return wait_seconds


@dataclass(frozen=True)
class CheckJob:
    """One ``[[check]]`` of a worker's file: the policies evaluated over the store."""

    every_s: float
    since: str = "24h"
    packs: Path | None = None
    waivers: Path | None = None
    ruleset: Path | None = None
    kind: str = "check"


@dataclass(frozen=True)
class RetentionJob:
    """The ``[retention]`` table of a worker's file: the tiers' horizons, applied every
    ``every_s``."""

    horizons: retention.Horizons
    every_s: float = 3600.0
    kind: str = "retention"


@dataclass(frozen=True)
class PullJob:
    """One ``[[pull]]`` of a worker's file."""

    url: str
    kind: str
    every_s: float
    group: str | None = None
    token_env: str = registries.DEFAULT_TOKEN_ENV
    timeout_s: float = registries.TIMEOUT_S


Job = PullJob | CheckJob | RetentionJob


def job_printer() -> Callable[[Any, Any], None]:
    """What a serving process with jobs inside prints after each run: a line on standard error."""
    return _printer(as_json=False, err=True)


def load_config(path: Path) -> list[Job]:
    """The jobs a worker's TOML file configures; a ValueError naming the file and the fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None
    unknown = sorted(set(data) - {"pull", "check", "retention"})
    if unknown:
        raise ValueError(
            f"{path}: unknown keys {unknown} (a worker's file holds [[pull]] and [[check]]"
            " tables and a [retention] table)"
        )
    tables = data.get("pull", [])
    checks = data.get("check", [])
    kept = data.get("retention")
    if not isinstance(tables, list) or not isinstance(checks, list):
        raise ValueError(f"{path}: pull and check are lists of tables ([[pull]], [[check]])")
    if kept is not None and not isinstance(kept, dict):
        raise ValueError(f"{path}: retention is one table ([retention])")
    if not (tables or checks or kept):
        raise ValueError(f"{path}: no [[pull]], [[check]] or [retention] tables")
    jobs: list[Job] = [
        _job(table, f"{path}: pull {number}") for number, table in enumerate(tables, 1)
    ]
    jobs += [_check_job(table, f"{path}: check {n}") for n, table in enumerate(checks, 1)]
    if kept is not None:
        jobs.append(_retention_job(kept, f"{path}: retention"))
    return jobs


def _retention_job(table: dict, where: str) -> RetentionJob:
    unknown = sorted(set(table) - _RETENTION_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(_RETENTION_KEYS)})")
    ages = {key: table.get(key) for key in ("raw", "minutes", "hours")}
    if all(age is None for age in ages.values()):
        raise ValueError(f"{where}: none of raw, minutes, hours is set")
    horizons = _horizons(ages, lambda key: (where, key), where)
    return RetentionJob(horizons, _seconds(table.get("every", "1h"), where))


def _horizons(
    ages: dict[str, object], named: Callable[[str], tuple[str, str]], where: str | None = None
) -> retention.Horizons:
    """The tiers' horizons from their ages (``raw``, ``minutes``, ``hours``: a duration each, or
    None); a ValueError with the fault, a duration's named by ``named(tier)`` (where, what)."""
    durations = [None if age is None else _seconds(age, *named(key)) for key, age in ages.items()]
    try:
        return retention.Horizons(*durations)
    except ValueError as error:
        raise ValueError(f"{where}: {error}" if where else str(error)) from None


def _check_job(table: dict, where: str) -> CheckJob:
    unknown = sorted(set(table) - _CHECK_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(_CHECK_KEYS)})")
    if "every" not in table:
        raise ValueError(f"{where}: no every")
    since = table.get("since", "24h")
    if not isinstance(since, str) or not since:
        raise ValueError(f"{where}: since {since!r} is not a window's start (24h, 7d)")
    paths = {}
    for key in ("packs", "waivers", "ruleset"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{where}: {key} is not a path")
        paths[key] = Path(value) if value else None
    return CheckJob(_seconds(table["every"], where), since, **paths)


def _job(table: dict, where: str) -> PullJob:
    unknown = sorted(set(table) - _PULL_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(_PULL_KEYS)})")
    for key in ("url", "kind", "every"):
        if key not in table:
            raise ValueError(f"{where}: no {key}")
    if not isinstance(table["url"], str) or not table["url"]:
        raise ValueError(f"{where}: url is not text")
    if table["kind"] not in WORKER_KINDS:
        raise ValueError(f"{where}: kind {table['kind']!r} (known: {', '.join(WORKER_KINDS)})")
    group = table.get("group")
    if group is not None and (table["kind"] != "apicurio" or not isinstance(group, str)):
        raise ValueError(f"{where}: group names Apicurio artifacts (kind apicurio, a name)")
    timeout = table.get("timeout", registries.TIMEOUT_S)
    if type(timeout) not in (int, float) or timeout <= 0:
        raise ValueError(f"{where}: timeout {timeout!r} is not a number of seconds")
    token_env = table.get("token_env", registries.DEFAULT_TOKEN_ENV)
    if not isinstance(token_env, str) or not token_env:
        raise ValueError(f"{where}: token_env is not a variable's name")
    return PullJob(
        url=table["url"],
        kind=table["kind"],
        every_s=_seconds(table["every"], where),
        group=group,
        token_env=token_env,
        timeout_s=float(timeout),
    )


def _seconds(every: object, where: str, key: str = "every") -> float:
    """``every`` in seconds: ``"15m"``, ``"90s"``, ``"1h"``, ``"2d"``, or a number of seconds."""
    if isinstance(every, int | float) and not isinstance(every, bool):
        seconds = float(every)
    else:
        match = _DURATION.fullmatch(str(every).strip())
        if match is None:
            raise ValueError(f"{where}: {key} {every!r} is not a duration (15m, 90s, 1h, 2d)")
        seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds < MIN_EVERY_S:
        raise ValueError(f"{where}: {key} {every!r} is shorter than {MIN_EVERY_S:g} s")
    return seconds


def build_scheduler(
    engine: Engine,
    jobs: list[Job],
    scheduler_class: type[BaseScheduler],
    emit: Callable[[Any, Any], None],
    first_in_s: float = 0.0,
) -> BaseScheduler:
    """A scheduler (not started) running each job ``first_in_s`` from now and then every
    ``every_s``, one job at a time in its own thread, each run shared with other workers
    (``shared_run``); ``emit`` is given each run's report, or a ``Skipped`` when another worker
    has the run."""
    built = scheduler_class(
        executors={"default": DebugExecutor()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    for number, job in enumerate(jobs, 1):
        built.add_job(
            shared_run,
            IntervalTrigger(seconds=job.every_s, timezone=UTC),
            args=(engine, job, emit),
            id=f"{job.kind}-{number}",
            name=job_name(job),
            next_run_time=datetime.now(UTC) + timedelta(seconds=first_in_s),
        )
    return built


def in_process(
    engine: Engine, jobs: list[Job], emit: Callable[[Any, Any], None], first_in_s: float = 0.0
) -> BaseScheduler:
    """Jobs run inside a serving process (``clew serve --jobs``, ``clew demo``: the embedded
    tier), by a scheduler in a thread of its own, started; its ``shutdown()`` lets the job under
    way finish. Runs are shared with any ``clew worker`` on the same database, as workers share
    them."""
    from apscheduler.schedulers.background import BackgroundScheduler

    running = build_scheduler(engine, jobs, BackgroundScheduler, emit, first_in_s)
    running.start()
    return running


def job_name(job: Job) -> str:
    """A job as a person reads it."""
    if isinstance(job, CheckJob):
        return f"check policies since {job.since}"
    if isinstance(job, RetentionJob):
        return "retention"
    return f"pull {job.kind} {job.url}"


def key_of(job: Job) -> str:
    """The job's key, the same in every worker configured with the same job
    (``clew.scheduler.job_key``)."""
    if isinstance(job, CheckJob):
        return scheduler.job_key("check", job.since, job.packs, job.waivers, job.ruleset)
    if isinstance(job, RetentionJob):
        return scheduler.job_key("retention")  # one retention per database
    return scheduler.job_key("pull", job.kind, job.url, job.group)


@dataclass
class Skipped:
    """A run this worker left to another: the job, and why."""

    job: str
    reason: str

    def as_json(self) -> dict:
        return {"skipped": self.job, "reason": self.reason}


def shared_run(engine: Engine, job: Job, emit: Callable[[Any, Any], None]) -> object:
    """Run the job here unless another worker holds it or ran it within its interval; the run
    is recorded in ``job_runs`` with how it ended. Returns its report (or a ``Skipped``)."""
    key = key_of(job)
    try:
        with scheduler.exclusive(engine, key) as taken:
            if not taken:
                skipped = Skipped(job_name(job), "another worker is running it")
                emit(job, skipped)
                return skipped
            now = datetime.now(UTC)
            latest = scheduler.latest_run(engine, key)
            if scheduler.too_soon(latest, job.every_s, now):
                reason = f"{latest.worker} started it at {latest.started_at:%H:%M:%S}"
                skipped = Skipped(job_name(job), reason)
                emit(job, skipped)
                return skipped
            run_id = scheduler.start_run(engine, key, job_name(job), now)
            if isinstance(job, CheckJob):
                report = run_check(engine, job, emit)
            elif isinstance(job, RetentionJob):
                report = run_retention(engine, job, emit)
            else:
                report = run_pull(engine, job, emit)
            outcome = "problems" if report.problems else "ok"
            scheduler.finish_run(engine, run_id, outcome, summary(report))
            return report
    except Exception as error:  # the store is down: reported; the next turn tries again
        skipped = Skipped(job_name(job), f"{type(error).__name__}: {error}")
        emit(job, skipped)
        return skipped


@dataclass
class RetentionReport:
    """What one scheduled retention pass removed, in the shape a worker prints."""

    removed: retention.Report | None = None
    kind: str = "retention"
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        removed = self.removed.as_json() if self.removed is not None else None
        return {"kind": self.kind, "removed": removed, "problems": self.problems}


def run_retention(
    engine: Engine, job: RetentionJob, emit: Callable[[RetentionJob, RetentionReport], None]
) -> RetentionReport:
    """One scheduled retention pass (and the job runs' own records past the minutes' horizon,
    or 30 days); whatever goes wrong is a problem in its report, and the worker goes on."""
    import time

    report = RetentionReport()
    try:
        now_ns = time.time_ns()
        with engine.begin() as conn:
            report.removed = retention.apply(conn, job.horizons, now_ns)
        kept_s = job.horizons.minutes_s or 30 * 86_400
        scheduler.forget_runs_before(engine, datetime.now(UTC) - timedelta(seconds=kept_s))
    except KeyboardInterrupt:
        report.problems.append("abandoned on a second signal: its last transaction rolled back")
    except Exception as error:  # a store that is down: reported
        report.problems.append(f"{type(error).__name__}: {error}")
    emit(job, report)
    return report


def run_pull(
    engine: Engine, job: PullJob, emit: Callable[[PullJob, registries.PullReport], None]
) -> registries.PullReport:
    """One scheduled pull; whatever goes wrong is a problem in its report, and the worker goes
    on (a pull abandoned by a second signal rolls back and is reported so)."""
    http = registries.Http.from_environment(job.token_env, timeout=job.timeout_s)
    try:
        if job.kind == FOLDER:
            report = read_folder(engine, Path(job.url))
        else:
            report = registries.pull(engine, job.url, job.kind, http=http, group=job.group)
    except KeyboardInterrupt:
        report = registries.PullReport(job.url, job.kind)
        report.problems.append("abandoned on a second signal: its last transaction rolled back")
    except Exception as error:  # a store that is down, …: reported; the next run tries again
        report = registries.PullReport(job.url, job.kind)
        report.problems.append(f"{type(error).__name__}: {error}")
    emit(job, report)
    return report


@dataclass
class CheckReport:
    """What one scheduled policy evaluation found, in the shape a worker prints."""

    url: str = "policies"
    kind: str = "check"
    rules: int = 0
    findings: int = 0  # present in this run: open and waived
    open: int = 0
    waived: int = 0
    new: int = 0  # new, or back after being resolved
    resolved: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


def run_check(
    engine: Engine, job: CheckJob, emit: Callable[[CheckJob, CheckReport], None]
) -> CheckReport:
    """One scheduled policy evaluation over the store, recorded; whatever goes wrong is a
    problem in its report, and the worker goes on."""
    import time

    from clew.store import queries
    from policies import run

    report = CheckReport()
    try:
        now = datetime.now(UTC)
        window = queries.window_between(job.since, None, time.time_ns())
        ruleset = run.rules(job.packs, job.ruleset)
        outcome = run.check_store(engine, ruleset, window, now, waivers=job.waivers)
        summary = outcome.summary
        report.rules = outcome.evaluation.rules
        if summary is not None:
            report.findings, report.open, report.waived = (
                summary.findings,
                summary.open,
                summary.waived,
            )
            report.new, report.resolved = summary.opened, summary.resolved
    except KeyboardInterrupt:
        report.problems.append("abandoned on a second signal: its last transaction rolled back")
    except Exception as error:  # a pack that does not load, a store that is down: reported
        report.problems.append(f"{type(error).__name__}: {error}")
    emit(job, report)
    return report


def read_folder(engine: Engine, folder: Path) -> registries.PullReport:
    """A ``folder`` job: its files read as ``clew ingest --follow`` reads them, once."""
    from clew import pipeline
    from collectors import load_registry

    report = registries.PullReport(str(folder), FOLDER, api="folder")
    if not folder.exists():
        report.problems.append(f"{folder}: no such folder (yet)")
        return report
    refused: list[str] = []  # links in the folder that lead out of it
    files = [p for p in pipeline.expand([folder], refused) if p.is_file()]
    result = pipeline.ingest(engine, files, load_registry(), growing=True)
    report.problems.extend(refused)
    report.versions = sum(1 for r in result.reports if r.records)
    report.stored = sum(1 for r in result.reports if r.inserted)
    report.unchanged = sum(1 for r in result.reports if r.skipped)
    report.inserted, report.quarantined = result.inserted, result.quarantined
    report.problems.extend(result.problems)
    return report


Report = registries.PullReport | CheckReport | RetentionReport | Skipped


def summary(report: Report) -> str:
    """A run's report (or why it was left to another worker) in one line."""
    if isinstance(report, Skipped):
        return f"skipped {report.job}: {report.reason}"
    if isinstance(report, RetentionReport):
        return retention_summary(report.removed) if report.removed else "retention: not run"
    if isinstance(report, CheckReport):
        return (
            f"check policies: {report.rules} rules, {report.findings} findings ({report.open}"
            f" open, {report.waived} waived), {report.new} new, {report.resolved} resolved"
        )
    found = (
        f"{report.entities} entities"
        if report.kind == "backstage"
        else f"{report.versions + report.unchanged} files"
        if report.kind == FOLDER
        else f"{report.artifacts} artifacts"
    )
    parts = [
        f"{report.api or report.kind} {report.url}: {found}",
        f"{report.versions} read",
        f"{report.stored} stored",
        f"{report.unchanged} unchanged",
    ]
    for count, what in (
        (report.not_api, "not API contracts"),
        (report.disabled, "disabled"),
        (len(report.deprecated), "deprecated"),
        (report.other_entities, "of other API groups"),
        (report.quarantined, "quarantined"),
        (len(report.problems), "problems"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return ", ".join(parts)


def retention_summary(removed: retention.Report) -> str:
    """A retention pass in one line."""
    raw = sum(dropped.rows for dropped in removed.raw)
    days = len({day for dropped in removed.raw for day in dropped.days})
    verb = "would remove" if removed.dry_run else "removed"
    raw_from = removed.raw_from or "all"
    return (
        f"retention: {verb} {raw} raw rows over {days} days (kept from {raw_from}),"
        f" {removed.minute_cells} minute cells, {removed.ten_minute_blocks} 10-minute blocks and"
        f" {removed.failing_path_minutes} failing-path minutes (kept from"
        f" {removed.minutes_from or 'all'}), {removed.hour_and_day_blocks} hour and day blocks"
        f" (kept from {removed.hours_from or 'all'})"
    )


def _printer(as_json: bool, err: bool = False) -> Callable[[Any, Any], None]:
    """What a worker prints after each run: a line, or a JSON object on a line; on standard
    error with ``err`` (a serving process, whose standard output says where it listens)."""

    def emit(job: Job, report: Report) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        if as_json:
            stream = sys.stderr if err else sys.stdout
            stream.write(orjson.dumps({"at": at} | report.as_json()).decode() + "\n")
            stream.flush()
        else:
            click.echo(f"{at}  {summary(report)}", err=err)
        for problem in getattr(report, "problems", ()):
            click.echo(f"error: {problem}", err=True)

    return emit
