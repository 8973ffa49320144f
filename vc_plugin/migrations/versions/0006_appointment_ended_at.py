"""when an appointment was last ended for everyone (reopening keeps earlier passes void)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import vc_plugin.core.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.drop_column('ended_at')
