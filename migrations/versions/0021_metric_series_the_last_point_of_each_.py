"""metric series: the last point of each connector metric series

``metric_series`` keeps, per series of an OpenTelemetry Collector connector's metrics (a digest
of its resource, scope, metric and attributes) and per start time, the last point counted: a
cumulative point is counted as its difference from it, whichever receiver took either
(``clew.pipeline.metric_points``). A delta series keeps the points it counted last, under start
time -1. Receivers keep nothing in memory, so this is the only state metrics need.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 06:42:58.230897
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_series")),
        sa.UniqueConstraint("series", "start_ns", name=op.f("uq_metric_series_series_start_ns")),
    )
    with op.batch_alter_table("metric_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metric_series_sender_start_ns"), ["sender", "start_ns"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_metric_series_time_ns"), ["time_ns"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("metric_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metric_series_time_ns"))
        batch_op.drop_index(batch_op.f("ix_metric_series_sender_start_ns"))
    op.drop_table("metric_series")
