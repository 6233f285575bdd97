"""Events travel to the audit log in batches (issue 7): one broker message and one
transaction for many events, with the chain exactly as if they had come one by one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from services.core.audit import chain, service
from services.core.audit.verify import verify_chain
from services.core.plumbing.context import Context
from services.core.plumbing.db import read_only
from services.core.plumbing.messaging.publisher import CeleryPublisher
from services.core.plumbing.messaging.routes import AUDIT_APPEND_MANY, AUDIT_BATCH_MAX, SMS_SEND
from services.core.models import AuditEntry


def enroll_events(api, headers, publisher, n: int) -> list[dict[str, Any]]:
    for i in range(n):
        r = api.post(f"/v1/users/batch{i}/tokens", json={"type": "totp", "description": "d"}, headers=headers)
        assert r.status_code == 201, r.text
    return list(publisher.published)


def audited(ctx: Context) -> list[tuple[int, str]]:
    with ctx.sessions() as s:
        return [(p, str(e)) for p, e in s.execute(select(AuditEntry.position, AuditEntry.event_id)
                                                   .order_by(AuditEntry.position))]


def test_a_batch_is_appended_in_order_once_and_the_chain_verifies(ctx, api, enroll_headers, publisher):
    events = enroll_events(api, enroll_headers, publisher, 5)
    # a redelivered batch and a repeat inside the batch are both appended once
    assert service.record_many_in(ctx, events[:3] + events[:1]) == 3
    assert service.record_many_in(ctx, events) == 2
    assert audited(ctx) == [(i + 1, e["event_id"]) for i, e in enumerate(events)]
    with ctx.sessions() as s:
        assert verify_chain(s).ok


def test_a_batch_hashed_against_a_head_that_moved_is_hashed_again(ctx, api, enroll_headers, publisher, clock):
    events = enroll_events(api, enroll_headers, publisher, 4)
    with read_only(ctx.engine) as conn:
        stale = chain.prepare(conn, events[1:], clock.now())
    assert [e.position for e in stale.entries] == [1, 2, 3]
    with ctx.sessions.begin() as s:  # another consumer appends first
        chain.append(s, events[0], clock.now())
    with ctx.sessions.begin() as s:
        fresh = chain.append_prepared(s, stale, events[1:], clock.now())
    assert [e.position for e in fresh] == [2, 3, 4]
    with ctx.sessions() as s:
        assert verify_chain(s).ok
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 4


class SendTaskRecorder:
    """Stands in for the Celery app: CeleryPublisher only calls ``send_task``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append({"name": name, **options})


def envelope(kind: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": kind, "data": {}}


def test_publisher_sends_commands_one_by_one_first_and_the_audit_copy_in_batches():
    app = SendTaskRecorder()
    events = [envelope("challenge.created") for _ in range(AUDIT_BATCH_MAX)]
    events.insert(3, envelope("sms.requested"))
    CeleryPublisher(app).publish_many(events)  # type: ignore[arg-type]
    names = [m["name"] for m in app.sent]
    assert names == [SMS_SEND.task, AUDIT_APPEND_MANY.task, AUDIT_APPEND_MANY.task]
    assert app.sent[0]["args"] == [events[3]] and app.sent[0]["queue"] == "sms"
    batches = [m["args"][0] for m in app.sent[1:]]
    assert [len(b) for b in batches] == [AUDIT_BATCH_MAX, 1]
    assert batches[0] + batches[1] == events  # every event, in order
    # no copy of the events in the message headers (Celery's argsrepr)
    assert [m["argsrepr"] for m in app.sent] == ["<sms.requested>", f"<{AUDIT_BATCH_MAX} events>", "<1 events>"]
