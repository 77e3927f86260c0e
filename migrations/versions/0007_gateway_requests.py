"""gateway requests: API gateway access-log requests in chunks, and those that carry a trace id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('gateway_request_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=255), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('end_ns', sa.BigInteger(), nullable=False),
    sa.Column('request_count', sa.Integer(), nullable=False),
    sa.Column('requests', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_request_chunks'))
    )
    with op.batch_alter_table('gateway_request_chunks', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_gateway_request_chunks_start_ns'), ['start_ns'], unique=False
        )
    op.create_table('gateway_traces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('gateway', sa.String(length=255), nullable=False),
    sa.Column('consumer', sa.String(length=255), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=True),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_traces'))
    )
    with op.batch_alter_table('gateway_traces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_traces_trace_id'), ['trace_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('gateway_traces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_traces_trace_id'))
    op.drop_table('gateway_traces')
    with op.batch_alter_table('gateway_request_chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_request_chunks_start_ns'))
    op.drop_table('gateway_request_chunks')
