"""push tokens, push challenges, push blocks

Revision ID: 0003
Revises: 0005

The file name is the position in the chain; revision ids are stored in databases, so
they never change.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('push_blocks',
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('challenge_id', sa.Uuid(), nullable=False),
    sa.Column('reports', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_push_blocks'))
    )
    op.create_table('push_challenges',
    sa.Column('challenge_id', sa.Uuid(), nullable=False),
    sa.Column('token_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('question', sa.String(length=512), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('sslverify', sa.String(length=1), nullable=False),
    sa.Column('options', sa.String(length=64), nullable=True),
    sa.Column('presence_answer', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], name=op.f('fk_push_challenges_challenge_id_challenges'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('challenge_id', name=op.f('pk_push_challenges'))
    )
    with op.batch_alter_table('push_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_challenges_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_challenges_token_id'), ['token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_challenges_user_id'), ['user_id'], unique=False)

    op.create_table('push_tokens',
    sa.Column('token_id', sa.Uuid(), nullable=False),
    sa.Column('credential_hash', sa.String(length=64), nullable=True),
    sa.Column('app_public_key', sa.Text(), nullable=True),
    sa.Column('server_key_enc', sa.Text(), nullable=True),
    sa.Column('fbtoken_enc', sa.Text(), nullable=True),
    sa.Column('poll_only', sa.Boolean(), nullable=False),
    sa.Column('fcm_unregistered', sa.Boolean(), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['token_id'], ['tokens.id'], name=op.f('fk_push_tokens_token_id_tokens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_push_tokens'))
    )


def downgrade() -> None:
    op.drop_table('push_tokens')
    with op.batch_alter_table('push_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_challenges_user_id'))
        batch_op.drop_index(batch_op.f('ix_push_challenges_token_id'))
        batch_op.drop_index(batch_op.f('ix_push_challenges_created_at'))
    op.drop_table('push_challenges')
    op.drop_table('push_blocks')
