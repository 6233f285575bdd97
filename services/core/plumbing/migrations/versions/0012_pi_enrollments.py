"""tokens enrolled inside a privacyIDEA login

Revision ID: 0015_pi_enrollments
Revises: 0014_pending_codes
"""

import sqlalchemy as sa
from alembic import op

revision = '0015_pi_enrollments'
down_revision = '0014_pending_codes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pi_enrollments',
    sa.Column('transaction_id', sa.String(length=20), nullable=False),
    sa.Column('token_id', sa.Uuid(), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('optional', sa.Boolean(), nullable=False),
    sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['token_id'], ['tokens.id'], name=op.f('fk_pi_enrollments_token_id_tokens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_pi_enrollments')),
    sa.UniqueConstraint('token_id', name=op.f('uq_pi_enrollments_token_id'))
    )


def downgrade() -> None:
    op.drop_table('pi_enrollments')
