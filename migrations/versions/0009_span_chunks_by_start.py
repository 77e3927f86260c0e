"""span chunks by start: the spans stored in a time range, found without a scan

A gateway log read after the traces of its requests joins each request to the root span that
served it by method, path and time, so the writer asks for the span chunks of the log's minutes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('span_chunks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_span_chunks_start_ns'), ['start_ns'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('span_chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_span_chunks_start_ns'))
