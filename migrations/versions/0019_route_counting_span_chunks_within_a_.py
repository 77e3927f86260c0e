"""route counting; span chunks within a time window

Two things a crash or a split trace must not change:

* ``route_counting``: the values cardinality has counted at route segment positions it has not
  decided on yet, kept with each batch, so a resumed ingest counts on where the killed one
  committed instead of from nothing.
* Span chunks hold spans that start within a minute of the chunk's earliest (``CHUNK_WINDOW_NS``),
  so the traces with a span in a given minute are found by the chunks' start index alone: a rollup
  cell whose maximum a correction took out is read back from them. Chunks stored before that
  spread wider are split here, in time order; downgrading leaves them split (a trace's spans are
  the union of its chunks either way).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 04:24:55.728063
"""

from collections.abc import Sequence

import msgspec
import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: ``clew.store.spans.CHUNK_WINDOW_NS`` at this revision.
CHUNK_WINDOW_NS = 60_000_000_000
#: Chunks read per statement.
CHUNKS_PER_STEP = 1_000
START, SPAN = 6, 1  # positions in a stored span row


def upgrade() -> None:
    op.create_table(
        "route_counting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("seen", sa.BigInteger(), nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_counting")),
        sa.UniqueConstraint(
            "service", "method", "prefix", name=op.f("uq_route_counting_service_method_prefix")
        ),
    )
    _split_wide_chunks(op.get_bind())


def _split_wide_chunks(bind: sa.Connection) -> None:
    """Every chunk whose spans start more than ``CHUNK_WINDOW_NS`` apart, replaced by chunks that
    each start within it of their earliest span."""
    last = 0
    end = bind.execute(sa.text("SELECT MAX(id) FROM span_chunks")).scalar() or 0
    select = sa.text(
        "SELECT id, trace_id, spans FROM span_chunks WHERE id > :last AND id <= :end"
        " ORDER BY id LIMIT :n"
    )
    insert = sa.text(
        "INSERT INTO span_chunks (trace_id, start_ns, span_count, spans)"
        " VALUES (:trace_id, :start_ns, :span_count, :spans)"
    )
    while last < end:
        chunks = bind.execute(select, {"last": last, "end": end, "n": CHUNKS_PER_STEP}).all()
        if not chunks:
            break
        wide, parts = [], []
        for chunk_id, trace_id, data in chunks:
            rows = msgspec.msgpack.decode(data)
            starts = [row[START] for row in rows]
            if max(starts) - min(starts) < CHUNK_WINDOW_NS:
                continue
            wide.append({"id": chunk_id})
            rows.sort(key=lambda row: (row[START], row[SPAN]))
            at = 0
            while at < len(rows):
                first = rows[at][START]
                upto = at
                while upto < len(rows) and rows[upto][START] - first < CHUNK_WINDOW_NS:
                    upto += 1
                parts.append(
                    {
                        "trace_id": trace_id,
                        "start_ns": first,
                        "span_count": upto - at,
                        "spans": msgspec.msgpack.encode(rows[at:upto]),
                    }
                )
                at = upto
        if wide:
            bind.execute(sa.text("DELETE FROM span_chunks WHERE id = :id"), wide)
            bind.execute(insert, parts)
        last = chunks[-1][0]


def downgrade() -> None:
    op.drop_table("route_counting")
