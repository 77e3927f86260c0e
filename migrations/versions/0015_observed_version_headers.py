"""observed version headers: a header clients pin an API version with, seen in gateway traffic

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('observed_version_headers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=255), nullable=False),
    sa.Column('service', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('route', sa.Text(), nullable=False),
    sa.Column('header', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observed_version_headers')),
    sa.UniqueConstraint(
        'gateway', 'service', 'method', 'route',
        name=op.f('uq_observed_version_headers_gateway_service_method_route'),
    )
    )


def downgrade() -> None:
    op.drop_table('observed_version_headers')
