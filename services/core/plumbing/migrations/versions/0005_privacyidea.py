"""privacyIDEA-compatible API: transaction ids and service accounts

Revision ID: 0005_privacyidea
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_privacyidea'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pi_transactions',
    sa.Column('transaction_id', sa.String(length=20), nullable=False),
    sa.Column('challenge_id', sa.Uuid(), nullable=False),
    sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], name=op.f('fk_pi_transactions_challenge_id_challenges'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_pi_transactions')),
    sa.UniqueConstraint('challenge_id', name=op.f('uq_pi_transactions_challenge_id'))
    )
    op.create_table('pi_service_accounts',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_pi_service_accounts'))
    )


def downgrade() -> None:
    op.drop_table('pi_service_accounts')
    op.drop_table('pi_transactions')
