"""sessions of a practitioner void before a moment (signing out ends copies of the cookie)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 03:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import vc_plugin.core.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vc_practitioner', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('sessions_valid_after', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('vc_practitioner', schema=None) as batch_op:
        batch_op.drop_column('sessions_valid_after')
