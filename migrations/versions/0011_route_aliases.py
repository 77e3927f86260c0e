"""route aliases: a gateway's route template and the http.route of the spans that served it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('route_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('route', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_aliases')),
    sa.UniqueConstraint(
        'gateway', 'method', 'template', name=op.f('uq_route_aliases_gateway_method_template')
    )
    )


def downgrade() -> None:
    op.drop_table('route_aliases')
