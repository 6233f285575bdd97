"""sms deliveries record when the provider call may have started

Revision ID: 0019_sms_send_started
Revises: 0018_dispatch_watch
"""

import sqlalchemy as sa
from alembic import op

revision = '0019_sms_send_started'
down_revision = '0018_dispatch_watch'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sms_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_started_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sms_deliveries', schema=None) as batch_op:
        batch_op.drop_column('send_started_at')
