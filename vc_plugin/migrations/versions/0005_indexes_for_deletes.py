"""indexes on the foreign keys that deletes must look up (consent → invitation, appointment → planner)

Without them PostgreSQL scans vc_consent for every deleted invitation (the purge turns
quadratic) and vc_appointment for every deleted practitioner.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 04:40:00.000000
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vc_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_consent_invitation_id'), ['invitation_id'], unique=False)
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_appointment_created_by_id'), ['created_by_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_appointment_created_by_id'))
    with op.batch_alter_table('vc_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_consent_invitation_id'))
