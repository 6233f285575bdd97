"""The transactional outbox: events commit with their state, publish after commit,
and the relay republishes what the broker did not take — each event reaching its
consumer exactly once."""

from __future__ import annotations

from sqlalchemy import func, select

from services.core.audit import chain
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.outbox import relay_once
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.models import AuditEntry, OutboxEvent


def enroll(api, headers, user):
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": "d"}, headers=headers)
    assert r.status_code == 201, r.text


def unpublished(ctx: Context) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None)))


def test_events_are_published_after_commit_and_marked(ctx: Context, api, enroll_headers, publisher: RecordingPublisher):
    enroll(api, enroll_headers, "alice")
    assert publisher.types() == ["enrollment.started"]
    assert unpublished(ctx) == 0


def test_broker_down_requests_succeed_and_relay_delivers_each_event_once(
    ctx: Context, api, enroll_headers, publisher: RecordingPublisher, clock
):
    publisher.down = True
    for i in range(5):
        enroll(api, enroll_headers, f"user{i}")
    assert publisher.published == []
    assert unpublished(ctx) == 5

    # still down: the relay tries, nothing is lost, nothing is marked
    clock.advance(10)
    assert relay_once(ctx, grace_seconds=5, batch_size=2) == 0
    assert unpublished(ctx) == 5

    publisher.down = False
    sent = 0
    while (n := relay_once(ctx, grace_seconds=5, batch_size=2)):
        assert n <= 2  # bounded batches
        sent += n
    assert sent == 5 and unpublished(ctx) == 0
    assert [e["user_id"] for e in publisher.published] == [f"user{i}" for i in range(5)]  # in order

    # a consumer that sees an event twice (relay + late dispatch) applies it once
    with ctx.sessions.begin() as s:
        for envelope in publisher.published + publisher.published:
            chain.append(s, envelope, clock.now())
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 5


def test_relay_leaves_fresh_rows_to_the_dispatcher(ctx: Context, api, enroll_headers, publisher, clock):
    publisher.down = True
    enroll(api, enroll_headers, "alice")
    publisher.down = False
    assert relay_once(ctx, grace_seconds=5, batch_size=10) == 0
    clock.advance(6)
    assert relay_once(ctx, grace_seconds=5, batch_size=10) == 1


def test_a_failed_use_case_writes_no_event(ctx: Context, api, enroll_headers, publisher):
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "x" * 100}, headers=enroll_headers)
    assert r.status_code == 422
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert publisher.published == []
