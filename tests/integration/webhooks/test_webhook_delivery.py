"""Delivering the audit chain to subscribers: signed, in order, at least once, bounded."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import delete

from services.core.audit import service
from services.core.audit.external import read_checkpoints
from services.core.audit.service import signer_for, verifier_for
from services.core.audit.verify import verify_chain
from services.core.models import AuditCheckpoint, SubscriptionState, WebhookSubscription
from services.core.webhooks import delivery, subscriptions
from services.core.webhooks.poster import HttpPoster
from shared.registry import new_event
from tests.contract.examples import example
from tests.e2e.stack import free_port
from tests.fakes._http import Delay, Reply
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.unit.audit import tamper


@pytest.fixture
def poster(settings):
    p = HttpPoster(timeout=settings.webhook_timeout_seconds, allow_private=True)
    yield p
    p.close()


def deliver(ctx, sub_id, poster):
    return delivery.deliver(ctx, uuid.UUID(sub_id), poster)


def state(ctx, sub_id) -> WebhookSubscription:
    with ctx.sessions() as session:
        sub = session.get(WebhookSubscription, uuid.UUID(sub_id))
        session.expunge(sub)
        return sub


def test_the_chain_arrives_in_order_signed_with_its_checkpoints(ctx, chain12, receiver, subscribe, poster):
    sub_id = subscribe(receiver)
    report = deliver(ctx, sub_id, poster)
    assert (report.delivered, report.failed) == (15, False)
    assert receiver.refused == 0  # every request verified with standardwebhooks
    order = [(p["type"], p["data"]["position"]) for p in receiver.received]
    rows = [(t, pos) for t, pos in order if t != "audit.checkpoint_signed"]
    assert [pos for _, pos in rows] == list(range(1, 13))
    assert [pos for t, pos in order if t == "audit.checkpoint_signed"] == [1, 6, 11]
    # a checkpoint right after the row it signs
    assert order.index(("audit.checkpoint_signed", 6)) == order.index(("challenge.verified", 6)) + 1
    assert receiver.ids()[0] == chain12[0]["event_id"]  # the event id: stable across attempts
    assert state(ctx, sub_id).cursor == 12


def test_checkpoints_kept_by_a_receiver_find_a_cut_tail(ctx, chain12, receiver, subscribe, poster, tmp_path):
    deliver(ctx, subscribe(receiver), poster)
    kept = tmp_path / "received.jsonl"
    kept.write_text(receiver.dump_jsonl())
    tamper.cut_tail(ctx.sessions, 8)
    with ctx.sessions.begin() as session:
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.position > 8))
    external = read_checkpoints(str(kept), verifier_for(ctx))
    assert [cp.position for cp in external] == [1, 6, 11]
    with ctx.sessions() as session:
        assert verify_chain(session, verifier_for(ctx)).ok
        result = verify_chain(session, verifier_for(ctx), external)
    assert (result.ok, result.first_bad_position) == (False, 9)


def test_only_the_subscribed_types_are_sent(ctx, chain12, receiver, subscribe, poster):
    sub_id = subscribe(receiver, types=("audit.checkpoint_signed",))
    report = deliver(ctx, sub_id, poster)
    assert (report.delivered, report.skipped) == (3, 12)
    assert set(receiver.types()) == {"audit.checkpoint_signed"}
    assert state(ctx, sub_id).cursor == 12


def test_a_new_subscription_starts_at_the_head(ctx, chain12, receiver, subscribe, poster, clock):
    sub_id = subscribe(receiver, from_position=None)
    assert deliver(ctx, sub_id, poster).delivered == 0
    tamper.build_chain(ctx.sessions, signer_for(ctx), clock, 1, every_rows=100)
    assert deliver(ctx, sub_id, poster).delivered == 1
    assert receiver.positions() == [13]


def test_a_failed_attempt_is_retried_after_a_back_off_with_the_same_id(ctx, chain12, receiver, subscribe,
                                                                      poster, clock):
    sub_id = subscribe(receiver)
    deliver(ctx, sub_id, poster)
    tamper.build_chain(ctx.sessions, signer_for(ctx), clock, 3, every_rows=100)  # rows 13-15
    receiver.script(Reply(500, {"error": "boom"}))
    report = deliver(ctx, sub_id, poster)
    assert (report.delivered, report.failed) == (0, True)
    failed_id = receiver.requests[-1].headers["webhook-id"]
    sub = state(ctx, sub_id)
    assert (sub.cursor, sub.failures, sub.last_error) == (12, 1, "HTTP 500")
    assert delivery.due(ctx, clock.now()) == []  # backing off
    assert deliver(ctx, sub_id, poster).busy
    clock.advance(delivery.backoff_seconds(1, 3600))
    assert delivery.due(ctx, clock.now()) == [uuid.UUID(sub_id)]
    assert deliver(ctx, sub_id, poster).delivered == 3
    assert receiver.received[15]["_id"] == failed_id
    assert receiver.positions() == list(range(1, 16))  # nothing lost, nothing twice
    sub = state(ctx, sub_id)
    assert (sub.failures, sub.failing_since, sub.last_error, sub.delivered) == (0, None, None, 18)


def test_back_off_doubles_up_to_its_cap():
    assert [delivery.backoff_seconds(n, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_redirects_are_not_followed(ctx, chain12, receiver, subscribe, poster):
    with WebhookReceiver() as elsewhere:
        receiver.script(Reply(307, headers={"Location": elsewhere.url + "/hook"}, body=b""))
        sub_id = subscribe(receiver)
        assert deliver(ctx, sub_id, poster).failed
        assert elsewhere.requests == []
    assert "redirects are not followed" in (state(ctx, sub_id).last_error or "")


def test_a_hanging_receiver_is_cut_off_and_others_go_on(ctx, chain12, receiver, subscribe, poster, settings):
    with WebhookReceiver() as healthy:
        receiver.script(Delay(5.0))
        hanging_id, healthy_id = subscribe(receiver), subscribe(healthy)
        started = time.monotonic()
        assert deliver(ctx, hanging_id, poster).failed
        assert time.monotonic() - started < 4 * settings.webhook_timeout_seconds + 1
        assert state(ctx, hanging_id).last_error == "timed out"
        assert deliver(ctx, healthy_id, poster).delivered == 15


def test_an_unreachable_receiver_is_a_failed_attempt(ctx, chain12, receiver, subscribe, poster):
    sub_id = subscribe(receiver, url=f"http://127.0.0.1:{free_port()}/hook")
    assert deliver(ctx, sub_id, poster).failed
    assert (state(ctx, sub_id).last_error or "").startswith("unreachable")


def test_after_the_retry_window_the_subscription_is_disabled_with_an_event(ctx, chain12, subscribe, poster,
                                                                           clock, publisher, settings):
    with WebhookReceiver() as gone:
        sub_id = subscribe(gone)
        gone.script(*[Reply(503, body=b"")] * 10)
        assert deliver(ctx, sub_id, poster).failed
        clock.advance(settings.webhook_retry_window_seconds - 1)
        report = deliver(ctx, sub_id, poster)
        assert report.failed and not report.disabled
        clock.advance(1)
        assert deliver(ctx, sub_id, poster).disabled
    sub = state(ctx, sub_id)
    assert sub.state == SubscriptionState.DISABLED and "HTTP 503" in (sub.disabled_reason or "")
    disabled = [e for e in publisher.published if e["type"] == "webhook.disabled"]
    assert len(disabled) == 1
    assert disabled[0]["data"]["subscription_id"] == sub_id
    assert disabled[0]["data"]["position"] == 1
    assert delivery.due(ctx, clock.now()) == []
    assert deliver(ctx, sub_id, poster).busy


def test_replay_from_a_position(ctx, chain12, receiver, subscribe, poster):
    sub_id = subscribe(receiver)
    deliver(ctx, sub_id, poster)
    receiver.reset()
    receiver.received.clear()
    with ctx.sessions.begin() as session:
        subscriptions.replay(session, uuid.UUID(sub_id), 10)
    assert deliver(ctx, sub_id, poster).delivered == 4
    assert [(p["type"], p["data"]["position"]) for p in receiver.received] == [
        ("challenge.verified", 10), ("challenge.verified", 11), ("audit.checkpoint_signed", 11),
        ("challenge.verified", 12)]


def test_payloads_carry_no_code_even_from_rows_that_hold_one(ctx, receiver, subscribe, poster, clock):
    """Rows appended before sms.requested v2 hold the sealed code; subscribers never get it."""
    from shared.events.sms import SmsRequestedV1
    from tests.contract.examples import sealed_code

    command = SmsRequestedV1(**example("sms.requested").model_dump(), code=sealed_code())
    envelope = new_event(command, user_id="alice", correlation_id="c1", occurred_at=clock.now()).model_dump(
        mode="json")
    with ctx.sessions.begin() as session:
        service.record(session, envelope, clock.now(), signer_for(ctx), service.policy_for(ctx))
    deliver(ctx, subscribe(receiver), poster)
    assert receiver.types() == ["sms.requested", "audit.checkpoint_signed"]
    event = receiver.received[0]["data"]["event"]
    assert "code" not in event["data"] and event["data"]["message_id"] == str(command.message_id)
    assert not any(command.code.reveal().encode() in body for body in receiver.raw_bodies())
    assert event["data"]["phone"] == command.phone  # masked already


def test_a_private_target_is_refused_at_delivery_unless_allowed(ctx, chain12, receiver, subscribe, settings):
    strict = HttpPoster(timeout=settings.webhook_timeout_seconds, allow_private=False)
    try:
        sub_id = subscribe(receiver)
        assert deliver(ctx, sub_id, strict).failed
    finally:
        strict.close()
    assert receiver.requests == []
    assert "target refused" in (state(ctx, sub_id).last_error or "")
