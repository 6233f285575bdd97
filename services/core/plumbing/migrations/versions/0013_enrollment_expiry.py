"""the expiry sweep finds abandoned enrollments by their expiry

Revision ID: 0016_enrollment_expiry
Revises: 0015_pi_enrollments
"""

from alembic import op

revision = "0016_enrollment_expiry"
down_revision = "0015_pi_enrollments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tokens_enrollment_expires_at"), ["enrollment_expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_enrollment_expires_at"))
