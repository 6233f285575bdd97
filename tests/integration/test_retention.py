"""Published outbox rows and processed-event ids are pruned once old; nothing else is."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from services.core.plumbing.messaging import retention
from services.core.models import OutboxEvent, ProcessedEvent
from shared.events.recovery import RecoveryFailed

DAY = 86_400


def outbox(ctx) -> list[tuple[int, bool]]:
    with ctx.sessions() as session:
        return [(seq, published is not None) for seq, published in
                session.execute(select(OutboxEvent.seq, OutboxEvent.published_at).order_by(OutboxEvent.seq))]


def emit(ctx, n: int) -> list[int]:
    with ctx.uow() as uow:
        for _ in range(n):
            uow.emit(RecoveryFailed(reason="invalid"), user_id="alice")
        uow.commit()
    return [seq for seq, _ in outbox(ctx)][-n:]


def test_old_published_rows_and_processed_ids_go_unpublished_and_recent_ones_stay(ctx, clock, publisher):
    emit(ctx, 2)  # published at once (inline dispatch)
    publisher.down = True
    (stuck,) = emit(ctx, 1)  # never reached the broker: the relay still owes it
    publisher.down = False
    with ctx.sessions.begin() as session:
        session.add(ProcessedEvent(consumer="sms", event_id=uuid.uuid4(), processed_at=clock.now()))
    clock.advance(8 * DAY)
    (recent,) = emit(ctx, 1)
    with ctx.sessions.begin() as session:
        session.add(ProcessedEvent(consumer="sms", event_id=uuid.uuid4(), processed_at=clock.now()))

    assert retention.prune(ctx.sessions, clock.now(), 7 * DAY) == 3
    assert outbox(ctx) == [(stuck, False), (recent, True)]
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
    assert retention.prune(ctx.sessions, clock.now(), 7 * DAY) == 0


def test_a_pass_is_bounded(ctx, clock):
    seqs = emit(ctx, 5)
    later = clock.now() + timedelta(days=30)
    assert retention.prune(ctx.sessions, later, 7 * DAY, batch=2) == 2
    assert retention.prune(ctx.sessions, later, 7 * DAY, batch=2) == 2
    assert [s for s, _ in outbox(ctx)] == seqs[4:]
