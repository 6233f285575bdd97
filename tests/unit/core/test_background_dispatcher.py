"""The API's publishing thread: one publish per batch and at most one UPDATE, commands at
once, nothing marked when the broker refuses, and what is pending flushed by close()."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event, select

from services.core.bootstrap import build_context
from services.core.models import OutboxEvent
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.plumbing.messaging import outbox
from services.core.plumbing.messaging.outbox import BackgroundDispatcher
from services.core.plumbing.messaging.publisher import RecordingPublisher

AUDIT_ONLY = "challenge.created"
COMMAND = "sms.requested"  # the SMS worker consumes it


class BatchRecorder(RecordingPublisher):
    """Records each ``publish_many`` call as one batch."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0
        self.batches: list[list[str]] = []

    def publish_many(self, envelopes: Sequence[dict[str, Any]]) -> None:
        self.attempts += 1
        super().publish_many(envelopes)
        self.batches.append([e["type"] for e in envelopes])


@pytest.fixture
def updates(ctx: Context) -> Iterator[list[str]]:
    """The outbox UPDATE statements the engine runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", record)
    yield seen
    event.remove(ctx.engine, "before_cursor_execute", record)


def committed(ctx: Context, clock: FrozenClock, *types: str) -> list[tuple[int, dict[str, Any]]]:
    """Outbox rows as a unit of work hands them over after commit."""
    rows = []
    with ctx.sessions.begin() as session:
        for kind in types:
            envelope = {"event_id": str(uuid.uuid4()), "type": kind, "data": {}}
            row = OutboxEvent(event_id=uuid.UUID(envelope["event_id"]), type=kind,
                              envelope=envelope, created_at=clock.now(), attempts=0)
            session.add(row)
            session.flush()
            rows.append((row.seq, envelope))
    return rows


def unpublished(ctx: Context) -> int:
    with ctx.sessions() as session:
        query = select(OutboxEvent.seq).where(OutboxEvent.published_at.is_(None))
        return len(session.scalars(query).all())


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class CountingCondition(threading.Condition):
    """Counts the wake-ups that ``dispatch`` (the request's thread) asks for."""

    notified = 0

    def notify(self, n: int = 1) -> None:
        if sys._getframe(1).f_code is BackgroundDispatcher.dispatch.__code__:
            CountingCondition.notified += 1
        super().notify(n)


def test_audit_only_rows_go_out_in_one_publish_and_one_update(ctx, clock, updates, monkeypatch):
    publisher = BatchRecorder()
    rows = committed(ctx, clock, *[AUDIT_ONLY] * 40)
    monkeypatch.setattr(outbox.threading, "Condition", CountingCondition)
    dispatcher = BackgroundDispatcher(publisher, ctx.engine, clock, linger=0.3)
    for row in rows:  # one unit of work after another
        dispatcher.dispatch([row])
    wait_for(lambda: unpublished(ctx) == 0)
    assert CountingCondition.notified == 1  # the thread was woken for the first row only
    assert publisher.batches == [[AUDIT_ONLY] * 40]
    assert len(updates) == 1
    assert publisher.published == [envelope for _, envelope in rows]  # in order
    dispatcher.close()


def test_a_command_goes_out_at_once_with_what_is_pending(ctx, clock, updates):
    publisher = BatchRecorder()
    audit, command = committed(ctx, clock, AUDIT_ONLY, AUDIT_ONLY), committed(ctx, clock, COMMAND)
    dispatcher = BackgroundDispatcher(publisher, ctx.engine, clock, linger=60)
    started = time.monotonic()
    dispatcher.dispatch(audit)
    dispatcher.dispatch(command)
    wait_for(lambda: unpublished(ctx) == 0)
    assert time.monotonic() - started < 5  # not the minute an audit-only event may wait
    assert publisher.batches == [[AUDIT_ONLY, AUDIT_ONLY, COMMAND]]
    assert len(updates) == 1
    dispatcher.close()


def test_batches_published_close_together_are_marked_in_one_update(ctx, clock, updates):
    publisher = BatchRecorder()
    dispatcher = BackgroundDispatcher(publisher, ctx.engine, clock, linger=0.0, mark_every=60)
    dispatcher.dispatch(committed(ctx, clock, COMMAND))
    wait_for(lambda: len(publisher.batches) == 1)
    dispatcher.dispatch(committed(ctx, clock, AUDIT_ONLY))
    wait_for(lambda: len(publisher.batches) == 2)
    assert updates == [] and unpublished(ctx) == 2  # not yet: within mark_every
    dispatcher.close()  # marks what is pending
    assert len(updates) == 1 and unpublished(ctx) == 0


def test_a_refused_batch_is_left_to_the_relay_and_the_thread_goes_on(ctx, clock, updates):
    publisher = BatchRecorder()
    publisher.down = True
    dispatcher = BackgroundDispatcher(publisher, ctx.engine, clock, linger=0.0)
    dispatcher.dispatch(committed(ctx, clock, COMMAND, AUDIT_ONLY))
    wait_for(lambda: publisher.attempts == 1)
    assert publisher.batches == [] and updates == [] and unpublished(ctx) == 2
    publisher.down = False
    dispatcher.dispatch(committed(ctx, clock, AUDIT_ONLY))
    wait_for(lambda: unpublished(ctx) == 2)
    assert publisher.batches == [[AUDIT_ONLY]]
    dispatcher.close()


def test_close_flushes_what_is_lingering(ctx, clock, updates):
    publisher = BatchRecorder()
    dispatcher = BackgroundDispatcher(publisher, ctx.engine, clock, linger=60)
    dispatcher.dispatch(committed(ctx, clock, AUDIT_ONLY, AUDIT_ONLY))
    dispatcher.dispatch(committed(ctx, clock, AUDIT_ONLY))
    started = time.monotonic()
    dispatcher.close()
    assert time.monotonic() - started < 5
    assert publisher.batches == [[AUDIT_ONLY] * 3] and len(updates) == 1
    assert unpublished(ctx) == 0
    dispatcher.close()  # a second close (the lifespan's, then atexit's) is harmless


def test_the_api_holds_audit_only_events_as_long_as_its_setting_says(settings, clock):
    publisher = BatchRecorder()
    slow = settings.model_copy(update={"audit_linger_seconds": 0.6})
    api = build_context(slow, publisher=publisher, clock=clock)  # the API's: background
    try:
        started = time.monotonic()
        api.dispatcher.dispatch(committed(api, clock, AUDIT_ONLY))
        time.sleep(0.3)
        assert publisher.batches == []  # still held
        wait_for(lambda: publisher.batches == [[AUDIT_ONLY]])
        assert time.monotonic() - started >= 0.6
    finally:
        api.dispatcher.close()  # type: ignore[attr-defined]
        api.engine.dispose()
