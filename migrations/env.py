"""Alembic environment: the models in clew.store.models are the only schema source."""

from __future__ import annotations

from alembic import context

from clew.store import open_engine
from clew.store.models import metadata
from clew.store.partitions import is_partition

config = context.config


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    from clew.store import database_url

    context.configure(
        url=database_url(config.get_main_option("sqlalchemy.url")),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the engine the caller handed in (or one opened from the URL)."""
    engine = config.attributes.get("engine") or open_engine(
        config.get_main_option("sqlalchemy.url")
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=_not_a_partition,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def _not_a_partition(name: str | None, type_: str, _parents: dict) -> bool:
    """Leave the raw tables' day partitions (PostgreSQL) out of autogenerate: the models list the
    partitioned tables, and ``clew.store.partitions`` makes their days."""
    return not (type_ == "table" and name is not None and is_partition(name))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
