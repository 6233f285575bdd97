"""What the privacyIDEA-compatible API keeps beside twofa's own rows.

A privacyIDEA transaction id is a twofa challenge under another name: 20 random digits
on the wire (what the plugins store and send back), one row per challenge. The row also
records the push *finalize* (the plugin's empty-pass ``/validate/check`` after the phone
said yes), which privacyIDEA makes single use. Service accounts are the ``/auth`` logins
of plugins that call ``/validate/triggerchallenge``; only a SHA-256 of their generated
password is stored.

A token enrolled inside a login (privacyIDEA's ``enroll_via_multichallenge``) is named by a
transaction id of its own: the plugin answers it like a challenge (a code, or the push
finalize), or cancels it when the enrollment is optional.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UtcDateTime


class PiTransaction(Base):
    __tablename__ = "pi_transactions"

    transaction_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    challenge_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("challenges.id", ondelete="CASCADE"), unique=True
    )
    finalized_at: Mapped[UtcDateTime | None]


class PiEnrollment(Base):
    __tablename__ = "pi_enrollments"

    transaction_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tokens.id", ondelete="CASCADE"), unique=True
    )
    area: Mapped[str] = mapped_column(String(64))
    optional: Mapped[bool]
    finalized_at: Mapped[UtcDateTime | None]


class PiServiceAccount(Base):
    __tablename__ = "pi_service_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[UtcDateTime]
    revoked_at: Mapped[UtcDateTime | None]
