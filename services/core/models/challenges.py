"""Challenges: one per second-factor step, a login to an area or a step-up.

A step-up is a challenge with a ``purpose`` other than ``login`` and the ``target`` of its
one action (a token id, an area name); its success is spent by that action (``used_at``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UserIdStr, UtcDateTime
from shared.types import TokenType


class ChallengeState:
    PENDING = "pending"  # created, no factor chosen yet, or a factor chosen and waiting
    VERIFIED = "verified"
    APPROVED = "approved"  # push accepted on the phone
    DECLINED = "declined"
    FAILED = "failed"  # attempts exhausted or undeliverable
    EXPIRED = "expired"

    OPEN = (PENDING,)
    SUCCESS = (VERIFIED, APPROVED)


class Challenge(Base):
    __tablename__ = "challenges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[UserIdStr]
    area: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    token_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the selected factor
    token_type: Mapped[TokenType | None] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(32))  # why it failed or was declined
    correlation_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[UtcDateTime]
    expires_at: Mapped[UtcDateTime] = mapped_column(index=True)
    completed_at: Mapped[UtcDateTime | None]
    purpose: Mapped[str] = mapped_column(String(16), default="login", server_default="login")
    target: Mapped[str | None] = mapped_column(String(64))
    used_at: Mapped[UtcDateTime | None]
