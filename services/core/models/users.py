"""Per-user state: protected areas, the recovery token, the cross-factor failure count."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UtcDateTime


class UserProfile(Base):
    __tablename__ = "user_profiles"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[UtcDateTime]
    # Consecutive failures over all factors (NIST SP 800-63B rate limiting).
    failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_until: Mapped[UtcDateTime | None]
    # Recovery token: its hash for checking, its ciphertext only until the one download.
    recovery_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recovery_hash: Mapped[str | None] = mapped_column(String(64))
    recovery_pending_enc: Mapped[str | None] = mapped_column(Text)
    recovery_failures: Mapped[int] = mapped_column(Integer, default=0)
    recovery_backoff_until: Mapped[UtcDateTime | None]


class AreaProtection(Base):
    __tablename__ = "area_protection"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    area: Mapped[str] = mapped_column(String(64), primary_key=True)
    protected: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[UtcDateTime]
