"""The idempotency record for many messages per transaction (the worker's batched path):
each message gets the verdict it would get alone, a claim whose worker died is sent again
only if its send had not started, and ``sms.sent`` is written once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.models import DeliveryState, SmsDelivery
from services.core.factors.sms.ledger import (
    BatchingLedger,
    ClaimJob,
    SentRecord,
    StartMark,
    claim_many,
    lease_seconds,
    mark_started_many,
    record_sent_many,
)
from services.core.factors.sms.delivery import deliver
from services.core.factors.sms.sender import SmsReceipt
from services.core.plumbing.clock import as_utc
from services.core.plumbing.providers.errors import TransientProviderError
from services.core.tokens import service
from services.core.factors.base import EnrollRequest
from shared.events.sms import SmsRequested
from shared.registry import parse_event


def requested(ctx: Context, publisher: RecordingPublisher, n: int) -> list[ClaimJob]:
    for i in range(n):
        service.start_enrollment(ctx, f"user{i}", EnrollRequest("sms", "p", f"+4915110000{i:03d}"))
    jobs = []
    for raw in publisher.published:
        if raw["type"] == "sms.requested":
            env, cmd = parse_event(raw)
            assert isinstance(cmd, SmsRequested) and env.user_id
            jobs.append(ClaimJob(cmd, env.user_id))
    return jobs


def rows(ctx: Context) -> dict[uuid.UUID, SmsDelivery]:
    with ctx.sessions() as s:
        return {r.message_id: r for r in s.scalars(select(SmsDelivery))}


def sent(job: ClaimJob, sid: str) -> SentRecord:
    return SentRecord(job.cmd, job.user_id, "twilio", sid)


def mark(job: ClaimJob, attempt: int = 1) -> StartMark:
    return StartMark(job.cmd.message_id, attempt)


def test_one_batch_gives_each_message_its_own_verdict(ctx: Context, publisher, clock) -> None:
    fresh, final, live, dead, released, unstarted = requested(ctx, publisher, 6)
    claim_many(ctx, [final, live, dead, released, unstarted])
    assert mark_started_many(ctx, [mark(dead)]) == [True]
    record_sent_many(ctx, [sent(final, "SMfinal")])
    with ctx.sessions.begin() as s:
        old = clock.now() - timedelta(seconds=lease_seconds(ctx) + 1)
        s.execute(update(SmsDelivery).where(SmsDelivery.message_id.in_(
            [dead.cmd.message_id, unstarted.cmd.message_id])).values(claimed_at=old))
        s.execute(update(SmsDelivery).where(SmsDelivery.message_id == released.cmd.message_id)
                  .values(claimed_at=None))

    claims = claim_many(ctx, [fresh, final, live, dead, released, unstarted, fresh])

    assert [c.verdict for c in claims] == ["send", "done", "busy", "lost", "send", "send", "busy"]
    assert claims[0].phone_enc and claims[4].phone_enc  # the number comes with the claim
    assert ctx.keyring.decrypt(claims[0].phone_enc) == "+4915110000000"
    assert [c.phone_enc for c in claims[1:4]] == [None, None, None]
    assert [claims[i].attempt for i in (0, 4, 5)] == [1, 2, 2]
    after = rows(ctx)
    assert after[fresh.cmd.message_id].attempts == 1
    assert after[released.cmd.message_id].attempts == 2
    assert after[unstarted.cmd.message_id].attempts == 2
    assert after[unstarted.cmd.message_id].claimed_at is not None
    assert after[fresh.cmd.message_id].state == DeliveryState.SENDING
    assert after[dead.cmd.message_id].attempts == 1  # left to its "lost" verdict


def test_a_mark_needs_the_claim_it_was_given(ctx: Context, publisher, clock) -> None:
    current, taken_over, settled = requested(ctx, publisher, 3)
    claim_many(ctx, [current, taken_over, settled])
    with ctx.sessions.begin() as s:  # the lease of taken_over passed: another worker took it
        old = clock.now() - timedelta(seconds=lease_seconds(ctx) + 1)
        s.execute(update(SmsDelivery).where(SmsDelivery.message_id == taken_over.cmd.message_id)
                  .values(claimed_at=old))
    assert claim_many(ctx, [taken_over])[0].attempt == 2
    record_sent_many(ctx, [sent(settled, "SMsettled")])

    assert mark_started_many(ctx, [mark(current), mark(taken_over), mark(settled)]) == [
        True, False, False]
    after = rows(ctx)
    assert after[current.cmd.message_id].send_started_at is not None
    assert after[taken_over.cmd.message_id].send_started_at is None
    assert after[settled.cmd.message_id].send_started_at is None


def test_sent_is_recorded_once_per_message_with_its_event(ctx: Context, publisher) -> None:
    a, b, c = requested(ctx, publisher, 3)
    claim_many(ctx, [a, b, c])
    assert record_sent_many(ctx, [sent(a, "SMa"), sent(b, "SMb")]) == [True, True]
    # c was settled elsewhere meanwhile; a is recorded already: neither is recorded again.
    with ctx.sessions.begin() as s:
        s.execute(update(SmsDelivery).where(SmsDelivery.message_id == c.cmd.message_id)
                  .values(state=DeliveryState.FAILED, claimed_at=None))
    assert record_sent_many(ctx, [sent(c, "SMc"), sent(a, "SMa2")]) == [False, False]
    after = rows(ctx)
    assert (after[a.cmd.message_id].state, after[a.cmd.message_id].provider_message_id) == ("sent", "SMa")
    assert after[b.cmd.message_id].provider_message_id == "SMb"
    assert after[b.cmd.message_id].claimed_at is None
    assert after[c.cmd.message_id].state == DeliveryState.FAILED
    sms_sent = [e["data"] for e in publisher.published if e["type"] == "sms.sent"]
    assert sorted(e["provider_message_id"] for e in sms_sent) == ["SMa", "SMb"]


def test_a_recorded_unknown_outcome_becomes_sent(ctx: Context, publisher) -> None:
    (a,) = requested(ctx, publisher, 1)
    claim_many(ctx, [a])
    with ctx.sessions.begin() as s:  # a redelivery gave the claim up for lost meanwhile
        s.execute(update(SmsDelivery).values(state=DeliveryState.UNKNOWN, claimed_at=None))
    assert record_sent_many(ctx, [sent(a, "SMlate")]) == [True]
    assert rows(ctx)[a.cmd.message_id].state == DeliveryState.SENT


def test_threads_sharing_a_batching_ledger(ctx: Context, publisher) -> None:
    jobs = requested(ctx, publisher, 40)
    ledger = BatchingLedger(ctx, linger=0.01)

    def one(job: ClaimJob) -> tuple[str, bool]:
        claim = ledger.claim(job)
        if claim.verdict != "send":
            return claim.verdict, False
        assert ledger.mark_started(StartMark(job.cmd.message_id, claim.attempt))
        return claim.verdict, ledger.record_sent(sent(job, f"SM{job.cmd.message_id.hex}"))

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, jobs + jobs[:5]))  # five delivered twice, concurrently
    assert outcomes.count(("send", True)) == 40
    assert sorted(v for v, _ in outcomes if v != "send") in (
        sorted(["busy"] * k + ["done"] * (5 - k)) for k in range(6))
    assert {r.state for r in rows(ctx).values()} == {DeliveryState.SENT}
    assert all(r.send_started_at is not None for r in rows(ctx).values())
    assert len([e for e in publisher.published if e["type"] == "sms.sent"]) == 40


class Inspecting:
    """A sender that reads the message's record when called, then fails transiently."""

    name = "twilio"

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.seen = ctx, []

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        self.seen.append(rows(self.ctx)[reference].send_started_at)
        raise TransientProviderError("twilio 503")


def test_the_mark_is_committed_before_the_call_and_a_release_clears_it(
        ctx: Context, publisher, clock) -> None:
    (job,) = requested(ctx, publisher, 1)
    sender = Inspecting(ctx)
    with pytest.raises(TransientProviderError):
        deliver(ctx, sender, job.cmd, job.user_id, last_attempt=False,
                ledger=BatchingLedger(ctx))
    assert [as_utc(t) for t in sender.seen] == [clock.now()]  # committed, seen by another session
    row = rows(ctx)[job.cmd.message_id]
    assert (row.claimed_at, row.send_started_at) == (None, None)
    # the retry's worker dies after its claim: nothing was started, so it is sent after all
    claim_many(ctx, [job])
    clock.advance(lease_seconds(ctx) + 1)
    assert claim_many(ctx, [job])[0].verdict == "send"
