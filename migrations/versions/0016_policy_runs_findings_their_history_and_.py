"""policy runs, findings, their history and waivers

What the policies found, kept across runs (first and last seen, open, waived or resolved), one
history row per finding per run for trends, and the waivers that accept findings until they expire.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 01:33:19
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('finding_history',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'finding_id', name=op.f('pk_finding_history'))
    )
    with op.batch_alter_table('finding_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_history_finding_id'), ['finding_id'], unique=False)

    op.create_table('findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=255), nullable=False),
    sa.Column('pack', sa.String(length=255), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('team', sa.String(length=255), nullable=True),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('waiver_id', sa.Integer(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_run_id', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_findings_fingerprint'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_findings_rule'), ['rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_team'), ['team'], unique=False)

    op.create_table('policy_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('since_minute', sa.BigInteger(), nullable=True),
    sa.Column('until_minute', sa.BigInteger(), nullable=True),
    sa.Column('rules', sa.Integer(), nullable=False),
    sa.Column('findings', sa.Integer(), nullable=False),
    sa.Column('opened', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('coverage', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_runs'))
    )
    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_runs_started_at'), ['started_at'], unique=False)

    op.create_table('waivers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('approver', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('origin', sa.String(length=1024), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waivers'))
    )
    with op.batch_alter_table('waivers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waivers_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_waivers_origin'), ['origin'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('waivers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_waivers_origin'))
        batch_op.drop_index(batch_op.f('ix_waivers_expires_at'))

    op.drop_table('waivers')
    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_runs_started_at'))

    op.drop_table('policy_runs')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_team'))
        batch_op.drop_index(batch_op.f('ix_findings_state'))
        batch_op.drop_index(batch_op.f('ix_findings_rule'))

    op.drop_table('findings')
    with op.batch_alter_table('finding_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_history_finding_id'))

    op.drop_table('finding_history')
