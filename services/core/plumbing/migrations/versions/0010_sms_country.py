"""sms codes remember the destination country

Revision ID: 0013_sms_country
Revises: 0012_retention
"""

import sqlalchemy as sa
from alembic import op

revision = '0013_sms_country'
down_revision = '0012_retention'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.create_index(batch_op.f('ix_sms_codes_country'), ['country'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_codes_country'))
        batch_op.drop_column('country')

