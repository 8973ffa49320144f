"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 03:29:45.536015
"""

import sqlalchemy as sa
from alembic import op

import vc_plugin.core.models


revision = '0001'
down_revision = None
branch_labels = ('vc_plugin',)
depends_on = None


def upgrade() -> None:
    op.create_table('vc_organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_organisation')),
    sa.UniqueConstraint('slug', name=op.f('uq_vc_organisation_slug'))
    )
    op.create_table('vc_api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['vc_organisation.id'], name=op.f('fk_vc_api_token_organisation_id_vc_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_api_token')),
    sa.UniqueConstraint('digest', name=op.f('uq_vc_api_token_digest'))
    )
    with op.batch_alter_table('vc_api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_api_token_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('vc_audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['vc_organisation.id'], name=op.f('fk_vc_audit_event_organisation_id_vc_organisation'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_audit_event'))
    )
    with op.batch_alter_table('vc_audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_vc_audit_event_at', ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_vc_audit_event_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('vc_organisation_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('wrapped_key', sa.String(length=200), nullable=False),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['vc_organisation.id'], name=op.f('fk_vc_organisation_key_organisation_id_vc_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_organisation_key'))
    )
    with op.batch_alter_table('vc_organisation_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_organisation_key_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('vc_practitioner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('practitioner', 'staff', 'admin', name='vc_role', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['vc_organisation.id'], name=op.f('fk_vc_practitioner_organisation_id_vc_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_practitioner')),
    sa.UniqueConstraint('issuer', 'subject', name='uq_vc_practitioner_issuer_subject'),
    sa.UniqueConstraint('public_id', name=op.f('uq_vc_practitioner_public_id'))
    )
    with op.batch_alter_table('vc_practitioner', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_practitioner_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('vc_appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('practitioner_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.Enum('single', 'group', name='vc_appointment_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('state', sa.Enum('planned', 'cancelled', 'ended', name='vc_appointment_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('relay_only', sa.Boolean(), nullable=False),
    sa.Column('label_encrypted', sa.Text(), nullable=True),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delete_after', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['vc_practitioner.id'], name=op.f('fk_vc_appointment_created_by_id_vc_practitioner'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organisation_id'], ['vc_organisation.id'], name=op.f('fk_vc_appointment_organisation_id_vc_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['practitioner_id'], ['vc_practitioner.id'], name=op.f('fk_vc_appointment_practitioner_id_vc_practitioner'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_appointment')),
    sa.UniqueConstraint('public_id', name=op.f('uq_vc_appointment_public_id'))
    )
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_appointment_delete_after'), ['delete_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_vc_appointment_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vc_appointment_practitioner_id'), ['practitioner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vc_appointment_starts_at'), ['starts_at'], unique=False)

    op.create_table('vc_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('patient', 'interpreter', 'relative', 'other', name='vc_participant_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('code_hash', sa.String(length=160), nullable=False),
    sa.Column('code_by_sms', sa.Boolean(), nullable=False),
    sa.Column('contact_encrypted', sa.Text(), nullable=True),
    sa.Column('delivery', sa.Enum('not_sent', 'queued', 'sent', 'failed', name='vc_delivery', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('delivery_changed_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivery_key', sa.String(length=32), nullable=True),
    sa.Column('failed_code_attempts', sa.Integer(), nullable=False),
    sa.Column('code_locked_until', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('code_locks', sa.Integer(), nullable=False),
    sa.Column('created_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['vc_appointment.id'], name=op.f('fk_vc_invitation_appointment_id_vc_appointment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_invitation')),
    sa.UniqueConstraint('public_id', name=op.f('uq_vc_invitation_public_id'))
    )
    with op.batch_alter_table('vc_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_invitation_appointment_id'), ['appointment_id'], unique=False)

    op.create_table('vc_consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('invitation_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('participation', 'relay', name='vc_consent_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('text_version', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('given_at', vc_plugin.core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['vc_appointment.id'], name=op.f('fk_vc_consent_appointment_id_vc_appointment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invitation_id'], ['vc_invitation.id'], name=op.f('fk_vc_consent_invitation_id_vc_invitation'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vc_consent'))
    )
    with op.batch_alter_table('vc_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vc_consent_appointment_id'), ['appointment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vc_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_consent_appointment_id'))

    op.drop_table('vc_consent')
    with op.batch_alter_table('vc_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_invitation_appointment_id'))

    op.drop_table('vc_invitation')
    with op.batch_alter_table('vc_appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_appointment_starts_at'))
        batch_op.drop_index(batch_op.f('ix_vc_appointment_practitioner_id'))
        batch_op.drop_index(batch_op.f('ix_vc_appointment_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_vc_appointment_delete_after'))

    op.drop_table('vc_appointment')
    with op.batch_alter_table('vc_practitioner', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_practitioner_organisation_id'))

    op.drop_table('vc_practitioner')
    with op.batch_alter_table('vc_organisation_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_organisation_key_organisation_id'))

    op.drop_table('vc_organisation_key')
    with op.batch_alter_table('vc_audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_audit_event_organisation_id'))
        batch_op.drop_index('ix_vc_audit_event_at')

    op.drop_table('vc_audit_event')
    with op.batch_alter_table('vc_api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vc_api_token_organisation_id'))

    op.drop_table('vc_api_token')
    op.drop_table('vc_organisation')
