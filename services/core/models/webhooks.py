"""Webhook subscriptions, each with its own cursor into the audit chain.

Deliveries are not rows of their own: what a subscriber gets is the audit chain (and
its signed checkpoints) from ``cursor`` on, so the order is the chain's order and a
replay is moving the cursor back. ``leased_until`` lets one worker at a time deliver
to a subscription (order), and ``next_attempt_at`` holds the back-off after a failure.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UtcDateTime


class SubscriptionState:
    ACTIVE = "active"
    DISABLED = "disabled"


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[Any]] = mapped_column(JSON)  # empty: every type
    secret_enc: Mapped[str] = mapped_column(Text)  # the whsec_ secret, encrypted
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[UtcDateTime]
    disabled_at: Mapped[UtcDateTime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)  # last audit position handled
    checkpoint_cursor: Mapped[int] = mapped_column(
        BigInteger, default=0
    )  # last checkpoint id handled
    leased_until: Mapped[UtcDateTime | None]
    next_attempt_at: Mapped[UtcDateTime | None]
    failing_since: Mapped[UtcDateTime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed attempts
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)  # messages a receiver accepted
