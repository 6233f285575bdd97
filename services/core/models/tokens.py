"""Tokens: one row per second factor, whatever its type."""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UserIdStr, UtcDateTime
from shared.types import TokenType


class TokenState:
    PENDING = "pending"  # generated, QR shown
    SCANNED = "scanned"  # the user said "QR code scanned"
    CLIENTWAIT = "clientwait"  # push: waiting for the app's enrollment step 2
    UNCONFIRMED = "unconfirmed"  # first code accepted, waiting for a code of a later step
    ACTIVE = "active"
    LOCKED = "locked"  # max consecutive failures reached

    ENROLLING = (PENDING, SCANNED, CLIENTWAIT, UNCONFIRMED)
    USABLE = (ACTIVE,)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[UserIdStr]
    type: Mapped[TokenType] = mapped_column(String(8))
    serial: Mapped[str | None] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    secret_enc: Mapped[str | None] = mapped_column(Text)  # TOTP seed, encrypted
    phone_enc: Mapped[str | None] = mapped_column(Text)  # SMS number (E.164), encrypted
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    # TOTP: "digits/period/algorithm" of a token made elsewhere (imported); None: the
    # service's own settings, which every token enrolled here uses.
    totp_params: Mapped[str | None] = mapped_column(String(24))
    last_step: Mapped[int | None] = mapped_column(Integer)  # TOTP: highest accepted time step
    drift: Mapped[int] = mapped_column(Integer, default=0)  # TOTP: last seen offset, in steps
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed checks
    backoff_until: Mapped[UtcDateTime | None]
    created_at: Mapped[UtcDateTime]
    activated_at: Mapped[UtcDateTime | None]
    last_used_at: Mapped[UtcDateTime | None]
    # Indexed for the expiry sweep; NULL once the token is active.
    enrollment_expires_at: Mapped[UtcDateTime | None] = mapped_column(index=True)

    def __repr__(self) -> str:  # never show secrets, even encrypted ones
        return f"Token(id={self.id}, type={self.type}, state={self.state})"

    @property
    def is_active(self) -> bool:
        return self.state == TokenState.ACTIVE


