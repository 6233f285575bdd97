"""TOTP parameters of tokens made elsewhere

Revision ID: 0017_totp_params
Revises: 0016_enrollment_expiry
"""

import sqlalchemy as sa
from alembic import op

revision = '0017_totp_params'
down_revision = '0016_enrollment_expiry'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_params', sa.String(length=24), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('totp_params')

