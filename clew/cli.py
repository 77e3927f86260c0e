"""The ``clew`` command line.

Every subcommand takes ``--db``; those whose output a script would read take ``--json``.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import orjson

from clew import store
from clew.cli_options import db_option, json_option
from clew.cli_options import open_db as _open
from clew.store import queries


def _print_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _tune_gc_for_bulk_work() -> None:
    """Bulk ingest allocates millions of short-lived dicts; full collections over them would
    dominate. Objects alive now (modules, the engine) are frozen out of collection, and
    collections run less often."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@click.group()
@click.version_option(package_name="clew")
def main() -> None:
    """Clew: follow the thread through an integration landscape."""


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@db_option
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def db_upgrade(db: str | None, revision: str) -> None:
    """Create the database or upgrade its schema (Alembic)."""
    engine = store.open_engine(db)
    store.upgrade(engine, revision)
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@db.command("rebuild-rollups")
@db_option
@json_option
def db_rebuild_rollups(db: str | None, as_json: bool) -> None:
    """Recompute every trace rollup from the stored spans (after a change to pairing rules),
    root spans joined with the gateway requests stored."""
    from clew.pipeline import joins, rollups

    engine = _open(db)
    started = time.perf_counter()
    with _progress(not as_json) as progress:
        report = (lambda d, t: progress("spans", d, t)) if progress else None
        cells = rollups.rebuild(engine, report, root_callers=joins.callers)
    seconds = round(time.perf_counter() - started, 3)
    if as_json:
        _print_json({"rollup_rows": cells, "seconds": seconds})
    else:
        click.echo(f"{cells} rollup rows rebuilt in {seconds} s")


_TIMEZONE = re.compile(r"([+-])(\d\d):?(\d\d)$")


def _access_log_settings(
    gateway: str | None, consumer: str, hash_clients: bool, timezone: str | None
):
    """The settings of access-log collectors from ``clew ingest``'s options."""
    from collectors.access_logs import Settings

    if consumer not in ("auto", "client") and not (
        consumer.startswith("header:") and len(consumer) > 7
    ):
        raise click.BadParameter("auto, client or header:NAME", param_hint="--consumer")
    key = os.environ.get("CLEW_HASH_KEY", "")
    if hash_clients and not key:
        raise click.UsageError(
            "--hash-clients needs a secret key in CLEW_HASH_KEY: the same key gives the same"
            " hash for a client in every run, and without it a hash could be reversed by trying"
            " every address"
        )
    offset = 0
    if timezone is not None:
        match = _TIMEZONE.match(timezone)
        if match is None:
            raise click.BadParameter("an offset such as +01:00 or -0500", param_hint="--timezone")
        sign, hours, minutes = match.groups()
        offset = (int(hours) * 60 + int(minutes)) * (-1 if sign == "-" else 1)
    return Settings(
        gateway=gateway, consumer=consumer, hash_clients=hash_clients, hash_key=key, timezone=offset
    )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "format_name", default=None, help="Collector to use (default: detect).")
@click.option(
    "--log-format",
    "log_format",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Access logs: read the paths in the format a mapping file describes (an NGINX"
    " log_format, or JSON keys; see the README), instead of --format.",
)
@click.option(
    "--gateway", default=None, help="Access logs: the gateway's node name (default: the product)."
)
@click.option(
    "--consumer",
    default="auto",
    show_default=True,
    help="Access logs: who the caller is: auto (the identity the log names: a Kong consumer, an"
    " AWS API key; else the generic client), client (the client address), or header:NAME (a"
    " captured request header, else the client address).",
)
@click.option(
    "--hash-clients",
    is_flag=True,
    help="Access logs: keep client addresses only as a keyed hash (the key in CLEW_HASH_KEY).",
)
@click.option(
    "--timezone",
    default=None,
    help="Access logs: the UTC offset of times logged without one (HAProxy), e.g. +01:00.",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep reading until interrupted (Ctrl-C, SIGTERM): every --interval seconds, what the"
    " files gained, rotated files and new files in the folders included; a half-written last"
    " line waits for the next read. Prints a line (with --json, a JSON object) per read that"
    " found records.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="With --follow: seconds between two reads.",
)
@db_option
@json_option
def ingest(
    paths: tuple[Path, ...],
    format_name: str | None,
    log_format: Path | None,
    gateway: str | None,
    consumer: str,
    hash_clients: bool,
    timezone: str | None,
    follow: bool,
    interval: float,
    db: str | None,
    as_json: bool,
) -> None:
    """Ingest trace files, access logs, connector metrics files and folders of them.
    Unparseable input is quarantined with its reason."""
    from clew import pipeline
    from collectors import Registry, load_registry

    registry = load_registry()
    if format_name and format_name not in registry:
        raise click.BadParameter(
            f"unknown format {format_name!r}; known: {', '.join(sorted(registry))}",
            param_hint="--format",
        )
    if log_format is not None:
        format_name = _custom_format(registry, log_format, format_name)
    settings = _access_log_settings(gateway, consumer, hash_clients, timezone)
    registry = Registry(
        [
            collector.configured(settings) if hasattr(collector, "configured") else collector
            for collector in registry.values()
        ]
    )
    if follow:
        _follow(_open(db), paths, registry, format_name, interval, as_json)
        return
    # Large input is parsed in a worker process, forked now (with the collectors imported, and
    # nothing opened yet): it is ready at once, while this one opens the store.
    refused: list[str] = []  # links in a folder that lead out of it
    files = pipeline.expand((Path(p) for p in paths), refused)
    large = sum(p.stat().st_size for p in files if p.is_file()) > pipeline.WORKER_BYTES
    parser = pipeline.ParseWorker(fork=True) if large else None
    try:
        engine = _open(db)
        _tune_gc_for_bulk_work()
        with _progress(not as_json) as progress:
            result = pipeline.ingest(
                engine,
                files,
                registry,
                format_name=format_name,
                progress=progress,
                worker=parser,
            )
    finally:
        if parser is not None:
            parser.close()
    result.problems[:0] = refused
    if as_json:
        data = result.as_json()
        data.pop("reports")
        _print_json(
            {k: data[k] for k in ("files", "records", "inserted", "duplicates", "quarantined")}
            | {"unknown_service": data["unknown_service"], "problems": data["problems"]}
            | {"unread_metrics": data["unread_metrics"]}
        )
    else:
        click.echo(
            f"{result.files} files, {result.records} records: {result.inserted} inserted,"
            f" {result.duplicates} duplicates, {result.quarantined} quarantined"
        )
        if result.unknown_service:
            click.echo(f"{result.unknown_service} spans had no service.name (unknown_service)")
        if result.unread_metrics:
            click.echo(_unread_metrics(result.unread_metrics), err=True)
    with engine.connect() as conn:
        shown = _quarantined_since(conn, [r.path for r in result.reports if r.quarantined])
    for source, position, reason in shown:
        click.echo(f"{source}: {position}: {reason}", err=True)
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if result.problems:
        sys.exit(1)


def _unread_metrics(unread: dict[str, int]) -> str:
    """A note of the data points of metrics Clew does not read that connector metrics files
    held (counted, not kept), naming the first few metrics."""
    points = sum(unread.values())
    names = ", ".join(repr(name) for name in sorted(unread)[:5])
    more = f" and {len(unread) - 5} more" if len(unread) > 5 else ""
    return (
        f"note: {points} data point{'s' if points != 1 else ''} of metrics Clew does not read"
        f" (it reads the servicegraph and spanmetrics connectors') left: {names}{more}"
    )


def _follow(
    engine, paths: tuple[Path, ...], registry, format_name: str | None, interval: float, as_json
) -> None:
    """``clew ingest --follow``: read the paths again and again, each read resuming from the
    checkpoints the one before left (rotated files under their new names, by their identity),
    until SIGINT or SIGTERM; the read under way then finishes first (a second signal stops it
    at once: its batch is rolled back, so nothing is lost or stored twice)."""
    import signal
    import threading

    from clew import pipeline

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    totals = {"reads": 0, "records": 0, "inserted": 0, "duplicates": 0, "quarantined": 0}
    missing = [p for p in paths if not Path(p).exists()]
    for path in missing:
        if not as_json:
            click.echo(f"waiting for {path}", err=True)
    _tune_gc_for_bulk_work()
    started = time.time()
    told: set[str] = set()  # links refused, said once rather than on every read
    try:
        while not stop.is_set():
            refused: list[str] = []
            files = _followed_files(paths, since=started - interval, refused=refused)
            for problem in refused:
                if problem not in told:
                    told.add(problem)
                    click.echo(f"error: {problem}", err=True)
            result = pipeline.ingest(engine, files, registry, format_name=format_name, growing=True)
            totals["reads"] += 1
            for key in ("records", "inserted", "duplicates", "quarantined"):
                totals[key] += getattr(result, key)
            if result.records:
                _report_read(result, as_json)
            for problem in result.problems:
                click.echo(f"error: {problem}", err=True)
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        sys.stdout.write(orjson.dumps({"stopped": True} | totals).decode() + "\n")
    else:
        click.echo(
            f"stopped after {totals['reads']} reads: {totals['records']} records,"
            f" {totals['inserted']} inserted, {totals['quarantined']} quarantined"
        )


def _followed_files(
    paths: tuple[Path, ...], since: float, refused: list[str] | None = None
) -> list[Path]:
    """The files a read of ``--follow`` takes: those in the folders named (a link leading out
    of one is left out, and why added to ``refused``), and each file named after the files it
    was rotated to since ``since`` (``access.log.1``, ``access.log-20261206``, ``….gz``): a
    rotated file's last lines are read, from its checkpoint, before the new file."""
    import glob

    from clew import pipeline

    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(pipeline.expand([path], refused))
            continue
        pattern = glob.escape(path.name) + "[.-]*"
        rotated = [
            p for p in sorted(path.parent.glob(pattern)) if p.is_file() and _mtime(p) >= since
        ]
        files.extend(sorted(rotated, key=_mtime))
        if path.is_file():
            files.append(path)
    return list(dict.fromkeys(files))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _report_read(result, as_json: bool) -> None:
    """One read of ``--follow`` that found records: a line, or a JSON object on one line."""
    from datetime import UTC, datetime

    at = datetime.now(UTC).isoformat(timespec="seconds")
    counts = {k: getattr(result, k) for k in ("records", "inserted", "duplicates", "quarantined")}
    if as_json:
        sys.stdout.write(orjson.dumps({"at": at} | counts).decode() + "\n")
        sys.stdout.flush()
        return
    click.echo(
        f"{at}  {counts['records']} records: {counts['inserted']} inserted,"
        f" {counts['duplicates']} duplicates, {counts['quarantined']} quarantined"
    )


def _custom_format(registry, path: Path, format_name: str | None) -> str:
    """Registers the collector of a ``--log-format`` mapping file; its name."""
    from collectors.access_logs import custom

    if format_name:
        raise click.UsageError("--format and --log-format both name the format: give one")
    try:
        return registry.register(custom.collector(path)).name
    except ValueError as error:  # a MappingError, or another collector named so
        raise click.BadParameter(str(error), param_hint="--log-format") from None


def _quarantined_since(conn, sources: list[str], limit: int = 20) -> list[tuple[str, str, str]]:
    from sqlalchemy import bindparam, text

    if not sources:
        return []
    statement = text(
        "SELECT source, position, reason FROM quarantine WHERE source IN :sources"
        " ORDER BY id DESC LIMIT :limit"
    ).bindparams(bindparam("sources", expanding=True))
    return list(reversed(conn.execute(statement, {"sources": sources, "limit": limit}).all()))


def _window(since: str | None, until: str | None, hint: str = "--since/--until"):
    try:
        return queries.window_between(since, until, time.time_ns())
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from None


@main.command()
@db_option
@json_option
def contracts(db: str | None, as_json: bool) -> None:
    """The API contracts read (OpenAPI, AsyncAPI), each with its versions in the order they were
    first read: version, spec version, operations (deprecated among them), servers, and the
    references that could not be followed."""
    from dataclasses import asdict

    from clew.store import contracts as stored

    with _open(db).connect() as conn:
        found = stored.versions(conn)
    if as_json:
        _print_json([asdict(version) for version in found])
        return
    if not found:
        click.echo("no contracts read yet: clew ingest a contract file or folder")
        return
    title = None
    for version in found:
        if (version.kind, version.title) != title:
            title = (version.kind, version.title)
            click.echo(f"{version.title} ({version.kind})")
        deprecated = f", {version.deprecated} deprecated" if version.deprecated else ""
        click.echo(
            f"  {version.version or '(no version)'}  {version.spec_version}"
            f"  {version.operations} operations{deprecated}  {version.content_hash[:12]}"
            f"  {version.source}"
        )
        for problem in version.problems:
            click.echo(f"    ! {problem}")


def _contract_version(engine, reference: str) -> tuple[str, dict, list, tuple[str, ...]]:
    """A contract version named on the command line: a file (read as ``clew ingest`` would),
    else a stored version by its content hash (12 characters or more of it) or ``TITLE@VERSION``
    (the latest stored with that version). (label, document, operations, servers)."""
    from clew.records import Contract, Operation
    from clew.store import contracts as stored
    from collectors import Source
    from collectors.asyncapi import AsyncApiCollector, not_asyncapi
    from collectors.openapi import OpenApiCollector, ParseError, not_openapi, parse

    path = Path(reference)
    if path.is_file():
        try:
            document = parse(path.read_bytes(), str(path))
        except ParseError as error:
            raise click.BadParameter(f"{path}: {error}", param_hint="OLD/NEW") from None
        asyncapi = isinstance(document, dict) and "asyncapi" in document
        reason = not_asyncapi(document) if asyncapi else not_openapi(document)
        if reason is not None:
            raise click.BadParameter(f"{path}: {reason}", param_hint="OLD/NEW")
        collector = AsyncApiCollector() if asyncapi else OpenApiCollector()
        records = list(collector.collect(Source(path)))
        contract = next(r for r in records if type(r) is Contract)
        operations = [r for r in records if type(r) is Operation]
        return str(path), document, operations, contract.servers
    with engine.connect() as conn:
        found = stored.version(conn, reference)
    if found is None:
        raise click.BadParameter(
            f"{reference!r} is no file, and no stored version has that content hash or"
            " TITLE@VERSION (clew contracts lists them)",
            param_hint="OLD/NEW",
        )
    label, document, operations, servers = found
    return label, document, operations, servers


@main.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--since", default="7d", show_default=True, help="Consumers seen since: 3h, 7d, ISO 8601."
)
@click.option("--until", default=None, help="…and until (default: now).")
@click.option("--fail-on-breaking", is_flag=True, help="Exit 1 when a change is breaking (for CI).")
@db_option
@json_option
def diff(
    old: str,
    new: str,
    since: str | None,
    until: str | None,
    fail_on_breaking: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """The changes from one version of an OpenAPI or AsyncAPI contract to another, breaking ones
    first, each with the consumers seen calling what it breaks (for messages: the services
    consuming what is sent, producing what is received). OLD and NEW are files, or stored
    versions by content hash or TITLE@VERSION."""
    from dataclasses import asdict

    from clew import diff as contract_diff

    engine = _open(db)
    old_label, old_document, old_operations, old_servers = _contract_version(engine, old)
    new_label, new_document, _, _ = _contract_version(engine, new)
    window = _window(since, until)
    found = contract_diff.changes(old_document, new_document)
    with engine.connect() as conn:
        served = contract_diff.observed(conn, window, old_operations, old_servers)
    found = contract_diff.with_consumers(found, served)
    breaking = sum(change.breaking for change in found)
    if as_json:
        _print_json(
            {
                "old": old_label,
                "new": new_label,
                "service": served.service,
                "gateways": served.gateways,
                "breaking": breaking,
                "changes": [asdict(change) for change in found],
            }
        )
    else:
        click.echo(f"{old_label} -> {new_label}: {len(found)} changes, {breaking} breaking")
        if served.service:
            via = f" (through {', '.join(served.gateways)})" if served.gateways else ""
            click.echo(f"served by {served.service}{via}")
        for line in contract_diff.summary(found):
            click.echo(line)
    if fail_on_breaking and breaking:
        sys.exit(1)


@main.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["documented", "shadow", "zombie", "orphan", "unversioned"]),
    help="Only endpoints with this status (repeatable); unversioned is a flag beside the status.",
)
@click.option("--service", default=None, help="Only this service's endpoints.")
@click.option(
    "--since", default="7d", show_default=True, help="The window's start: 3h, 7d, ISO 8601."
)
@click.option("--until", default=None, help="…and its end (default: now).")
@click.option(
    "--schemes",
    default="path,server,header,media,query",
    show_default=True,
    help="The ways a client may pin a version that count (comma-separated).",
)
@db_option
@json_option
def endpoints(
    statuses: tuple[str, ...],
    service: str | None,
    since: str | None,
    until: str | None,
    schemes: str,
    db: str | None,
    as_json: bool,
) -> None:
    """The endpoint inventory: every endpoint from traffic and contracts with its status
    (documented, shadow, zombie, orphan; unversioned beside it), calls and errors in the window,
    callers, contract and owner."""
    from clew import inventory

    window = _window(since, until)
    wanted = [scheme.strip() for scheme in schemes.split(",") if scheme.strip()]
    with _open(db).connect() as conn:
        try:
            found = inventory.inventory(conn, window, schemes=wanted)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--schemes") from None
    if service is not None:
        found = [e for e in found if e.service == service]
    if statuses:
        found = [
            e
            for e in found
            if e.status in statuses or ("unversioned" in statuses and e.unversioned)
        ]
    if as_json:
        _print_json(inventory.as_json(found))
        return
    if not found:
        click.echo("no endpoints: ingest traffic and contracts, or widen --since")
        return
    counts = {s: sum(1 for e in found if e.status == s) for s in inventory.STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    unversioned = sum(e.unversioned for e in found)
    click.echo(f"{len(found)} endpoints: {summary}; {unversioned} unversioned")
    for e in found:
        flag = " unversioned" if e.unversioned else ""
        calls = f"{e.calls:,} calls, {e.errors:,} errors" if e.calls else "no calls"
        click.echo(f"  {e.status:<10} {e.service}  {e.method} {e.route}{flag}  ({calls})  {e.why}")


@main.command()
@click.option(
    "--since", default="7d", show_default=True, help="The window's start: 3h, 7d, ISO 8601."
)
@click.option("--until", default=None, help="…and its end (default: now).")
@db_option
@json_option
def dependencies(since: str | None, until: str | None, db: str | None, as_json: bool) -> None:
    """The catalog's declared dependencies against the edges traffic shows: undeclared ones
    (observed, not declared) first, then unused ones (declared, not observed in the window)."""
    from dataclasses import asdict

    from clew import inventory

    with _open(db).connect() as conn:
        found = inventory.dependencies(conn, _window(since, until))
    if as_json:
        _print_json([asdict(d) for d in found])
        return
    if not found:
        click.echo("no declared dependencies and no traffic from catalog components")
        return
    for d in found:
        how = f"{d.calls:,} calls" if d.calls else "no calls"
        by = f"  ({'; '.join(d.declared_by)})" if d.declared_by else ""
        click.echo(f"  {d.status:<10} {d.client} -> {d.server}  {how}{by}")


since_option = click.option(
    "--since", default=None, help="Start: 3h, 90m, 2d (before now), ISO 8601, epoch s."
)
until_option = click.option("--until", default=None, help="End, in the same forms (default: open).")


@main.command()
@since_option
@until_option
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Compare with the window before (same length), or with --baseline-since/--baseline-until.",
)
@click.option("--baseline-since", default=None, help="With --diff: the baseline window's start.")
@click.option("--baseline-until", default=None, help="With --diff: the baseline window's end.")
@db_option
@json_option
def graph(
    since: str | None,
    until: str | None,
    show_diff: bool,
    baseline_since: str | None,
    baseline_until: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """The dependency graph with per-edge rate, errors and latency, or its diff between windows."""
    window = _window(since, until)
    from clew import metrics

    engine = _open(db)
    if show_diff:
        with engine.connect() as conn:
            if baseline_since or baseline_until:
                baseline = _window(baseline_since, baseline_until, "--baseline-since/-until")
            else:
                baseline = metrics.previous_window(window, queries.data_range(conn)[1])
            changes = metrics.graph_diff(conn, baseline, window)
        if as_json:
            _print_json(changes)
            return
        _echo_diff(changes)
        return
    with engine.connect() as conn:
        view = metrics.graph_view(conn, window)
    if as_json:
        _print_json(view)
        return
    click.echo(f"{len(view['nodes'])} nodes, {len(view['edges'])} edges")
    for e in view["edges"]:
        click.echo(f"  {_edge_text(e)}")
    for cycle in view["cycles"]:
        click.echo("  cycle: " + " -> ".join([*cycle, cycle[0]]))


def _edge_text(e: dict) -> str:
    p95 = "-" if e["p95_ms"] is None else f"{e['p95_ms']:.1f}ms"
    return (
        f"{e['client']} -> {e['server']} [{e['connection_type']}] {e['count']} calls,"
        f" {e['error_ratio']:.1%} errors, p95 {p95}"
    )


def _echo_diff(changes: dict) -> None:
    click.echo(
        f"{len(changes['added'])} added, {len(changes['removed'])} removed,"
        f" {len(changes['changed'])} changed"
    )
    for e in changes["added"]:
        click.echo(f"  + {_edge_text(e)}")
    for e in changes["removed"]:
        click.echo(f"  - {_edge_text(e)}")
    for c in changes["changed"]:
        old, new = c["old"], c["new"]
        click.echo(
            f"  ~ {c['client']} -> {c['server']} [{c['connection_type']}]:"
            f" errors {old['error_ratio']:.1%} -> {new['error_ratio']:.1%},"
            f" p95 {old['p95_ms']}ms -> {new['p95_ms']}ms"
        )


def _ns_text(value_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@click.option("--failing", is_flag=True, required=True, help="Failing paths (the only kind yet).")
@since_option
@until_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@db_option
@json_option
def paths(
    failing: bool, since: str | None, until: str | None, limit: int, db: str | None, as_json: bool
) -> None:
    """Failing integration paths: entry operation to the failing edge, with counts and since
    when, and an exemplar trace for each (show it with `clew trace`)."""
    del failing
    window = _window(since, until)
    from clew import metrics

    engine = _open(db)
    with engine.connect() as conn:
        found = metrics.failing_paths(conn, window, limit=limit)
    if as_json:
        _print_json({"paths": found})
        return
    if not found:
        click.echo("no failing paths in the window")
    for p in found:
        edge = p["failing_edge"]
        click.echo(
            f"{p['count']:>6} failing traces since {_ns_text(p['first_seen_ns'])}"
            f" (last {_ns_text(p['last_seen_ns'])})\n"
            f"       {p['entry']['service']} {p['entry']['endpoint']}: "
            + " -> ".join(p["path"])
            + f"\n       failing edge {edge['client']} -> {edge['server']}: {p['error']}"
            f"\n       exemplar trace {p['exemplar']['trace_id']}"
            f" span {p['exemplar']['span_id']}"
        )


@main.command()
@click.argument("trace_id")
@db_option
@json_option
def trace(trace_id: str, db: str | None, as_json: bool) -> None:
    """One trace as a waterfall, with its failing span (!) and critical path (*): from the
    store, else from the Jaeger or Tempo query API CLEW_TRACE_QUERY_URL and
    CLEW_TRACE_QUERY_KIND name (fetched, never stored)."""
    from clew import exemplars

    try:
        trace_query = exemplars.from_environment()
    except exemplars.TraceQueryConfigError as error:
        raise click.ClickException(str(error)) from None
    found = exemplars.exemplar(_open(db), trace_id, trace_query)
    view = found.trace
    if view is None:
        raise click.ClickException(found.explanation())
    if as_json:
        _print_json(found.document())
        return
    origin = f" (fetched from {found.fetched_from.label})" if found.fetched_from else ""
    click.echo(
        f"trace {view['trace_id']}: {len(view['spans'])} spans, {len(view['services'])} services,"
        f" {view['duration_ns'] / 1e6:.1f} ms{origin}"
    )
    if found.unread_count:
        click.echo(f"{found.unread_count} parts of the answer could not be read:", err=True)
        for text in found.unread:
            click.echo(f"  {text}", err=True)
    for s in view["spans"]:
        mark = ("!" if s["failing"] else "x" if s["error"] else " ") + (
            "*" if s["critical"] else " "
        )
        offset = (s["start_ns"] - view["start_ns"]) / 1e6
        status = f"  {s['status_message']}" if s["error"] and s["status_message"] else ""
        click.echo(
            f"{mark} {offset:>9.1f} ms {s['duration_ns'] / 1e6:>9.1f} ms  "
            + "  " * s["depth"]
            + f"{s['service']}: {s['name']}{status}"
        )


#: Seconds a connection may sit idle (no byte read or sent, no request running) before
#: waitress closes it; it looks every ``cleanup_interval`` (30 s).
CHANNEL_TIMEOUT_S = 60


def waitress_settings() -> dict:
    """The settings of every waitress server Clew opens, chosen rather than inherited. Waitress
    reads a request whole in its own loop before a thread takes it, so a client that trickles
    its body or stalls holds a connection, never a thread; a stalled one is closed after
    ``CHANNEL_TIMEOUT_S``. A body over twice the receiver's limit is refused (413) before it is
    buffered (waitress's default is 1 GiB, spilled to a temporary file); one between gets the
    receiver's own 413."""
    from clew import wsgi

    return {
        "threads": wsgi.THREADS,
        "ident": "clew",
        "channel_timeout": CHANNEL_TIMEOUT_S,
        "max_request_body_size": wsgi.MAX_CONTENT_LENGTH,
    }


def _serve(app, host: str, port: int) -> None:
    from waitress import serve

    serve(app, host=host, port=port, **waitress_settings())


def _say_who_may_log_in(app, engine) -> None:
    """On standard error: that authentication is off, or how to make the first admin."""
    from clew.store import accounts

    if not app.config.get("AUTH"):
        click.echo(
            "authentication is off (CLEW_AUTH=false): anyone who reaches it may do anything",
            err=True,
        )
        return
    with engine.begin() as conn:
        admins = accounts.count_admins(conn)
    if not admins:
        click.echo(
            "no admin account yet: create the first with `clew users add NAME --role admin`"
            " (and API tokens with `clew tokens create --scope ingest|read|admin --name N`)",
            err=True,
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option(
    "--otlp-port",
    default=0,
    type=click.IntRange(0, 65535),
    metavar="N",
    help="Also serve the OTLP/HTTP receiver alone on this port (the OpenTelemetry default"
    " is 4318; 0 or absent: only on --port).",
)
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0, 512),
    metavar="N",
    help="Serve with gunicorn in N worker processes of 8 threads each, every port shared by"
    " all of them (the team tier); 0 or absent: one process, with waitress.",
)
@click.option(
    "--jobs",
    "jobs_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="CLEW_JOBS",
    help="A worker's TOML file ([[pull]], [[check]], [retention]): its jobs run inside this"
    " process, as clew worker runs them (the embedded tier). Not with --workers: run clew worker"
    " beside gunicorn instead.",
)
@db_option
def serve(
    host: str, port: int, otlp_port: int, workers: int, jobs_path: Path | None, db: str | None
) -> None:
    """Serve the console, the JSON API and the OTLP/HTTP receiver (POST /v1/traces and
    /v1/metrics), and with --jobs the jobs of a worker's file."""
    import logging
    import threading

    from waitress import create_server

    from clew import pull_cli, receiver, wsgi

    jobs = []
    if jobs_path is not None:
        if workers:
            raise click.UsageError(
                "--jobs runs the jobs inside one process: with --workers, run clew worker"
                " --config FILE beside gunicorn"
            )
        try:
            jobs = pull_cli.load_config(jobs_path)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--jobs") from None

    # The schema is made (or upgraded) under its lock: other processes may be starting too.
    app = wsgi.console({"DATABASE_URL": store.database_url(db)})
    _say_who_may_log_in(app, store.engine_of(app))
    if workers:
        store.engine_of(app).dispose()  # no connection may cross into the workers
        wsgi.serve(app, host, port, otlp_port, workers, announce=click.echo)
        return
    # Both sockets are bound before anything is printed, so a reader of the output may connect.
    console = create_server(app, host=host, port=port, **waitress_settings())
    if otlp_port:
        otlp = create_server(
            receiver.receiver_only(app), host=host, port=otlp_port, **waitress_settings()
        )
        threading.Thread(target=otlp.run, name="clew-otlp-http", daemon=True).start()
        click.echo(f"OTLP/HTTP receiver on http://{host}:{otlp.effective_port}{receiver.PATH}")
    click.echo(
        f"Clew console on http://{host}:{console.effective_port}/"
        f" (OTLP/HTTP also at {receiver.PATH})"
    )
    logging.basicConfig()  # waitress reports its queue and socket errors through logging
    scheduled = None
    if jobs:
        counted = f"{len(jobs)} job{'s' if len(jobs) > 1 else ''}"
        click.echo(f"{counted} of {jobs_path} run here, as clew worker runs them", err=True)
        scheduled = pull_cli.in_process(store.engine_of(app), jobs, pull_cli.job_printer())
    try:
        console.run()  # returns on Ctrl-C
    except KeyboardInterrupt:
        pass  # one that came before run() took over
    finally:
        if scheduled is not None:
            scheduled.shutdown(wait=True)  # the job under way finishes
        receiver.stop(app)  # batches already queued are committed before the exit


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the sample landscape and exit.")
@db_option
@json_option
def demo(host: str, port: int, no_serve: bool, db: str | None, as_json: bool) -> None:
    """Load the sample landscape (once an hour at most) and serve the console on it, the
    policies evaluated again every hour inside it."""
    from clew import pull_cli
    from clew.app import create_app
    from clew.demo import POLICY_WINDOW, load_sample

    engine = _open(db)
    _tune_gc_for_bulk_work()
    with _progress(not as_json) as progress:
        loaded = load_sample(engine, progress=progress)
    if as_json:
        _print_json(loaded)
    elif loaded["loaded"]:
        click.echo(f"sample landscape loaded: {loaded['inserted']} spans and gateway requests")
        if loaded.get("policies"):
            run = loaded["policies"]
            click.echo(
                f"policies evaluated: {run['findings']} findings, {run['open']} open and"
                f" {run['waived']} waived (the Governance page, or clew report)"
            )
    else:
        click.echo("sample landscape already loaded")
    if no_serve:
        return
    app = create_app(
        {
            "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "DEMO": True,
            "AUTH": False,  # the sample landscape on a laptop: no accounts, as the banner says
        }
    )
    click.echo(f"Clew console on http://{host}:{port}/")
    # The embedded tier's scheduler, inside: the run the load made is the first.
    check = pull_cli.CheckJob(every_s=3600.0, since=POLICY_WINDOW)
    scheduled = pull_cli.in_process(engine, [check], pull_cli.job_printer(), first_in_s=3600.0)
    click.echo("policies are evaluated again every hour, inside this process", err=True)
    try:
        _serve(app, host, port)
    finally:
        scheduled.shutdown(wait=True)


# Contract registries and catalog APIs over HTTP, and the worker that pulls them on a schedule.
from clew.pull_cli import pull, retention_command, worker  # noqa: E402

main.add_command(pull)
main.add_command(worker)
main.add_command(retention_command)

# The compliance report from the policies' findings, runs and waivers.
from clew.report_cli import report  # noqa: E402

main.add_command(report)

# Policies: evaluate them (on contract files, or on the store) and manage waivers.
from clew.policy_cli import check, waivers  # noqa: E402

main.add_command(check)
main.add_command(waivers)

# Local accounts with their roles, and API tokens.
from clew.account_cli import tokens, users  # noqa: E402

main.add_command(users)
main.add_command(tokens)
