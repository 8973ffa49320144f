"""index on the planned end, for the retention purge

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 03:10:00.000000
"""

from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_appointment_ends_at'), ['ends_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_appointment_ends_at'))
