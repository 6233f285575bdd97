"""Delivery through the real ``twilio`` client over HTTP against FakeTwilio."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.models import SmsDelivery
from services.core.plumbing.providers.errors import TransientProviderError
from services.core.factors.sms.sender import TwilioSender
from tests.fakes.fake_twilio import Delay, Drop, FakeTwilio, rfc9457_error, twilio_error
from tests.integration.sms.conftest import PHONE, events, protect


def enroll(api: TestClient, headers: dict[str, str], phone: str = PHONE, user: str = "alice") -> str:
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "sms", "description": "phone", "phone": phone},
                 headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["token"]["id"])


def delivery(ctx: Context) -> SmsDelivery:
    with ctx.sessions() as s:
        (row,) = s.scalars(select(SmsDelivery)).all()
        return row


def test_success_sends_one_message_and_emits_sent(api, enroll_headers, fake_twilio: FakeTwilio,
                                                  publisher: RecordingPublisher, run_sms, ctx):
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    (msg,) = fake_twilio.messages
    assert msg["to"] == PHONE and msg["from"] == "+15005550006"
    assert msg["status_callback"].startswith("https://2fa.example.test/v1/callbacks/twilio?message_id=")
    (sent,) = events(publisher, "sms.sent")
    assert sent["data"]["provider_message_id"] == msg["sid"]
    assert delivery(ctx).state == "sent"
    assert fake_twilio.requests[0].headers["Authorization"].startswith("Basic ")


def test_500_then_success_is_retried(api, enroll_headers, fake_twilio, publisher, run_sms, ctx):
    fake_twilio.script(twilio_error(500, 20500, "Internal Server Error"))
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert len(fake_twilio.requests) == 2 and len(fake_twilio.messages) == 1
    assert delivery(ctx).attempts == 2
    assert events(publisher, "sms.failed") == []


def test_429_and_rfc9457_503_are_retried(api, enroll_headers, fake_twilio, publisher, run_sms):
    fake_twilio.script(twilio_error(429, 20429, "Too Many Requests"),
                       rfc9457_error(503, 20503, "Service Unavailable"))
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert len(fake_twilio.requests) == 3 and len(fake_twilio.messages) == 1


def test_21211_fails_at_once_and_the_challenge_is_undeliverable(
        api, enroll_headers, challenge_headers, fake_twilio, publisher, run_sms, ctx, clock):
    token_id = enroll(api, enroll_headers)
    run_sms()
    code = fake_twilio.messages[0]["body"][:6]
    assert api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": code},
                    headers=enroll_headers).json()["token"]["state"] == "active"
    protect(ctx, "alice")
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    assert c["status"] == "pending", c
    clock.advance(31)  # past the per-user resend interval
    fake_twilio.script(twilio_error(400, 21211, "The 'To' number is not a valid phone number."))
    r = api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
                 headers=challenge_headers)
    assert r.status_code == 200, r.text
    assert r.json()["details"]["delivery"] == "sms"
    assert run_sms() == ["failed"]
    assert len(fake_twilio.requests) == 2  # enrollment + one login attempt: no retry
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["error_code"] == 21211 and failed["data"]["permanent"] is True
    r = api.get(f"/v1/challenges/{c['challenge_id']}", headers=challenge_headers).json()
    assert (r["status"], r["reason"]) == ("failed", "undeliverable")
    assert [e["data"]["reason"] for e in events(publisher, "challenge.failed")] == ["undeliverable"]


def test_timeouts_are_retried_then_fail_after_the_last_attempt(api, enroll_headers, fake_twilio,
                                                               publisher, run_sms, ctx):
    # sms_send_timeout_seconds=0.4, sms_max_retries=3: four attempts, all time out.
    fake_twilio.script(*[Delay(0.7, then=twilio_error(500, 20500, "late")) for _ in range(4)])
    enroll(api, enroll_headers)
    assert run_sms() == ["failed"]
    assert len(fake_twilio.requests) == 4 and fake_twilio.messages == []
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["permanent"] is False and "retries exhausted" in failed["data"]["reason"]
    assert delivery(ctx).state == "failed"


def test_a_timeout_then_success(api, enroll_headers, fake_twilio, publisher, run_sms):
    fake_twilio.script(Delay(0.7, then=twilio_error(500, 20500, "late")))
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert len(fake_twilio.messages) == 1


def test_a_redelivered_command_is_not_sent_again(api, enroll_headers, fake_twilio, publisher, ctx):
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    worker_app.configure(ctx.settings, ctx=ctx)
    sms_tasks.reset()
    enroll(api, enroll_headers)
    (env,) = events(publisher, "sms.requested")
    assert sms_tasks.send.apply(args=[env]).result == "sent"
    assert sms_tasks.send.apply(args=[env]).result == "duplicate"
    assert len(fake_twilio.messages) == 1 and len(events(publisher, "sms.sent")) == 1


def test_a_dropped_connection_is_retried(api, enroll_headers, fake_twilio, publisher, run_sms, ctx):
    fake_twilio.script(Drop())
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert len(fake_twilio.requests) == 2 and len(fake_twilio.messages) == 1
    assert delivery(ctx).attempts == 2


def test_twilio_edge_and_region_in_the_environment_are_ignored(api, enroll_headers, fake_twilio,
                                                               run_sms, monkeypatch):
    # They would turn the API host 127.0.0.1 into 127.dublin.ie1.0.1 (library-notes §3).
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert len(fake_twilio.requests) == 1


def test_the_sender_bounds_every_request_by_the_send_timeout(settings, fake_twilio):
    fake_twilio.script(Delay(1.5))
    sender = TwilioSender(settings)  # sms_send_timeout_seconds=0.4
    try:
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="timed out"):
            sender.send(PHONE, "a message")
        assert time.monotonic() - started < 1.2
        assert sender.send(PHONE, "a message").message_id.startswith("SM")  # the loop lives on
    finally:
        sender.close()
