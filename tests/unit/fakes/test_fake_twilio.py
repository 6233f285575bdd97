"""Self-test of FakeTwilio through the real twilio client (library-notes §3)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.fake_twilio import (
    Delay,
    Drop,
    FakeTwilio,
    Reply,
    num_segments,
    rfc9457_error,
    twilio_error,
)

SID = "AC" + "a1" * 16
TOKEN = "s3cr3t-token"
TO, FROM = "+15551230000", "+15559870000"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    with FakeTwilio(SID, TOKEN) as f:
        yield f


def make_client(fake: FakeTwilio, token: str = TOKEN, timeout: float = 5.0) -> Client:
    client = Client(SID, token, http_client=TwilioHttpClient(timeout=timeout))
    client.api.base_url = fake.url
    return client


def send(client: Client, to: str = TO) -> str:
    return str(client.messages.create(to=to, from_=FROM, body="Your code is 123456").sid)


def test_create_returns_sid_and_records_the_request(fake: FakeTwilio) -> None:
    msg = make_client(fake).messages.create(to=TO, from_=FROM, body="Your code is 123456",
                                            status_callback="http://127.0.0.1:9/cb")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (msg.status, msg.to, msg.from_, msg.num_segments) == ("queued", TO, FROM, "1")
    assert msg.account_sid == SID and msg.error_code is None
    (req,) = fake.requests
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.form == {"To": TO, "From": FROM, "Body": "Your code is 123456",
                        "StatusCallback": "http://127.0.0.1:9/cb"}
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    (stored,) = fake.messages
    assert stored["sid"] == msg.sid and stored["status_callback"] == "http://127.0.0.1:9/cb"


def test_messaging_service_without_from_is_accepted(fake: FakeTwilio) -> None:
    msg = make_client(fake).messages.create(to=TO, messaging_service_sid="MG" + "0" * 32,
                                            body="hi")
    assert msg.status == "accepted"
    assert fake.requests[0].form["MessagingServiceSid"] == "MG" + "0" * 32


def test_wrong_token_gives_401(fake: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as ei:
        send(make_client(fake, token="wrong"))
    assert (ei.value.status, ei.value.code) == (401, 20003)
    assert fake.messages == []


def test_scripted_500_then_normal(fake: FakeTwilio) -> None:
    fake.script(Reply(status=500, json={"code": 20500, "message": "Internal Server Error"}))
    client = make_client(fake)
    with pytest.raises(TwilioRestException) as ei:
        send(client)
    assert ei.value.status == 500
    assert send(client).startswith("SM")
    assert len(fake.requests) == 2 and fake.scripted_left == 0


def test_invalid_number_error_code(fake: FakeTwilio) -> None:
    fake.script(twilio_error(400, 21211, "The 'To' number is not a valid phone number."))
    with pytest.raises(TwilioRestException) as ei:
        send(make_client(fake))
    assert (ei.value.status, ei.value.code) == (400, 21211)
    assert "not a valid phone number" in ei.value.msg


def test_unscripted_validation_rejects_non_e164(fake: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as ei:
        send(make_client(fake), to="0551230000")
    assert ei.value.code == 21211


def test_rfc9457_body_raises_service_exception(fake: FakeTwilio) -> None:
    fake.script(rfc9457_error(429, 20429, "Too Many Requests", detail="slow down"))
    with pytest.raises(TwilioException) as ei:
        send(make_client(fake))
    assert isinstance(ei.value, TwilioServiceException)
    assert not isinstance(ei.value, TwilioRestException)
    assert (ei.value.status, ei.value.code, ei.value.detail) == (429, 20429, "slow down")


def test_delay_longer_than_timeout_raises_requests_timeout(fake: FakeTwilio) -> None:
    fake.script(Delay(1.0))
    with pytest.raises(requests.exceptions.Timeout):
        send(make_client(fake, timeout=0.2))


def test_drop_raises_connection_error(fake: FakeTwilio) -> None:
    fake.script(Drop())
    with pytest.raises(requests.exceptions.ConnectionError):
        send(make_client(fake))


def test_latency_does_not_serialise_requests(fake: FakeTwilio) -> None:
    fake.latency = 0.1
    clients = [make_client(fake) for _ in range(20)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=20) as pool:
        sids = list(pool.map(send, clients))
    elapsed = time.perf_counter() - start
    assert len(set(sids)) == 20 and len(fake.messages) == 20
    assert elapsed < 1.0, f"20 sends at 0.1 s latency took {elapsed:.2f} s"


def test_status_callback_params_and_signature(fake: FakeTwilio) -> None:
    sid = send(make_client(fake))
    delivered = fake.status_callback_params(sid, "delivered")
    assert delivered == {"SmsSid": sid, "SmsStatus": "delivered", "MessageStatus": "delivered",
                         "To": TO, "MessageSid": sid, "AccountSid": SID, "From": FROM,
                         "ApiVersion": "2010-04-01"}
    failed = fake.status_callback_params(sid, "undelivered", error_code=30003)
    assert failed["ErrorCode"] == "30003"
    url = "https://api.example.test/sms/status"
    sig = fake.sign_callback(url, delivered)
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, delivered, sig)
    assert not validator.validate(url, {**delivered, "MessageStatus": "failed"}, sig)


def test_num_segments() -> None:
    assert num_segments("a" * 160) == 1 and num_segments("a" * 161) == 2
    assert num_segments("€" * 80) == 1 and num_segments("€" * 81) == 2  # GSM extension: 2 each
    assert num_segments("é" * 160) == 1 and num_segments("ü" + "ł" * 69) == 1
    assert num_segments("ł" * 71) == 2
