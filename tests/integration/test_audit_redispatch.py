"""An event the audit queue lost (published, yet never appended) is sent to the audit log
again from the database, and ends in the chain once; the walk's cursor moves past what the
chain holds, so a pass over a complete chain reads little and sends nothing."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from sqlalchemy import func, select

from services.core import redispatch
from services.core.audit import service as audit
from services.core.audit.verify import verify_chain
from services.core.factors.base import EnrollRequest
from services.core.models import AuditEntry, OutboxEvent, ReconcileCursor
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.tokens import service

BOUND = 30.0  # TWOFA_AUDIT_REDISPATCH_AFTER_SECONDS's default


def some_events(ctx: Context, publisher: RecordingPublisher, n: int) -> list[dict[str, Any]]:
    for i in range(n):
        service.start_enrollment(ctx, f"user{i}", EnrollRequest("sms", "p", f"+4915110000{i:03d}"))
    return list(publisher.published)


def audit_copies(publisher: RecordingPublisher) -> list[dict[str, Any]]:
    return [e for e, to_audit in publisher.republished if to_audit]


def chain_ids(ctx: Context) -> list[str]:
    with ctx.sessions() as s:
        return [str(i) for i in s.scalars(select(AuditEntry.event_id))]


def cursor(ctx: Context) -> int | None:
    with ctx.sessions() as s:
        return s.scalar(select(ReconcileCursor.seq))


def test_an_event_the_audit_queue_lost_is_in_the_chain_after_the_sweep(
        ctx: Context, publisher: RecordingPublisher, clock):
    events = some_events(ctx, publisher, 4)
    lost = [events[1], events[-1]]
    audit.record_many_in(ctx, [e for e in events if e not in lost])  # the rest arrived
    clock.advance(BOUND - 0.1)
    assert redispatch.sweep(ctx).audit == 0  # not due yet
    clock.advance(0.1)
    assert redispatch.sweep(ctx).audit == 2
    assert audit_copies(publisher) == lost
    assert audit.record_many_in(ctx, audit_copies(publisher)) == 2  # the audit consumer
    assert sorted(chain_ids(ctx)) == sorted(e["event_id"] for e in events)
    with ctx.sessions() as s:
        assert verify_chain(s).ok
        last = s.scalar(select(func.max(OutboxEvent.seq)))
    clock.advance(3600)
    assert redispatch.sweep(ctx).audit == 0
    assert cursor(ctx) == last  # everything up to here is known to be in the chain


def test_a_copy_that_arrives_twice_is_appended_once(ctx: Context, publisher: RecordingPublisher,
                                                    clock):
    events = some_events(ctx, publisher, 2)
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).audit == len(events)  # none arrived
    audit.record_many_in(ctx, events)  # the originals turn up after all
    assert audit.record_many_in(ctx, audit_copies(publisher)) == 0
    assert len(chain_ids(ctx)) == len(events)


def test_the_cursor_waits_at_a_gap_and_copies_back_off(ctx: Context,
                                                      publisher: RecordingPublisher, clock):
    events = some_events(ctx, publisher, 2)
    audit.record_many_in(ctx, events[:1])
    sent_at = []
    for second in range(1, 40_000, 5):
        clock.advance(5)
        if redispatch.sweep(ctx).audit:
            sent_at.append(second + 4)
    waits = [b - a for a, b in pairwise([0, *sent_at])]
    assert waits[:3] == [30, 60, 120]  # x2 each time (the relay did not count an attempt)
    assert len(sent_at) == redispatch.MAX_REDISPATCHES  # then given up, and passed
    with ctx.sessions() as s:
        assert cursor(ctx) == s.scalar(select(func.max(OutboxEvent.seq)))


def test_an_unpublished_event_is_left_to_the_relay(ctx: Context, publisher: RecordingPublisher,
                                                   clock):
    publisher.down = True
    some_events(ctx, publisher, 1)
    publisher.down = False
    clock.advance(BOUND * 10)
    assert redispatch.sweep(ctx).audit == 0
    assert cursor(ctx) is None  # and the walk waits for it (the cursor, at 0, is not written)
