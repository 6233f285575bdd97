"""Pruning what the messaging plumbing no longer needs: published outbox rows and the
consumers' processed-event ids, once older than ``TWOFA_MESSAGING_RETENTION_SECONDS``.

A published row has reached the broker and, through it, the audit log, which is the
record that is kept; an unpublished row is never pruned (the relay still owes it). A
processed-event id only has to outlive any redelivery of its event (the broker's
visibility timeout, the relay's grace), hence the retention's floor of an hour. Each
pass deletes a bounded batch, so the expiry sweep stays short.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from services.core.models import OutboxEvent, ProcessedEvent

BATCH = 1000


def prune(
    sessions: sessionmaker[Session], now: datetime, retention_seconds: int, batch: int = BATCH
) -> int:
    """Delete up to ``batch`` old rows of each kind; returns how many were deleted."""
    cutoff = now - timedelta(seconds=retention_seconds)
    with sessions.begin() as session:
        seqs = list(
            session.scalars(
                select(OutboxEvent.seq)
                .where(OutboxEvent.published_at.is_not(None), OutboxEvent.published_at < cutoff)
                .order_by(OutboxEvent.seq)
                .limit(batch)
            )
        )
        if seqs:
            session.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_(seqs)))
        keys = list(
            session.execute(
                select(ProcessedEvent.consumer, ProcessedEvent.event_id)
                .where(ProcessedEvent.processed_at < cutoff)
                .limit(batch)
            )
        )
        for consumer, event_id in keys:
            session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.consumer == consumer, ProcessedEvent.event_id == event_id
                )
            )
    return len(seqs) + len(keys)
