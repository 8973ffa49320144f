"""job outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:46:29.878535
"""

import sqlalchemy as sa
from alembic import op

import vc_plugin.core.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vc_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=100), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('on_final_failure', sa.String(length=200), nullable=True),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_outbox')),
    sa.UniqueConstraint('job_id', name=op.f('uq_vc_outbox_job_id'))
    )
    with op.batch_alter_table('vc_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_outbox_created_at'), ['created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vc_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_outbox_created_at'))

    op.drop_table('vc_outbox')
