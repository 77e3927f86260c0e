"""contract versions' registry state: DEPRECATED in the registry makes every operation a zombie

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contract_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registry_state', sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Dropped in place (SQLite 3.35 and later can): a copy of the table, as batch mode makes
    # one, cannot replace it while the operations' foreign key refers to it.
    with op.batch_alter_table('contract_versions', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('registry_state')
