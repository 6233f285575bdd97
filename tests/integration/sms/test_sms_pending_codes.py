"""No SMS code in any event or audit row: the worker reads it from a pending-code row that is
deleted once the code is used or expired."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from services.core.audit import service as audit
from services.core.factors.sms import codes
from services.core.models import AuditEntry, OutboxEvent, SmsPendingCode
from tests.integration.sms.conftest import PHONE, events


def enroll(api, headers):
    r = api.post("/v1/users/alice/tokens", json={"type": "sms", "description": "phone", "phone": PHONE},
                 headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["token"]["id"]


def pending(ctx) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SmsPendingCode)))


def test_the_code_is_in_no_event_and_no_audit_row_and_goes_once_used(api, ctx, enroll_headers, fake_twilio,
                                                                     publisher, run_sms):
    token_id = enroll(api, enroll_headers)
    (command,) = events(publisher, "sms.requested")
    assert command["version"] == 2 and "code" not in command["data"]
    assert pending(ctx) == 1
    assert run_sms() == ["sent"]
    code = fake_twilio.messages[-1]["body"][:6]
    for envelope in publisher.published:
        audit.record_in(ctx, envelope)
    with ctx.sessions() as session:
        stored = [json.dumps(e) for e in session.scalars(select(OutboxEvent.envelope))]
        stored += [json.dumps(e) for e in session.scalars(select(AuditEntry.envelope))]
    assert stored and not any(code in text for text in stored)
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": code}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert pending(ctx) == 0


def test_an_expired_code_is_purged_and_can_no_longer_be_sent(api, ctx, enroll_headers, fake_twilio,
                                                             publisher, run_sms, clock):
    enroll(api, enroll_headers)
    assert codes.purge_expired(ctx) == 0
    clock.advance(ctx.settings.sms_code_ttl_seconds)
    assert codes.purge_expired(ctx) == 1 and pending(ctx) == 0
    assert run_sms() == ["failed"]  # the command came too late: nothing to send
    assert fake_twilio.messages == []
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["reason"] == "code_unavailable"
