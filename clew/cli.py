"""The ``clew`` command line.

Every subcommand takes ``--db``; those whose output a script would read take ``--json``.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import orjson

from clew import store
from clew.store import queries

db_option = click.option(
    "--db",
    "db",
    envvar="CLEW_DATABASE_URL",
    default=None,
    metavar="URL",
    help="Database URL or SQLite file path (default: CLEW_DATABASE_URL, else ./clew.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


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


def _open(db: str | None):
    engine = store.open_engine(db)
    store.ensure_schema(engine)
    return engine


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
    """Recompute every trace rollup from the stored spans (after a change to pairing rules)."""
    from clew.pipeline import rollups

    engine = _open(db)
    started = time.perf_counter()
    with _progress(not as_json) as progress:
        report = (lambda d, t: progress("spans", d, t)) if progress else None
        cells = rollups.rebuild(engine, report)
    seconds = round(time.perf_counter() - started, 3)
    if as_json:
        _print_json({"rollup_rows": cells, "seconds": seconds})
    else:
        click.echo(f"{cells} rollup rows rebuilt in {seconds} s")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "format_name", default=None, help="Collector to use (default: detect).")
@db_option
@json_option
def ingest(paths: tuple[Path, ...], format_name: str | None, db: str | None, as_json: bool) -> None:
    """Ingest trace files and folders. Unparseable input is quarantined with its reason."""
    from clew.pipeline import ingest as run_ingest
    from collectors import load_registry

    registry = load_registry()
    if format_name and format_name not in registry:
        raise click.BadParameter(
            f"unknown format {format_name!r}; known: {', '.join(sorted(registry))}",
            param_hint="--format",
        )
    engine = _open(db)
    _tune_gc_for_bulk_work()
    with _progress(not as_json) as progress:
        result = run_ingest(engine, paths, registry, format_name=format_name, progress=progress)
    if as_json:
        data = result.as_json()
        data.pop("reports")
        _print_json(
            {k: data[k] for k in ("files", "records", "inserted", "duplicates", "quarantined")}
            | {"unknown_service": data["unknown_service"], "problems": data["problems"]}
        )
    else:
        click.echo(
            f"{result.files} files, {result.records} records: {result.inserted} inserted,"
            f" {result.duplicates} duplicates, {result.quarantined} quarantined"
        )
        if result.unknown_service:
            click.echo(f"{result.unknown_service} spans had no service.name (unknown_service)")
    with engine.connect() as conn:
        shown = _quarantined_since(conn, [r.path for r in result.reports if r.quarantined])
    for source, position, reason in shown:
        click.echo(f"{source}: {position}: {reason}", err=True)
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if result.problems:
        sys.exit(1)


def _quarantined_since(conn, sources: list[str], limit: int = 20) -> list[tuple[str, str, str]]:
    from sqlalchemy import bindparam, text

    if not sources:
        return []
    statement = text(
        "SELECT source, position, reason FROM quarantine WHERE source IN :sources"
        " ORDER BY id DESC LIMIT :limit"
    ).bindparams(bindparam("sources", expanding=True))
    return list(reversed(conn.execute(statement, {"sources": sources, "limit": limit}).all()))


@main.command()
@click.option("--since", default=None, help="Start: 3h, 90m, 2d (before now), ISO 8601, epoch s.")
@click.option("--until", default=None, help="End, in the same forms (default: open).")
@db_option
@json_option
def graph(since: str | None, until: str | None, db: str | None, as_json: bool) -> None:
    """The dependency graph with per-edge rate, errors and latency."""
    try:
        window = queries.window_between(since, until, time.time_ns())
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    from clew import metrics

    engine = _open(db)
    with engine.connect() as conn:
        view = metrics.graph_view(conn, window)
    if as_json:
        _print_json(view)
        return
    click.echo(f"{len(view['nodes'])} nodes, {len(view['edges'])} edges")
    for e in view["edges"]:
        p95 = "-" if e["p95_ms"] is None else f"{e['p95_ms']:.1f}ms"
        click.echo(
            f"  {e['client']} -> {e['server']} [{e['connection_type']}] {e['count']} calls,"
            f" {e['error_ratio']:.1%} errors, p95 {p95}"
        )
    for cycle in view["cycles"]:
        click.echo("  cycle: " + " -> ".join([*cycle, cycle[0]]))


def _serve(app, host: str, port: int) -> None:
    from waitress import serve

    serve(app, host=host, port=port, threads=8, ident="clew")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@db_option
def serve(host: str, port: int, db: str | None) -> None:
    """Serve the console and the JSON API."""
    from clew.app import create_app

    engine = _open(db)
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    click.echo(f"Clew console on http://{host}:{port}/")
    _serve(app, host, port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the sample landscape and exit.")
@db_option
@json_option
def demo(host: str, port: int, no_serve: bool, db: str | None, as_json: bool) -> None:
    """Load the sample landscape (once an hour at most) and serve the console on it."""
    from clew.app import create_app
    from clew.demo import load_sample

    engine = _open(db)
    _tune_gc_for_bulk_work()
    with _progress(not as_json) as progress:
        loaded = load_sample(engine, progress=progress)
    if as_json:
        _print_json(loaded)
    elif loaded["loaded"]:
        click.echo(f"sample landscape loaded: {loaded['inserted']} spans")
    else:
        click.echo("sample landscape already loaded")
    if no_serve:
        return
    app = create_app(
        {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "DEMO": True}
    )
    click.echo(f"Clew console on http://{host}:{port}/")
    _serve(app, host, port)
