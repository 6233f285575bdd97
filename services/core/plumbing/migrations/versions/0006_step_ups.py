"""step-ups are challenges: purpose, target and when the success was used

Revision ID: 0006_step_ups
Revises: 0005_privacyidea

The file name is the position in the chain; revision ids are stored in databases, so
they never change.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006_step_ups'
down_revision = '0005_privacyidea'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('purpose', sa.String(length=16), server_default='login', nullable=False)
        )
        batch_op.add_column(sa.Column('target', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('used_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.drop_column('used_at')
        batch_op.drop_column('target')
        batch_op.drop_column('purpose')
