"""An ``sms.requested`` the broker lost is published again from the database, and still
sent at most once: what is due, what is not, final records left alone, a claim whose worker
died settled without a send if its send had started, sent once if not, several sweepers at
once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

from sqlalchemy import select, update

from services.core import redispatch
from services.core.factors.base import EnrollRequest
from services.core.factors.sms.ledger import (
    ClaimJob,
    StartMark,
    claim_many,
    lease_seconds,
    mark_started_many,
)
from services.core.models import DeliveryState, DispatchWatch, SmsDelivery
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.tokens import service
from shared.events.sms import SmsRequested
from shared.registry import parse_event
from tests.fakes.fake_twilio import FakeTwilio

BOUND = 5.0  # TWOFA_REDISPATCH_AFTER_SECONDS's default


def request(ctx: Context, publisher: RecordingPublisher, n: int = 1) -> list[dict[str, Any]]:
    """``n`` enrollment SMS requested; their ``sms.requested`` were published (and lost)."""
    for i in range(n):
        service.start_enrollment(ctx, f"user{i}", EnrollRequest("sms", "p", f"+4915110000{i:03d}"))
    return [e for e in publisher.published if e["type"] == "sms.requested"]


def copies(publisher: RecordingPublisher) -> list[dict[str, Any]]:
    return [e for e, audit in publisher.republished if not audit]


def run(envelope: dict[str, Any]) -> Any:
    from services.workers.tasks import sms as sms_tasks

    return sms_tasks.send.apply(args=[envelope]).result


def state(ctx: Context, envelope: dict[str, Any]) -> str | None:
    with ctx.sessions() as s:
        return s.scalar(select(SmsDelivery.state).where(
            SmsDelivery.message_id == uuid.UUID(envelope["data"]["message_id"])))


def watched(ctx: Context) -> int:
    with ctx.sessions() as s:
        return len(s.scalars(select(DispatchWatch)).all())


def test_a_lost_command_is_published_again_after_the_bound_and_sent_once(
        ctx: Context, publisher: RecordingPublisher, clock, run_sms, fake_twilio: FakeTwilio):
    (lost,) = request(ctx, publisher)
    clock.advance(BOUND - 0.1)
    assert redispatch.sweep(ctx).commands == 0  # not due yet
    clock.advance(0.1)
    assert redispatch.sweep(ctx).commands == 1
    (copy,) = copies(publisher)
    assert copy == lost  # the same envelope, to the same idempotent consumer
    assert run(copy) == "sent"
    assert run(lost) == "duplicate"  # the original turns up after all: not sent again
    assert len(fake_twilio.messages) == 1
    clock.advance(600)
    assert redispatch.sweep(ctx).commands == 0  # final: dropped, never published again
    assert watched(ctx) == 0 and len(copies(publisher)) == 1


def test_a_command_with_a_final_record_is_never_published_again(
        ctx: Context, publisher: RecordingPublisher, clock, run_sms, fake_twilio: FakeTwilio):
    request(ctx, publisher, 2)
    assert run_sms() == ["sent", "sent"]
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0
    assert watched(ctx) == 0 and copies(publisher) == []


def test_a_live_claim_waits_and_a_dead_one_is_settled_without_a_send(
        ctx: Context, publisher: RecordingPublisher, clock, run_sms, fake_twilio: FakeTwilio):
    (envelope,) = request(ctx, publisher)
    env, cmd = parse_event(envelope)
    assert isinstance(cmd, SmsRequested) and env.user_id
    (claim,) = claim_many(ctx, [ClaimJob(cmd, env.user_id)])
    # a worker claimed it, marked its send as started, then died mid-send
    assert mark_started_many(ctx, [StartMark(cmd.message_id, claim.attempt)]) == [True]
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0  # the claim is live: the send may be in flight
    clock.advance(lease_seconds(ctx) - BOUND)
    assert redispatch.sweep(ctx).commands == 1  # the lease is over: its worker died
    assert run(copies(publisher)[0]) == "unknown"  # Twilio may have it: never a second send
    assert fake_twilio.requests == [] and state(ctx, envelope) == DeliveryState.UNKNOWN
    clock.advance(600)
    assert redispatch.sweep(ctx).commands == 0


def test_a_dead_claim_whose_send_never_started_is_sent_once(
        ctx: Context, publisher: RecordingPublisher, clock, run_sms, fake_twilio: FakeTwilio):
    (envelope,) = request(ctx, publisher)
    env, cmd = parse_event(envelope)
    assert isinstance(cmd, SmsRequested) and env.user_id
    claim_many(ctx, [ClaimJob(cmd, env.user_id)])  # a worker claimed it, then died before sending
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0  # the claim is live
    clock.advance(lease_seconds(ctx) - BOUND)
    assert redispatch.sweep(ctx).commands == 1  # the lease is over: its worker died
    assert run(copies(publisher)[0]) == "sent"  # nothing reached Twilio: sent now
    assert run(envelope) == "duplicate"  # the original turns up after all
    assert len(fake_twilio.requests) == 1 and state(ctx, envelope) == DeliveryState.SENT
    with ctx.sessions() as s:
        assert s.scalar(select(SmsDelivery.attempts)) == 2
    clock.advance(600)
    assert redispatch.sweep(ctx).commands == 0


def test_a_released_claim_waits_for_its_retry(
        ctx: Context, publisher: RecordingPublisher, clock, run_sms, fake_twilio: FakeTwilio):
    (envelope,) = request(ctx, publisher)
    env, cmd = parse_event(envelope)
    assert isinstance(cmd, SmsRequested) and env.user_id
    claim_many(ctx, [ClaimJob(cmd, env.user_id)])
    with ctx.sessions.begin() as s:  # a transient error released it; a retry is waiting
        s.execute(update(SmsDelivery).values(claimed_at=None))
    clock.advance(ctx.settings.sms_retry_backoff_max_seconds)
    assert redispatch.sweep(ctx).commands == 0
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 1  # the retry was lost too
    assert run(copies(publisher)[0]) == "sent" and len(fake_twilio.messages) == 1


def test_copies_back_off_and_stop(ctx: Context, publisher: RecordingPublisher, clock, run_sms):
    request(ctx, publisher)  # and no worker ever takes it
    published_at = []
    for second in range(1, 3000):
        clock.advance(1)
        if redispatch.sweep(ctx).commands:
            published_at.append(second)
    waits = [b - a for a, b in pairwise([0, *published_at])]
    assert waits == [5, 10, 20, 40, 80, 160, 320, 320]  # x2 each time, up to 64x the bound
    assert len(published_at) == redispatch.MAX_REDISPATCHES and watched(ctx) == 0


def test_an_unpublished_command_is_left_to_the_relay(ctx: Context, publisher: RecordingPublisher,
                                                     clock, run_sms):
    publisher.down = True
    request(ctx, publisher)
    publisher.down = False
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0 and watched(ctx) == 1


def test_several_sweepers_publish_each_command_once(ctx: Context, publisher: RecordingPublisher,
                                                    clock, run_sms, fake_twilio: FakeTwilio):
    lost = request(ctx, publisher, 20)
    clock.advance(BOUND)
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: redispatch.redispatch_commands(ctx), range(8)))
    assert sum(counts) == 20
    assert sorted(e["event_id"] for e in copies(publisher)) == sorted(e["event_id"] for e in lost)
    for copy in copies(publisher):
        run(copy)
    for original in lost:
        run(original)
    assert len(fake_twilio.messages) == 20  # one per code


def test_a_refused_copy_is_due_again(ctx: Context, publisher: RecordingPublisher, clock, run_sms):
    request(ctx, publisher)
    clock.advance(BOUND)
    publisher.down = True
    assert redispatch.sweep(ctx).commands == 0
    publisher.down = False
    clock.advance(2 * BOUND)
    assert redispatch.sweep(ctx).commands == 1
