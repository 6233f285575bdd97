"""SMS through the API: enrollment, login, signed status callbacks, throttles, and no code or
full number in any log line or event."""

from __future__ import annotations

import logging
import json

import pytest
from sqlalchemy import select

from services.core.models import SmsDelivery, Token
from tests.fakes.fake_twilio import FakeTwilio
from tests.integration.sms.conftest import PHONE, events, protect

CALLBACK = "https://2fa.example.test/v1/callbacks/twilio"


def enroll(api, headers, phone=PHONE, user="alice"):
    return api.post(f"/v1/users/{user}/tokens", json={"type": "sms", "description": "phone", "phone": phone},
                    headers=headers)


def last_code(fake: FakeTwilio) -> str:
    return fake.messages[-1]["body"][:6]


def test_invalid_phone_is_422_and_changes_nothing(api, enroll_headers, publisher):
    for bad in ("12345", "+49 1", "not a number", "+999123456789"):
        r = enroll(api, enroll_headers, phone=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_phone", bad
    assert api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"] == []
    assert publisher.published == []


def test_full_flow_leaks_neither_code_nor_number(api, enroll_headers, challenge_headers, fake_twilio,
                                                 publisher, run_sms, ctx, clock, caplog):
    caplog.set_level(logging.DEBUG)
    r = enroll(api, enroll_headers, phone="+49 151 1234 5678")  # normalised to E.164
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["phone"] == "+49*********78" and token["state"] == "pending"
    run_sms()
    codes = [last_code(fake_twilio)]
    assert fake_twilio.messages[-1]["to"] == PHONE
    r = api.post(f"/v1/users/alice/tokens/{token['id']}/activate", json={"code": codes[0]}, headers=enroll_headers)
    assert r.status_code == 200 and r.json()["token"]["state"] == "active"
    # the code is single use
    protect(ctx, "alice")
    clock.advance(31)
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    r = api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token["id"]},
                 headers=challenge_headers)
    assert r.json()["details"]["phone"] == "+49*********78"
    run_sms()
    codes.append(last_code(fake_twilio))
    wrong = "000000" if codes[1] != "000000" else "111111"
    assert api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": wrong},
                    headers=challenge_headers).status_code == 422
    r = api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": codes[1]}, headers=challenge_headers)
    assert r.status_code == 200 and r.json()["status"] == "verified"
    # a delivered callback for the login message
    sid = fake_twilio.messages[-1]["sid"]
    params = fake_twilio.status_callback_params(sid, "delivered")
    url = fake_twilio.messages[-1]["status_callback"]
    api.post(url.replace("https://2fa.example.test", ""), data=params,
             headers={"X-Twilio-Signature": fake_twilio.sign_callback(url, params)})

    types = set(publisher.types())
    assert {"sms.requested", "sms.sent", "sms.delivered", "enrollment.confirmed"} <= types
    dump = json.dumps(publisher.published) + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    digits = PHONE[1:]
    for secret in (*codes, PHONE, digits, digits[-9:]):
        assert secret not in dump, f"{secret!r} leaked"
    assert caplog.records  # the scan saw something
    # the console twin is not in use here; the only clear copy is what Twilio received


def test_console_sender_writes_the_outbox_file_but_not_the_log(tmp_path, caplog):
    from services.core.factors.sms.sender import ConsoleSender

    caplog.set_level(logging.DEBUG)
    sender = ConsoleSender(tmp_path / "outbox" / "sms.log")
    sender.send(PHONE, "123456 is your code")
    text = (tmp_path / "outbox" / "sms.log").read_text()
    assert PHONE in text and "123456" in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "123456" not in logged and PHONE not in logged and "+49*********78" in logged


def _sent_message(api, enroll_headers, fake_twilio, run_sms):
    assert enroll(api, enroll_headers).status_code == 201
    run_sms()
    return fake_twilio.messages[-1]


def test_signed_status_callback_updates_the_state(api, enroll_headers, fake_twilio, publisher, run_sms, ctx):
    msg = _sent_message(api, enroll_headers, fake_twilio, run_sms)
    url = msg["status_callback"]
    params = fake_twilio.status_callback_params(msg["sid"], "delivered")
    headers = {"X-Twilio-Signature": fake_twilio.sign_callback(url, params)}
    path = url.removeprefix("https://2fa.example.test")
    assert api.post(path, data=params, headers=headers).status_code == 204
    assert api.post(path, data=params, headers=headers).status_code == 204  # Twilio retries: idempotent
    with ctx.sessions() as s:
        assert s.scalars(select(SmsDelivery.state)).one() == "delivered"
    assert len(events(publisher, "sms.delivered")) == 1


def test_failed_callback_emits_permanent_failure(api, enroll_headers, fake_twilio, publisher, run_sms, ctx):
    msg = _sent_message(api, enroll_headers, fake_twilio, run_sms)
    params = fake_twilio.status_callback_params(msg["sid"], "undelivered", 30003)
    r = api.post("/v1/callbacks/twilio", data=params,
                 headers={"X-Twilio-Signature": fake_twilio.sign_callback(CALLBACK, params)})
    assert r.status_code == 204
    (failed,) = events(publisher, "sms.failed")
    assert failed["data"]["error_code"] == 30003 and failed["data"]["permanent"] is True


@pytest.mark.parametrize("forge", ["no_signature", "wrong_key", "tampered", "other_url"])
def test_forged_callback_is_403_and_changes_nothing(api, enroll_headers, fake_twilio, publisher,
                                                    run_sms, ctx, forge):
    from tests.fakes.fake_twilio import sign_callback

    msg = _sent_message(api, enroll_headers, fake_twilio, run_sms)
    params = fake_twilio.status_callback_params(msg["sid"], "failed")
    sig = {
        "no_signature": "",
        "wrong_key": sign_callback("not-the-token", CALLBACK, params),
        "tampered": fake_twilio.sign_callback(CALLBACK, {**params, "MessageStatus": "delivered"}),
        "other_url": fake_twilio.sign_callback("https://evil.example/v1/callbacks/twilio", params),
    }[forge]
    before = list(publisher.published)
    r = api.post("/v1/callbacks/twilio", data=params, headers={"X-Twilio-Signature": sig} if sig else {})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    assert publisher.published == before
    with ctx.sessions() as s:
        assert s.scalars(select(SmsDelivery.state)).one() == "sent"


def test_callback_for_an_unknown_sid_is_200_and_changes_nothing(api, fake_twilio, publisher):
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": fake_twilio.account_sid}
    r = api.post("/v1/callbacks/twilio", data=params,
                 headers={"X-Twilio-Signature": fake_twilio.sign_callback(CALLBACK, params)})
    assert r.status_code == 204 and publisher.published == []


def test_resend_is_throttled_per_number_and_user_then_allowed(api, enroll_headers, fake_twilio, publisher,
                                                              run_sms, clock, ctx):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    resend = f"/v1/users/alice/tokens/{token_id}/sms/resend"
    r = api.post(resend, headers=enroll_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "sms_throttled"
    assert r.headers["Retry-After"] == "30"
    clock.advance(10)
    assert api.post(resend, headers=enroll_headers).headers["Retry-After"] == "20"
    # the same number under another user is throttled per number too
    r = enroll(api, enroll_headers, user="bob")
    assert r.status_code == 429
    assert len(events(publisher, "sms.requested")) == 1  # throttled requests changed nothing
    sent = 1
    for _ in range(4):  # 5 per hour
        clock.advance(31)
        assert api.post(resend, headers=enroll_headers).status_code == 202
        sent += 1
    clock.advance(31)
    r = api.post(resend, headers=enroll_headers)
    # t = 10 + 5 * 31 = 165 s; the oldest SMS of the hour went out at t = 0
    assert r.status_code == 429 and r.headers["Retry-After"] == str(3600 - 165)
    assert len(events(publisher, "sms.requested")) == sent
    run_sms()
    # only the newest code counts
    codes_sent = [m["body"][:6] for m in fake_twilio.messages]
    assert len(codes_sent) == 5
    if codes_sent[0] != codes_sent[-1]:
        assert api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": codes_sent[0]},
                        headers=enroll_headers).status_code == 422


def test_daily_quota_per_user(api, enroll_headers, publisher, clock, ctx, settings):
    quota = settings.sms_daily_quota
    for i in range(quota):
        phone = f"+49151123456{i:02d}"
        assert enroll(api, enroll_headers, phone=phone).status_code == 201
        clock.advance(61 * 12)  # 5 per hour per user
    r = enroll(api, enroll_headers, phone="+4915112345699")
    assert r.status_code == 429 and r.json()["error"]["code"] == "sms_quota_exceeded"
    assert int(r.headers["Retry-After"]) > 0
    clock.advance(24 * 3600)
    assert enroll(api, enroll_headers, phone="+4915112345699").status_code == 201


def test_three_attempts_per_code_and_resend_keeps_failure_count(api, enroll_headers, fake_twilio,
                                                                 run_sms, clock, ctx):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    good = last_code(fake_twilio)
    wrong = "000000" if good != "000000" else "111111"
    activate = f"/v1/users/alice/tokens/{token_id}/activate"
    for _ in range(3):
        assert api.post(activate, json={"code": wrong}, headers=enroll_headers).status_code == 422
    clock.advance(60)  # past the token back-off
    assert api.post(activate, json={"code": good}, headers=enroll_headers).status_code == 422  # burnt
    with ctx.sessions() as s:
        failures = s.get(Token, __import__("uuid").UUID(token_id)).failures
    assert failures == 4
    assert api.post(f"/v1/users/alice/tokens/{token_id}/sms/resend", headers=enroll_headers).status_code == 202
    with ctx.sessions() as s:
        assert s.get(Token, __import__("uuid").UUID(token_id)).failures == 4  # not reset
    run_sms()
    clock.advance(60)
    r = api.post(activate, json={"code": last_code(fake_twilio)}, headers=enroll_headers)
    assert r.status_code == 200 and r.json()["token"]["state"] == "active"


def test_code_expires(api, enroll_headers, fake_twilio, run_sms, clock, settings):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    clock.advance(settings.sms_code_ttl_seconds + 1)
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": last_code(fake_twilio)},
                 headers=enroll_headers)
    assert r.status_code == 422


def test_a_login_right_after_enrollment_gets_a_new_code_at_once(api, enroll_headers, challenge_headers,
                                                                 fake_twilio, run_sms, ctx, publisher):
    """The resend interval guards a code still outstanding; the enrollment code was used."""
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": last_code(fake_twilio)},
                 headers=enroll_headers)
    assert r.status_code == 200 and r.json()["token"]["state"] == "active"
    protect(ctx, "alice")
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    r = api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
                 headers=challenge_headers)
    assert r.status_code == 200, r.text
    assert len(events(publisher, "sms.requested")) == 2
    # that login code is outstanding now: asking again at once is a re-send, and throttled
    r = api.post(f"/v1/challenges/{c['challenge_id']}/sms/resend", headers=challenge_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "sms_throttled"


def test_codes_that_were_used_still_count_towards_the_hourly_cap(api, enroll_headers, challenge_headers,
                                                                  fake_twilio, run_sms, ctx, settings, clock):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    assert api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": last_code(fake_twilio)},
                    headers=enroll_headers).status_code == 200
    protect(ctx, "alice")
    for _ in range(settings.sms_max_per_hour - 1):  # each login code used at once
        clock.advance(1)  # codes of one instant would tie for "the newest"
        c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
        assert api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
                        headers=challenge_headers).status_code == 200
        run_sms()
        r = api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": last_code(fake_twilio)},
                     headers=challenge_headers)
        assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    clock.advance(1)
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    r = api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id},
                 headers=challenge_headers)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3000


def test_a_wrong_sms_code_answer_says_how_many_attempts_are_left(api, enroll_headers, challenge_headers,
                                                                 fake_twilio, run_sms, ctx):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": last_code(fake_twilio)},
             headers=enroll_headers)
    protect(ctx, "alice")
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id}, headers=challenge_headers)
    run_sms()
    wrong = "000000" if last_code(fake_twilio) != "000000" else "111111"
    r = api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": wrong}, headers=challenge_headers)
    assert r.status_code == 422 and r.json()["error"]["attempts_left"] == 2
