"""What every ``clew`` command module shares: the ``--db`` and ``--json`` options and opening
the store. Its own module, so that ``clew.cli`` and the command modules it adds (``pull_cli``,
``policy_cli``, ``report_cli``, ``account_cli``) take them from one place without importing each
other."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from clew import store

db_option = click.option(
    "--db",
    "db",
    envvar="CLEW_DATABASE_URL",
    default=None,
    metavar="URL",
    help="Database URL or SQLite file path (default: CLEW_DATABASE_URL, else ./clew.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def open_db(db: str | None) -> Engine:
    """The store at ``db`` (``--db``), created or upgraded to the latest schema."""
    engine = store.open_engine(db)
    store.ensure_schema(engine)
    return engine
