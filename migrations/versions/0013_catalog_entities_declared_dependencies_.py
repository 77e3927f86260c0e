"""catalog entities, declared dependencies, api definitions

A service catalog (Backstage): its entities by ref, the relations they declare (compared with the
edges traffic shows), and the API definitions they carry (read as contract versions).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 23:36:42
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_definitions',
    sa.Column('api_ref', sa.String(length=512), nullable=False),
    sa.Column('spec_type', sa.String(length=64), nullable=True),
    sa.Column('location', sa.String(length=1024), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('problems', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('api_ref', name=op.f('pk_api_definitions'))
    )
    with op.batch_alter_table('api_definitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_definitions_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_definitions_source'), ['source'], unique=False)

    op.create_table('catalog_entities',
    sa.Column('ref', sa.String(length=512), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=True),
    sa.Column('lifecycle', sa.String(length=255), nullable=True),
    sa.Column('owner', sa.String(length=512), nullable=True),
    sa.Column('system', sa.String(length=512), nullable=True),
    sa.Column('domain', sa.String(length=512), nullable=True),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('annotations', sa.Text(), nullable=True),
    sa.Column('links', sa.Text(), nullable=True),
    sa.Column('problems', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=1024), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ref', name=op.f('pk_catalog_entities'))
    )
    with op.batch_alter_table('catalog_entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_entities_source'), ['source'], unique=False)

    op.create_table('declared_dependencies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('from_ref', sa.String(length=512), nullable=False),
    sa.Column('to_ref', sa.String(length=512), nullable=False),
    sa.Column('relation', sa.String(length=32), nullable=False),
    sa.Column('declared_by', sa.String(length=512), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_declared_dependencies')),
    sa.UniqueConstraint('from_ref', 'to_ref', 'relation', 'declared_by', name=op.f('uq_declared_dependencies_from_ref_to_ref_relation_declared_by'))
    )
    with op.batch_alter_table('declared_dependencies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_declared_dependencies_from_ref'), ['from_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_declared_dependencies_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_declared_dependencies_to_ref'), ['to_ref'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('declared_dependencies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_declared_dependencies_to_ref'))
        batch_op.drop_index(batch_op.f('ix_declared_dependencies_source'))
        batch_op.drop_index(batch_op.f('ix_declared_dependencies_from_ref'))

    op.drop_table('declared_dependencies')
    with op.batch_alter_table('catalog_entities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_entities_source'))

    op.drop_table('catalog_entities')
    with op.batch_alter_table('api_definitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_definitions_source'))
        batch_op.drop_index(batch_op.f('ix_api_definitions_content_hash'))

    op.drop_table('api_definitions')
