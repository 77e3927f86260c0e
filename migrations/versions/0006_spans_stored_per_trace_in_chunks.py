"""spans stored per trace in chunks

A span is only ever read with the rest of its trace, so spans are now kept as a trace store keeps
them: one row per trace and write, its spans a MessagePack array of rows in the old column order.
The spans stored so far move into one chunk per trace; downgrading moves them back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 18:10:00
"""

from collections.abc import Sequence

import msgspec
import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The span columns in the order the chunks keep them (``clew.records.Span`` at this revision).
COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_ns",
    "duration_ns", "status", "status_message", "http_method", "http_route", "http_status",
    "url_path", "server_address", "peer_service", "db_system", "messaging_system",
    "messaging_destination", "rpc_service", "rpc_method", "attributes",
)
#: Traces moved per statement.
TRACES_PER_STEP = 1_000


def upgrade() -> None:
    op.create_table('span_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('span_count', sa.Integer(), nullable=False),
    sa.Column('spans', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_span_chunks'))
    )
    with op.batch_alter_table('span_chunks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_span_chunks_trace_id'), ['trace_id'], unique=False)
    _move_spans_into_chunks(op.get_bind())
    op.drop_table('spans')


def _move_spans_into_chunks(bind: sa.Connection) -> None:
    ids = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT trace_id FROM spans ORDER BY 1"))]
    select = sa.text(f"SELECT {', '.join(COLUMNS)} FROM spans WHERE trace_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    insert = sa.text(
        "INSERT INTO span_chunks (trace_id, start_ns, span_count, spans)"
        " VALUES (:trace_id, :start_ns, :span_count, :spans)"
    )
    for start in range(0, len(ids), TRACES_PER_STEP):
        by_trace: dict[str, list[list]] = {}
        for row in bind.execute(select, {"ids": ids[start : start + TRACES_PER_STEP]}):
            by_trace.setdefault(row[0], []).append(list(row))
        bind.execute(insert, [
            {
                "trace_id": trace_id,
                "start_ns": min(row[6] for row in rows),
                "span_count": len(rows),
                "spans": msgspec.msgpack.encode(rows),
            }
            for trace_id, rows in by_trace.items()
        ])


def downgrade() -> None:
    op.create_table('spans',
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('span_id', sa.String(length=16), nullable=False),
    sa.Column('parent_span_id', sa.String(length=16), nullable=True),
    sa.Column('service', sa.String(length=255), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('http_method', sa.String(length=16), nullable=True),
    sa.Column('http_route', sa.Text(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('url_path', sa.Text(), nullable=True),
    sa.Column('server_address', sa.String(length=255), nullable=True),
    sa.Column('peer_service', sa.String(length=255), nullable=True),
    sa.Column('db_system', sa.String(length=64), nullable=True),
    sa.Column('messaging_system', sa.String(length=64), nullable=True),
    sa.Column('messaging_destination', sa.Text(), nullable=True),
    sa.Column('rpc_service', sa.String(length=255), nullable=True),
    sa.Column('rpc_method', sa.String(length=255), nullable=True),
    sa.Column('attributes', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('trace_id', 'span_id', name=op.f('pk_spans'))
    )
    bind = op.get_bind()
    insert = sa.text(
        f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
        " ON CONFLICT DO NOTHING"
    )
    last = 0
    while True:
        chunks = bind.execute(
            sa.text("SELECT id, spans FROM span_chunks WHERE id > :last ORDER BY id LIMIT 1000"),
            {"last": last},
        ).all()
        if not chunks:
            break
        rows = [
            dict(zip(COLUMNS, row, strict=True))
            for _, data in chunks
            for row in msgspec.msgpack.decode(data)
        ]
        bind.execute(insert, rows)
        last = chunks[-1][0]
    with op.batch_alter_table('span_chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_span_chunks_trace_id'))
    op.drop_table('span_chunks')
