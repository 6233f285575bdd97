"""The append-only audit log: each row chains the hash of the one before it."""

from __future__ import annotations

import uuid

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.models.messaging import BigIntPk
from services.core.plumbing.db import Base, JsonDict, UtcDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    position: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=False)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    occurred_at: Mapped[UtcDateTime] = mapped_column(index=True)
    recorded_at: Mapped[UtcDateTime]
    factor: Mapped[str | None] = mapped_column(String(8))  # token type, where the event has one
    outcome: Mapped[str | None] = mapped_column(String(24))  # for authentication events
    envelope: Mapped[JsonDict]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """A signed statement "the chain had ``hash`` at ``position``" (Ed25519).

    Checkpoints are what makes a cut tail visible: rows can be deleted from the end of
    the chain without breaking any hash, but not without losing a signed position.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(BigIntPk, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[UtcDateTime]
    key_id: Mapped[str] = mapped_column(String(16))  # fingerprint of the public key
    signature: Mapped[str] = mapped_column(String(128))  # base64 of the 64-byte signature
