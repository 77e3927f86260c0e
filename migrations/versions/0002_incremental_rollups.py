"""incremental rollups: drop rollup_dirty, and the spans columns and indexes only SQL rollups used

Rollups are now kept incrementally in the transaction that stores their spans, so no minute is
ever left to recompute; pairing looks spans up by trace through the primary key. The derived
columns minute and latency_bucket, and the indexes on (minute, kind) and (trace_id,
parent_span_id), served only the SQL recomputation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:30:00
"""

import math
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pending = op.get_bind().execute(sa.text("SELECT count(*) FROM rollup_dirty")).scalar_one()
    if pending:
        # An ingest stopped before it recomputed these minutes; `clew db rebuild-rollups` redoes
        # every rollup from the spans.
        print(f"clew: {pending} minutes of rollups were left stale; run `clew db rebuild-rollups`")
    with op.batch_alter_table('spans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spans_trace_id_parent_span_id'))
        batch_op.drop_index(batch_op.f('ix_spans_minute_kind'))
        batch_op.drop_column('latency_bucket')
        batch_op.drop_column('minute')
    op.drop_table('rollup_dirty')


def downgrade() -> None:
    op.create_table('rollup_dirty',
    sa.Column('minute', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('minute', name=op.f('pk_rollup_dirty'))
    )
    # The derived columns come back filled: the minute from start_ns, and the latency bucket as
    # clew.store.histogram cut it at revision 0001 (frozen here, as a migration must be).
    with op.batch_alter_table('spans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('minute', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('latency_bucket', sa.Integer(), nullable=False, server_default='0'))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE spans SET minute = start_ns / 60000000000"))
    log_gamma = math.log((1 + 0.0195) / (1 - 0.0195))

    def bucket_of(duration_ns: int) -> int:
        return -(2**31) if duration_ns <= 0 else math.ceil(math.log(duration_ns) / log_gamma)

    durations = [d for (d,) in bind.execute(sa.text("SELECT DISTINCT duration_ns FROM spans"))]
    if durations:
        bind.execute(
            sa.text("UPDATE spans SET latency_bucket = :b WHERE duration_ns = :d"),
            [{"b": bucket_of(d), "d": d} for d in durations],
        )
    with op.batch_alter_table('spans', schema=None) as batch_op:
        batch_op.alter_column('minute', server_default=None)
        batch_op.alter_column('latency_bucket', server_default=None)
        batch_op.create_index(batch_op.f('ix_spans_minute_kind'), ['minute', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_spans_trace_id_parent_span_id'), ['trace_id', 'parent_span_id'], unique=False)
