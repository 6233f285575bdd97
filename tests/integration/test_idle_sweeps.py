"""What runs every second (the expiry sweep, the redispatch walks, the webhooks sweep, the
relay) reads first: with nothing due it opens no write transaction (on SQLite none takes
the write lock, which every process's requests queue for), and what is due is still
handled once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from services.core import redispatch
from services.core.audit import service as audit
from services.core.challenges import service as challenges
from services.core.factors.base import EnrollRequest
from services.core.factors.sms import codes
from services.core.plumbing.context import Context
from services.core.plumbing.db import READ_ONLY
from services.core.plumbing.messaging.outbox import relay_once
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.tokens import service as tokens
from services.core.webhooks import delivery


@pytest.fixture
def writes(ctx: Context) -> Iterator[list[str]]:
    """Each write transaction begun on the engine (SQLite: each BEGIN IMMEDIATE)."""
    seen: list[str] = []

    def begin(conn: Any) -> None:
        if not conn.get_execution_options().get(READ_ONLY):
            seen.append("BEGIN")

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.strip().upper() == "BEGIN IMMEDIATE":
            seen.append(sql)

    event.listen(ctx.engine, "begin", begin)
    event.listen(ctx.engine, "before_cursor_execute", statement)
    yield seen
    event.remove(ctx.engine, "begin", begin)
    event.remove(ctx.engine, "before_cursor_execute", statement)


def every_second(ctx: Context) -> dict[str, Any]:
    """What the relay and the expiry and webhooks sweeps run each second."""
    return {
        "challenges": challenges.expire_due(ctx),
        "enrollments": tokens.expire_enrollments(ctx),
        "codes": codes.purge_expired(ctx),
        "redispatched": redispatch.sweep(ctx),
        "webhooks": delivery.due(ctx, ctx.clock.now()),
        "relayed": relay_once(ctx, grace_seconds=5, batch_size=200),
    }


def test_a_pass_with_nothing_due_takes_no_write_lock(ctx: Context, clock,
                                                    publisher: RecordingPublisher,
                                                    writes: list[str]):
    # An SMS enrollment: a pending token, a pending code, a watched sms.requested; its
    # events published and in the audit chain; nothing of it due yet.
    tokens.start_enrollment(ctx, "alice", EnrollRequest("sms", "phone", "+4915110000001"))
    audit.record_many_in(ctx, publisher.published)
    clock.advance(1)
    writes.clear()
    assert every_second(ctx) == {"challenges": 0, "enrollments": 0, "codes": 0,
                                 "redispatched": redispatch.Redispatched(0, 0), "webhooks": [],
                                 "relayed": 0}
    assert writes == []

    # Everything due: handled in write transactions, once.
    clock.advance(ctx.settings.enrollment_ttl_seconds)
    due = every_second(ctx)
    assert due["enrollments"] == 1 and due["codes"] == 1
    assert due["redispatched"] == redispatch.Redispatched(commands=1, audit=0)
    assert writes != []
    writes.clear()
    again = every_second(ctx)
    assert again["enrollments"] == 0 and again["codes"] == 0
    assert again["redispatched"] == redispatch.Redispatched(0, 0)
    assert writes == []  # the new events are not due for a copy yet: idle again


def test_the_relay_reads_first_then_sends_what_is_owed_once(ctx: Context, clock,
                                                            publisher: RecordingPublisher,
                                                            writes: list[str]):
    publisher.down = True
    tokens.start_enrollment(ctx, "alice", EnrollRequest("totp", "phone"))
    publisher.down = False
    writes.clear()
    assert relay_once(ctx, grace_seconds=5, batch_size=10) == 0  # fresh: the dispatcher's
    assert writes == []
    clock.advance(6)
    assert relay_once(ctx, grace_seconds=5, batch_size=10) == 1
    assert relay_once(ctx, grace_seconds=5, batch_size=10) == 0
    assert publisher.types() == ["enrollment.started"]
