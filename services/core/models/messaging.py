"""The transactional outbox and consumer de-duplication."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, JsonDict, UtcDateTime

BigIntPk = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class OutboxEvent(Base):
    """An event written in the same transaction as the state change it describes."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    type: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[JsonDict]
    created_at: Mapped[UtcDateTime]
    published_at: Mapped[UtcDateTime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class ProcessedEvent(Base):
    """(consumer, event_id) pairs a consumer has applied: the de-duplication record."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[UtcDateTime] = mapped_column(index=True)  # pruned by age


class DispatchWatch(Base):
    """A command (``sms.requested``, ``push.requested``) whose outcome is still owed.

    Written with the command's outbox row; the expiry sweep looks at it at ``due_at`` and
    either drops it (settled, or pointless now) or publishes the command again and moves
    ``due_at`` on (services.core.plumbing.messaging.redispatch). A broker may lose a
    message it already took; the database does not.
    """

    __tablename__ = "dispatch_watch"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    due_at: Mapped[UtcDateTime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times published again


class ReconcileCursor(Base):
    """How far a walk over the outbox has confirmed every row (e.g. in the audit chain)."""

    __tablename__ = "reconcile_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigIntPk)
