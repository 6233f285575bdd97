"""SMS failover end to end: the API, the relay and a real SMS worker process, with
``TWOFA_SMS_PROVIDERS=twilio,vonage``. While FakeTwilio answers every send with 503, every code
reaches the user once, through FakeVonage, and the worker's circuit soon stops asking Twilio;
once Twilio is back and the circuit's open time has passed, codes go through Twilio again. A
signed Vonage receipt posted to the API settles its message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.core.models import SmsDelivery
from services.core.plumbing.context import Context
from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack
from tests.fakes.fake_twilio import FakeTwilio, twilio_error
from tests.fakes.fake_vonage import FakeVonage

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

OPEN_SECONDS = 3


def wait_for(what: str, check: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def phone(i: int) -> str:
    return f"+49151123456{i:02d}"


def enroll(http: httpx.Client, i: int) -> str:
    r = http.post(f"/v1/users/user{i}/tokens",
                  json={"type": "sms", "description": "phone", "phone": phone(i)})
    assert r.status_code == 201, r.text
    return str(r.json()["details"]["message_id"])


def test_twilio_down_codes_go_through_vonage_then_back_to_twilio(
        settings: Settings, broker_url: str, ctx: Context, admin_key: str) -> None:
    with FakeTwilio() as twilio, FakeVonage() as vonage:
        stack = Stack(settings, broker_url)
        stack.extra_env.update(
            TWOFA_PUBLIC_URL=stack.url, TWOFA_SMS_PROVIDERS="twilio,vonage",
            TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_FROM_NUMBER="+15005550006", TWOFA_TWILIO_API_URL=twilio.url,
            TWILIO_EDGE="", TWILIO_REGION="",
            VONAGE_API_KEY=vonage.api_key, VONAGE_API_SECRET=vonage.api_secret,
            VONAGE_SIGNATURE_SECRET=vonage.signature_secret, VONAGE_FROM="twofa",
            TWOFA_VONAGE_API_URL=vonage.url, TWOFA_SMS_SEND_TIMEOUT_SECONDS="2",
            TWOFA_SMS_CIRCUIT_FAILURES="2", TWOFA_SMS_CIRCUIT_WINDOW_SECONDS="30",
            TWOFA_SMS_CIRCUIT_OPEN_SECONDS=str(OPEN_SECONDS),
        )
        twilio.failing = twilio_error(503, 20503, "Service Unavailable")
        stack.start(queues=("sms",))
        try:
            with httpx.Client(base_url=stack.url, timeout=10,
                              headers={"Authorization": f"Bearer {admin_key}"}) as http:
                # Twilio down: six enrollments, each code through Vonage, once
                down = {enroll(http, i): i for i in range(6)}
                wait_for("six codes through Vonage", lambda: len(vonage.messages) >= 6)
                refs = [m["client-ref"] for m in vonage.messages]
                assert sorted(refs) == sorted(down) and twilio.messages == []
                # the circuit opened after two failures: later sends skipped Twilio (with four
                # threads, up to four sends may have been in flight to Twilio at that moment)
                assert 2 <= len(twilio.requests) <= 5
                for m in vonage.messages:
                    i = down[m["client-ref"]]
                    assert m["to"] == phone(i)[1:]

                # a signed Vonage receipt through the API settles its message
                first = vonage.messages[0]
                params = vonage.sign_receipt(vonage.receipt_params(first["message-id"]))
                assert http.get("/v1/callbacks/vonage", params=params).status_code == 204

                # Twilio recovers; after the open time the probe finds it and it takes over
                twilio.failing = None
                time.sleep(OPEN_SECONDS + 0.5)
                up: dict[str, int] = {}
                for i in range(6, 10):
                    up[enroll(http, i)] = i
                    wait_for("the code through Twilio", lambda n=len(up): len(
                        twilio.messages) + len(vonage.messages) >= 6 + n)
                assert len(twilio.messages) == 4 and len(vonage.messages) == 6
                assert sorted(m["to"] for m in twilio.messages) == sorted(
                    phone(i) for i in up.values())
        finally:
            stack.stop()

    with ctx.sessions() as s:
        rows = {str(r.message_id): r for r in s.scalars(select(SmsDelivery))}
    assert {rows[m].provider for m in down} == {"vonage"}
    assert {rows[m].provider for m in up} == {"twilio"}
    assert all(r.attempts == 1 for r in rows.values())  # every code claimed and sent once
    assert rows[first["client-ref"]].state == "delivered"
    assert sorted(r.state for r in rows.values()) == ["delivered"] + ["sent"] * 9
