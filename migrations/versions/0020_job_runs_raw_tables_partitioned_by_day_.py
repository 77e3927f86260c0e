"""job runs; raw tables partitioned by day on PostgreSQL

* ``job_runs``: each run of a ``clew worker`` job, by the job's key, so that workers sharing a
  database leave a job another ran within its interval.
* On PostgreSQL, ``span_chunks``, ``gateway_request_chunks`` and ``gateway_traces`` become tables
  partitioned by range of ``start_ns``, a partition per UTC day (``<table>_dYYYYMMDD``), with
  ``(id, start_ns)`` as their primary key (a partitioned table's keys hold its partition key);
  their rows are moved into the partitions, their id sequences kept. Retention then drops whole
  days (``clew.store.partitions``). SQLite's tables are unchanged. Downgrading makes them plain
  tables again, rows kept.

The statements are this revision's own (``clew.store.partitions`` makes later partitions).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 06:31:50.007488
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NS_PER_DAY = 86_400 * 1_000_000_000
#: The raw tables at this revision, and their indexes besides the primary key.
RAW_INDEXES = {
    "span_chunks": {"ix_span_chunks_start_ns": "start_ns", "ix_span_chunks_trace_id": "trace_id"},
    "gateway_request_chunks": {"ix_gateway_request_chunks_start_ns": "start_ns"},
    "gateway_traces": {"ix_gateway_traces_trace_id": "trace_id"},
}


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_runs_job_started_at"), ["job", "started_at"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        for table, indexes in RAW_INDEXES.items():
            _rebuild(table, indexes, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, indexes in RAW_INDEXES.items():
            _rebuild(table, indexes, partitioned=False)
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_job_started_at"))
    op.drop_table("job_runs")


def _rebuild(table: str, indexes: dict[str, str], partitioned: bool) -> None:
    """Make ``table`` again, partitioned by day or plain, with its rows, indexes and sequence."""
    conn = op.get_bind()
    old = f"{table}_before_0020"
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    op.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "pk_{table}" TO "pk_{old}"')
    for name in indexes:
        op.execute(f'DROP INDEX "{name}"')
    if partitioned:
        op.execute(
            f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS) PARTITION BY RANGE (start_ns)'
        )
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY (id, start_ns)')
        held = conn.execute(sa.text(f'SELECT DISTINCT start_ns / {NS_PER_DAY} FROM "{old}"'))
        for (day,) in held:
            day = int(day)
            name = f"{table}_d{datetime.fromtimestamp(day * 86_400, UTC):%Y%m%d}"
            op.execute(
                f'CREATE TABLE "{name}" PARTITION OF "{table}"'
                f" FOR VALUES FROM ({day * NS_PER_DAY}) TO ({(day + 1) * NS_PER_DAY})"
            )
    else:
        op.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS)')
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY (id)')
    for name, column in indexes.items():
        op.execute(f'CREATE INDEX "{name}" ON "{table}" ({column})')
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": old}
    ).scalar_one()
    op.execute(f'ALTER SEQUENCE {sequence} OWNED BY "{table}".id')
    op.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    op.execute(f'DROP TABLE "{old}"')
