"""Self-test of FakeFCM through the real pyfcm.FCMNotification (library-notes §4)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import jwt
import pytest
import requests
from pyfcm import FCMNotification
from pyfcm.errors import FCMNotRegisteredError, FCMServerError, InvalidDataError

from tests.fakes.fake_fcm import (
    Delay,
    FakeFCM,
    server_error,
    too_many,
    unregistered,
)

DEVICE = "fcm-device-token-1"
DATA = {"nonce": "WIC6CLJBJWRRL5ZSCGSHPKVNLPRO5DER",
        "question": "Do you want to confirm the login?", "serial": "PIPU0000C0B9",
        "title": "privacyIDEA", "sslverify": "1",
        "url": "https://pi.example.test/ttype/push", "signature": "ABCD" * 8 + "====",
        "capabilities": '{"decline_reason": true}', "capabilities_signature": "EFGH" * 8}
ANDROID = {"priority": "HIGH", "ttl": "120s"}
APNS = {"headers": {"apns-priority": "10", "apns-push-type": "alert",
                    "apns-collapse-id": "privacyidea.pushtoken"},
        "payload": {"aps": {"category": "PUSH_AUTHENTICATION"}}}


@pytest.fixture
def fake() -> Iterator[FakeFCM]:
    with FakeFCM() as f:
        yield f


@pytest.fixture
def fcm(fake: FakeFCM, tmp_path: Path) -> FCMNotification:
    sa = fake.write_service_account(tmp_path / "service-account.json")

    class LocalFCM(FCMNotification):  # type: ignore[misc]  # pyfcm ships no type hints
        FCM_END_POINT_BASE = f"{fake.api_base}/v1/projects"

    return LocalFCM(service_account_file=str(sa))


def notify(fcm: FCMNotification, data: Mapping[str, object] = DATA) -> dict[str, str]:
    result: dict[str, str] = fcm.notify(fcm_token=DEVICE, data_payload=data,
                                        android_config=ANDROID, apns_config=APNS, timeout=5)
    return result


def test_data_message_arrives_with_all_fields(fake: FakeFCM, fcm: FCMNotification) -> None:
    before = time.time()
    result = notify(fcm)
    assert result["name"].startswith("projects/demo-2fa/messages/")
    (msg,) = fake.wait_for_messages(1, timeout=2)
    assert msg.name == result["name"] and msg.project == "demo-2fa"
    assert msg.token == DEVICE and msg.data == DATA
    assert msg.android == ANDROID and msg.apns == APNS
    assert msg.notification is None  # data-only: pyfcm drops the empty notification
    assert before <= msg.received_wall <= time.time() and msg.received_perf > 0
    token_req, send_req = fake.requests
    assert token_req.path == "/token"
    assert token_req.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(token_req.form["assertion"], options={"verify_signature": False})
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["iss"] == fake.client_email
    assert send_req.headers["Authorization"] == f"Bearer {fake.issued_tokens[0]}"
    assert send_req.json == {"message": {"token": DEVICE, "data": DATA, "android": ANDROID,
                                         "apns": APNS}, "validate_only": False}


def test_unregistered_raises_not_registered(fake: FakeFCM, fcm: FCMNotification) -> None:
    fake.script(unregistered())
    with pytest.raises(FCMNotRegisteredError):
        notify(fcm)
    assert fake.messages == []
    notify(fcm)  # one-shot: the next send goes through
    assert len(fake.messages) == 1


def test_non_string_data_value_is_rejected_like_fcm(fake: FakeFCM, fcm: FCMNotification) -> None:
    with pytest.raises(InvalidDataError) as ei:
        notify(fcm, {**DATA, "sslverify": 1})
    assert "INVALID_ARGUMENT" in str(ei.value) and "TYPE_STRING" in str(ei.value)
    assert fake.messages == []


def test_500_raises_server_error(fake: FakeFCM, fcm: FCMNotification) -> None:
    fake.script(server_error(500))
    with pytest.raises(FCMServerError):
        notify(fcm)


def test_429_without_retry_after_raises_server_error(fake: FakeFCM, fcm: FCMNotification) -> None:
    fake.script(too_many())
    with pytest.raises(FCMServerError):
        notify(fcm)


def test_429_with_retry_after_is_resent_by_pyfcm(fake: FakeFCM, fcm: FCMNotification) -> None:
    fake.script(too_many(retry_after=1))
    notify(fcm)
    assert len(fake.messages) == 1
    assert [r.path.endswith("messages:send") for r in fake.requests] == [False, True, True]


def test_expired_token_is_refetched(fake: FakeFCM, fcm: FCMNotification) -> None:
    notify(fcm)
    fake.expire_tokens()
    notify(fcm)
    assert len(fake.messages) == 2 and len(fake.issued_tokens) == 2


def test_unauthenticated_send_gets_401(fake: FakeFCM) -> None:
    r = requests.post(f"{fake.url}/v1/projects/demo-2fa/messages:send",
                      json={"message": {"token": DEVICE}}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_forged_jwt_is_refused(fake: FakeFCM) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    assertion = jwt.encode({"iss": fake.client_email, "aud": "https://oauth2.googleapis.com/token",
                            "scope": "https://www.googleapis.com/auth/firebase.messaging",
                            "iat": now, "exp": now + 3600}, other, algorithm="RS256")
    r = requests.post(f"{fake.url}/token", timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_delay_and_wait_for_messages_timeout(fake: FakeFCM, fcm: FCMNotification) -> None:
    fake.script(Delay(0.3))
    start = time.perf_counter()
    notify(fcm)
    assert time.perf_counter() - start >= 0.3
    with pytest.raises(TimeoutError):
        fake.wait_for_messages(2, timeout=0.1)
