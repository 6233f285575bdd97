"""sms codes and deliveries

Revision ID: 0002_sms
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002_sms'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('challenge_id', sa.Uuid(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_codes'))
    )
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_codes_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_codes_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_codes_token_id'), ['token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_codes_user_id'), ['user_id'], unique=False)

    op.create_table('sms_deliveries',
    sa.Column('message_id', sa.Uuid(), nullable=False),
    sa.Column('token_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('challenge_id', sa.Uuid(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('provider_message_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_sms_deliveries')),
    sa.UniqueConstraint('provider_message_id', name=op.f('uq_sms_deliveries_provider_message_id'))
    )
    with op.batch_alter_table('sms_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_deliveries_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sms_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_deliveries_user_id'))
    op.drop_table('sms_deliveries')
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_codes_user_id'))
        batch_op.drop_index(batch_op.f('ix_sms_codes_token_id'))
        batch_op.drop_index(batch_op.f('ix_sms_codes_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_sms_codes_created_at'))
    op.drop_table('sms_codes')
