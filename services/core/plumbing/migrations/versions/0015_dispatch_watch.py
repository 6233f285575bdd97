"""Commands whose outcome is still owed, and the cursor of the audit gap walk

Revision ID: 0018_dispatch_watch
Revises: 0017_totp_params
"""

import sqlalchemy as sa
from alembic import op

revision = '0018_dispatch_watch'
down_revision = '0017_totp_params'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dispatch_watch',
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_dispatch_watch')),
    )
    with op.batch_alter_table('dispatch_watch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispatch_watch_due_at'), ['due_at'], unique=False)
    op.create_table(
        'reconcile_cursors',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_reconcile_cursors')),
    )


def downgrade() -> None:
    op.drop_table('reconcile_cursors')
    with op.batch_alter_table('dispatch_watch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispatch_watch_due_at'))
    op.drop_table('dispatch_watch')
