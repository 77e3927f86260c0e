"""source read counts: records read from each source, and its latest run's start and records

What the Sources page shows beside a source's checkpoint: how much was read, and how fast.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_checkpoints', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('records', sa.BigInteger(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('run_started_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('run_records', sa.BigInteger(), server_default='0', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('ingest_checkpoints', schema=None) as batch_op:
        batch_op.drop_column('run_records')
        batch_op.drop_column('run_started_at')
        batch_op.drop_column('records')
