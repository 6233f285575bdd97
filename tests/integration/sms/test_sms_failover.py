"""SMS failover through the API, the SMS task and the ledger, with Twilio then Vonage
(``TWOFA_SMS_PROVIDERS=twilio,vonage``) over the real SDKs against FakeTwilio and FakeVonage:
one message per code across providers, the record naming the provider that accepted it, and
the signed receipts of both providers settling that record."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.core.models import SmsDelivery
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from tests.conftest import make_settings
from tests.fakes.fake_twilio import Delay, FakeTwilio, twilio_error
from tests.fakes.fake_vonage import FakeVonage, vonage_status
from tests.integration.sms.conftest import PHONE, events, protect

PUBLIC = "https://2fa.example.test"
OTHER_PHONE = "+4915112345679"


@pytest.fixture
def fake_vonage() -> Iterator[FakeVonage]:
    with FakeVonage() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_twilio: FakeTwilio,
             fake_vonage: FakeVonage) -> Settings:
    return make_settings(
        tmp_path, database_url, sms_providers="twilio,vonage",
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid, TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006", twilio_api_url=fake_twilio.url,
        VONAGE_API_KEY=fake_vonage.api_key, VONAGE_API_SECRET=fake_vonage.api_secret,
        VONAGE_SIGNATURE_SECRET=fake_vonage.signature_secret, VONAGE_FROM="twofa",
        vonage_api_url=fake_vonage.url, public_url=PUBLIC, sms_send_timeout_seconds=0.4,
        sms_max_retries=3,
    )


def enroll(api: TestClient, headers: dict[str, str], user: str = "alice",
           phone: str = PHONE) -> str:
    r = api.post(f"/v1/users/{user}/tokens",
                 json={"type": "sms", "description": "phone", "phone": phone}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["token"]["id"])


def the_delivery(ctx: Context) -> SmsDelivery:
    with ctx.sessions() as s:
        (row,) = s.scalars(select(SmsDelivery)).all()
        return row


def accepted(twilio: FakeTwilio, vonage: FakeVonage) -> int:
    return len(twilio.messages) + len(vonage.messages)


# -- sending ----------------------------------------------------------------------------------


def test_twilio_down_the_code_goes_through_vonage_and_works(
        api, enroll_headers, fake_twilio, fake_vonage, publisher, run_sms, ctx):
    fake_twilio.failing = twilio_error(503, 20503, "Service Unavailable")
    token_id = enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    (msg,) = fake_vonage.messages
    row = the_delivery(ctx)
    assert (row.state, row.provider, row.provider_message_id) == (
        "sent", "vonage", msg["message-id"])
    assert row.attempts == 1  # one claim: the failover happened inside one send
    (sent,) = events(publisher, "sms.sent")
    assert sent["data"]["provider"] == "vonage"
    assert sent["data"]["provider_message_id"] == msg["message-id"]
    assert msg["client-ref"] == str(row.message_id)
    assert msg["callback"] == f"{PUBLIC}/v1/callbacks/vonage"
    code = msg["text"][:6]
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": code},
                 headers=enroll_headers)
    assert r.status_code == 200 and r.json()["token"]["state"] == "active"
    assert fake_twilio.messages == [] and len(fake_twilio.requests) == 1


@pytest.mark.parametrize("failure", [
    twilio_error(500, 20500, "Internal Server Error"),
    twilio_error(429, 20429, "Too Many Requests"),
    Delay(0.7, then=twilio_error(500, 20500, "late")),  # a timeout (0.4 s)
], ids=["500", "429", "timeout"])
def test_each_transient_failure_fails_over_once(api, enroll_headers, fake_twilio, fake_vonage,
                                                publisher, run_sms, ctx, failure):
    fake_twilio.script(failure)
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    assert the_delivery(ctx).provider == "vonage"
    assert (len(fake_twilio.messages), len(fake_vonage.messages)) == (0, 1)
    assert events(publisher, "sms.failed") == []


def test_one_message_per_code_across_providers(api, enroll_headers, fake_twilio, fake_vonage,
                                               publisher, ctx):
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    worker_app.configure(ctx.settings, ctx=ctx)
    sms_tasks.reset()
    # both fail transiently on the first attempt; the retry finds Twilio back
    fake_twilio.script(twilio_error(500, 20500, "down"))
    fake_vonage.script(vonage_status(1, "Throttled"))
    enroll(api, enroll_headers)
    (env,) = events(publisher, "sms.requested")
    try:
        assert sms_tasks.send.apply(args=[env]).result == "sent"
        # redelivered (a worker killed after the send, a broker replay): nothing goes out again
        assert sms_tasks.send.apply(args=[env]).result == "duplicate"
        assert sms_tasks.send.apply(args=[env]).result == "duplicate"
    finally:
        sms_tasks.reset()
    assert accepted(fake_twilio, fake_vonage) == 1
    assert len(fake_twilio.requests) == 2 and len(fake_vonage.requests) == 1
    row = the_delivery(ctx)
    assert (row.provider, row.attempts) == ("twilio", 2)
    assert len(events(publisher, "sms.sent")) == 1


def test_an_invalid_number_fails_without_trying_vonage(api, enroll_headers, challenge_headers,
                                                      fake_twilio, fake_vonage, publisher,
                                                      run_sms, ctx, clock):
    token_id = enroll(api, enroll_headers)
    run_sms()
    code = fake_twilio.messages[0]["body"][:6]
    api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": code},
             headers=enroll_headers)
    protect(ctx, "alice")
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"},
                 headers=challenge_headers).json()
    clock.advance(31)
    fake_twilio.script(twilio_error(400, 21211, "The 'To' number is not a valid phone number."))
    api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
             headers=challenge_headers)
    assert run_sms() == ["failed"]
    assert fake_vonage.requests == []
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["error_code"] == 21211 and failed["data"]["permanent"] is True
    r = api.get(f"/v1/challenges/{c['challenge_id']}", headers=challenge_headers).json()
    assert (r["status"], r["reason"]) == ("failed", "undeliverable")


def test_no_code_or_number_in_any_log_line(api, enroll_headers, fake_twilio, fake_vonage,
                                           publisher, run_sms, ctx, caplog):
    caplog.set_level(logging.DEBUG)
    fake_twilio.script(twilio_error(503, 20503, "down"))
    fake_vonage.script(vonage_status(1, "Throttled", PHONE[1:]))  # the SDK would log this body
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]  # twilio 503, vonage throttled; the retry: twilio
    fake_twilio.failing = twilio_error(500, 20500, "down")
    enroll(api, enroll_headers, user="bob", phone=OTHER_PHONE)
    assert run_sms() == ["sent"]  # through vonage
    texts = [m["body"] for m in fake_twilio.messages] + [m["text"] for m in fake_vonage.messages]
    codes = [t[:6] for t in texts]
    assert len(codes) == 2
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}"
                       for r in caplog.records)
    assert "vonage" in logged  # the scan saw the failover's own lines
    for secret in (*codes, PHONE, PHONE[1:], PHONE[-9:], OTHER_PHONE[1:]):
        assert secret not in logged, f"{secret!r} leaked"


def test_both_down_retries_then_fails_with_nothing_sent(api, enroll_headers, fake_twilio,
                                                       fake_vonage, publisher, run_sms, ctx):
    fake_twilio.failing = twilio_error(500, 20500, "down")
    fake_vonage.failing = vonage_status(5, "Internal Error")
    enroll(api, enroll_headers)
    assert run_sms() == ["failed"]  # sms_max_retries=3: four attempts
    assert accepted(fake_twilio, fake_vonage) == 0
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["permanent"] is False and "retries exhausted" in failed["data"]["reason"]
    assert the_delivery(ctx).state == "failed"


# -- receipts ---------------------------------------------------------------------------------


def receipts(provider: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("twofa_sms_receipts_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


def sent_through_vonage(api, enroll_headers, fake_twilio, fake_vonage, run_sms) -> dict[str, Any]:
    fake_twilio.script(twilio_error(500, 20500, "down"))
    enroll(api, enroll_headers)
    assert run_sms() == ["sent"]
    (msg,) = fake_vonage.messages
    return msg


def post_receipt(api: TestClient, how: str, params: dict[str, str]):
    if how == "GET":
        return api.get("/v1/callbacks/vonage", params=params)
    if how == "POST-JSON":
        return api.post("/v1/callbacks/vonage", content=json.dumps(params),
                        headers={"Content-Type": "application/json"})
    return api.post("/v1/callbacks/vonage", data=params)


@pytest.mark.parametrize("how", ["GET", "POST", "POST-JSON"])
def test_a_signed_vonage_receipt_settles_the_record(api, enroll_headers, fake_twilio,
                                                    fake_vonage, publisher, run_sms, ctx, how):
    msg = sent_through_vonage(api, enroll_headers, fake_twilio, fake_vonage, run_sms)
    params = fake_vonage.sign_receipt(fake_vonage.receipt_params(msg["message-id"], "delivered"))
    before = receipts("vonage", "delivered")
    assert post_receipt(api, how, params).status_code == 204
    assert post_receipt(api, how, params).status_code == 204  # Vonage retries: idempotent
    assert the_delivery(ctx).state == "delivered"
    (delivered,) = events(publisher, "sms.delivered")
    assert delivered["data"]["provider_message_id"] == msg["message-id"]
    assert receipts("vonage", "delivered") == before + 1


def test_a_twilio_callback_settles_a_message_twilio_sent(api, enroll_headers, fake_twilio,
                                                         fake_vonage, publisher, run_sms, ctx):
    enroll(api, enroll_headers)
    run_sms()
    (msg,) = fake_twilio.messages
    url = msg["status_callback"]
    params = fake_twilio.status_callback_params(msg["sid"], "delivered")
    r = api.post(url.removeprefix(PUBLIC), data=params,
                 headers={"X-Twilio-Signature": fake_twilio.sign_callback(url, params)})
    assert r.status_code == 204
    assert (the_delivery(ctx).state, the_delivery(ctx).provider) == ("delivered", "twilio")


def test_a_rejected_vonage_receipt_fails_the_login(api, enroll_headers, challenge_headers,
                                                   fake_twilio, fake_vonage, publisher,
                                                   run_sms, ctx, clock):
    token_id = enroll(api, enroll_headers)
    run_sms()
    api.post(f"/v1/users/alice/tokens/{token_id}/activate",
             json={"code": fake_twilio.messages[0]["body"][:6]}, headers=enroll_headers)
    protect(ctx, "alice")
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"},
                 headers=challenge_headers).json()
    clock.advance(31)
    fake_twilio.script(twilio_error(503, 20503, "down"))
    api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
             headers=challenge_headers)
    assert run_sms() == ["sent"]
    (msg,) = fake_vonage.messages
    params = fake_vonage.sign_receipt(
        fake_vonage.receipt_params(msg["message-id"], "rejected", err_code=6))
    assert api.post("/v1/callbacks/vonage", data=params).status_code == 204
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["provider"] == "vonage" and failed["data"]["error_code"] == 6
    r = api.get(f"/v1/challenges/{c['challenge_id']}", headers=challenge_headers).json()
    assert (r["status"], r["reason"]) == ("failed", "undeliverable")


@pytest.mark.parametrize("forge", ["unsigned", "wrong_secret", "tampered", "bad_json"])
def test_a_forged_vonage_receipt_is_403_and_changes_nothing(api, enroll_headers, fake_twilio,
                                                            fake_vonage, publisher, run_sms,
                                                            ctx, forge):
    msg = sent_through_vonage(api, enroll_headers, fake_twilio, fake_vonage, run_sms)
    params = fake_vonage.receipt_params(msg["message-id"], "failed", err_code=1)
    before = list(publisher.published)
    refused = receipts("vonage", "bad_signature")
    if forge == "bad_json":
        r = api.post("/v1/callbacks/vonage", content=b"{not json",
                     headers={"Content-Type": "application/json"})
    else:
        body = {
            "unsigned": params,
            "wrong_secret": fake_vonage.sign_receipt(params, "another-secret-0123456789abcdef"),
            "tampered": {**fake_vonage.sign_receipt({**params, "status": "delivered"}),
                         "status": "failed"},
        }[forge]
        r = api.post("/v1/callbacks/vonage", data=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    assert publisher.published == before
    assert the_delivery(ctx).state == "sent"
    assert receipts("vonage", "bad_signature") == refused + 1


def test_a_signed_receipt_without_message_id_is_422(api, fake_vonage):
    params = fake_vonage.sign_receipt({"status": "delivered", "api-key": fake_vonage.api_key})
    r = api.post("/v1/callbacks/vonage", data=params)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"


def test_a_receipt_finds_its_record_by_provider_and_id(api, enroll_headers, fake_twilio,
                                                       fake_vonage, publisher, run_sms, ctx):
    msg = sent_through_vonage(api, enroll_headers, fake_twilio, fake_vonage, run_sms)
    # a correctly signed Twilio callback naming Vonage's message id: not Twilio's message
    params = {"MessageSid": msg["message-id"], "MessageStatus": "failed", "ErrorCode": "30008",
              "AccountSid": fake_twilio.account_sid}
    url = f"{PUBLIC}/v1/callbacks/twilio"
    r = api.post("/v1/callbacks/twilio", data=params,
                 headers={"X-Twilio-Signature": fake_twilio.sign_callback(url, params)})
    assert r.status_code == 204
    assert the_delivery(ctx).state == "sent" and events(publisher, "sms.failed") == []


def test_a_vonage_receipt_settles_a_send_whose_worker_died(api, enroll_headers, fake_twilio,
                                                          fake_vonage, publisher, run_sms, ctx):
    msg = sent_through_vonage(api, enroll_headers, fake_twilio, fake_vonage, run_sms)
    # as if the worker had died before recording Vonage's answer (delivery's ``unknown``)
    with ctx.sessions.begin() as s:
        s.execute(update(SmsDelivery).values(state="unknown", provider="twilio+vonage",
                                             provider_message_id=None))
    params = fake_vonage.sign_receipt(fake_vonage.receipt_params(msg["message-id"], "delivered"))
    assert params["client-ref"] == str(the_delivery(ctx).message_id)
    assert api.post("/v1/callbacks/vonage", data=params).status_code == 204
    row = the_delivery(ctx)
    assert (row.state, row.provider, row.provider_message_id) == (
        "delivered", "vonage", msg["message-id"])


def test_a_receipt_for_an_unknown_message_is_accepted_and_ignored(api, fake_vonage, publisher):
    params = fake_vonage.sign_receipt({
        "messageId": "0C000000DEADBEEF", "status": "delivered", "api-key": fake_vonage.api_key,
        "client-ref": str(uuid.uuid4())})
    assert api.get("/v1/callbacks/vonage", params=params).status_code == 204
    assert publisher.published == []
