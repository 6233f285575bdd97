"""pending sms codes, deleted once used or expired

Revision ID: 0014_pending_codes
Revises: 0013_sms_country
"""

import sqlalchemy as sa
from alembic import op

revision = '0014_pending_codes'
down_revision = '0013_sms_country'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_pending_codes',
    sa.Column('message_id', sa.Uuid(), nullable=False),
    sa.Column('code_enc', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_sms_pending_codes'))
    )
    with op.batch_alter_table('sms_pending_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_pending_codes_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sms_pending_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_pending_codes_expires_at'))

    op.drop_table('sms_pending_codes')
