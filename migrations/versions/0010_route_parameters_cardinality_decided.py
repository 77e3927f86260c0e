"""route parameters: segment positions cardinality decided are parameters

A gateway's paths whose segments hold values no heuristic knows (slugs, names) are templated by
cardinality; its decisions are kept so that later ingests template the same paths the same way.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:13:32
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('route_parameters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('prefix', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_parameters')),
    sa.UniqueConstraint(
        'service', 'method', 'prefix', name=op.f('uq_route_parameters_service_method_prefix')
    )
    )


def downgrade() -> None:
    op.drop_table('route_parameters')
