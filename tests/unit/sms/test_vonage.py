"""VonageSender through the real ``vonage`` SDK against FakeVonage over HTTP: what it sends, how
each failure is sorted, and the check of a delivery receipt's signature."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.factors.sms.vonage import VonageSender
from services.core.factors.sms.vonage_receipts import receipt_is_signed
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings
from tests.fakes.fake_vonage import Delay, Drop, FakeVonage, Reply, vonage_status

TO = "+4915112345678"


@pytest.fixture
def fake() -> Iterator[FakeVonage]:
    with FakeVonage() as f:
        yield f


def vonage_settings(fake: FakeVonage, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        env="test", var_dir=tmp_path, sms_providers="vonage", VONAGE_API_KEY=fake.api_key,
        VONAGE_API_SECRET=fake.api_secret, VONAGE_SIGNATURE_SECRET=fake.signature_secret,
        VONAGE_FROM="+15005550006", vonage_api_url=fake.url,
        public_url="https://2fa.example.test", sms_send_timeout_seconds=0.5)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sender(fake: FakeVonage, tmp_path: Path) -> Iterator[VonageSender]:
    s = VonageSender(vonage_settings(fake, tmp_path))
    yield s
    s.close()


def test_a_send_reaches_the_sms_api_as_the_sdk_makes_it(fake: FakeVonage,
                                                        sender: VonageSender) -> None:
    ref = uuid.uuid4()
    receipt = sender.send(TO, "123456 is your code", reference=ref)
    (msg,) = fake.messages
    assert receipt.provider == "vonage" and receipt.message_id == msg["message-id"]
    (req,) = fake.requests
    assert req.method == "POST" and req.path == "/sms/json"
    assert req.form["to"] == TO[1:] and req.form["from"] == "15005550006"  # no "+"
    assert req.form["text"] == "123456 is your code"
    assert req.form["client-ref"] == str(ref)
    assert req.form["callback"] == "https://2fa.example.test/v1/callbacks/vonage"
    user, _, secret = base64.b64decode(req.headers["Authorization"].split()[1]).decode() \
        .partition(":")
    assert (user, secret) == (fake.api_key, fake.api_secret)
    assert "vonage-python-sdk" in req.headers["User-Agent"]
    assert not any(v == "None" for v in req.form.values())


def test_without_a_reference_no_receipt_is_asked_for(fake: FakeVonage,
                                                     sender: VonageSender) -> None:
    sender.send(TO, "a notification")
    (req,) = fake.requests
    assert "callback" not in req.form and "client-ref" not in req.form


@pytest.mark.parametrize(("status", "transient"), [
    (1, True),    # throttled
    (5, True),    # internal error
    (9, True),    # out of credit: the account, not the number
    (2, False),   # missing parameters
    (3, False),   # invalid parameters (an invalid number)
    (4, False),   # invalid credentials
    (6, False),   # unroutable
    (7, False),   # number barred
    (15, False),  # illegal sender address
])
def test_refused_messages_are_sorted_by_status(fake: FakeVonage, sender: VonageSender,
                                               status: int, transient: bool) -> None:
    fake.script(vonage_status(status, "refused", TO[1:]))
    kind = TransientProviderError if transient else PermanentProviderError
    with pytest.raises(kind) as err:
        sender.send(TO, "x")
    assert err.value.code == status and f"vonage status {status}" in err.value.message
    assert len(fake.requests) == 1


def test_an_invalid_number_is_refused_by_the_fake_as_by_vonage(sender: VonageSender) -> None:
    with pytest.raises(PermanentProviderError) as err:
        sender.send("+12", "x")
    assert err.value.code == 3


@pytest.mark.parametrize("http", [500, 502, 503, 429])
def test_429_and_5xx_are_transient_and_not_retried_by_the_sdk(fake: FakeVonage,
                                                              sender: VonageSender,
                                                              http: int) -> None:
    fake.script(Reply(http, {"type": "about:blank", "title": "nope"},
                      {"Retry-After": "7"} if http == 429 else {}))
    with pytest.raises(TransientProviderError) as err:
        sender.send(TO, "x")
    assert err.value.status == http
    assert err.value.retry_after == (7 if http == 429 else None)
    assert len(fake.requests) == 1


def test_401_is_permanent(fake: FakeVonage, sender: VonageSender) -> None:
    fake.script(Reply(401, {"type": "about:blank", "title": "Unauthorized"}))
    with pytest.raises(PermanentProviderError):
        sender.send(TO, "x")


def test_a_slow_answer_times_out_within_the_send_timeout(fake: FakeVonage,
                                                        sender: VonageSender) -> None:
    fake.script(Delay(3))
    t0 = time.monotonic()
    with pytest.raises(TransientProviderError, match="timed out"):
        sender.send(TO, "x")
    assert time.monotonic() - t0 < 2
    assert len(fake.requests) == 1


def test_a_dropped_connection_is_transient_and_sent_once(fake: FakeVonage,
                                                        sender: VonageSender) -> None:
    fake.script(Drop())
    with pytest.raises(TransientProviderError, match="unreachable"):
        sender.send(TO, "x")
    assert len(fake.requests) == 1  # the SDK's own repeat on a closed connection is off


def test_nobody_listening_is_transient(fake: FakeVonage, tmp_path: Path) -> None:
    sender = VonageSender(vonage_settings(fake, tmp_path))
    fake.stop()
    with pytest.raises(TransientProviderError, match="unreachable"):
        sender.send(TO, "x")


def test_an_unreadable_answer_is_transient(fake: FakeVonage, sender: VonageSender) -> None:
    fake.script(Reply(200, body=b"<html>proxy error</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(TransientProviderError, match="unreadabl"):
        sender.send(TO, "x")


# -- receipts -----------------------------------------------------------------------------------


def _receipt(fake: FakeVonage, sender: VonageSender) -> dict[str, str]:
    receipt = sender.send(TO, "x", reference=uuid.uuid4())
    return fake.receipt_params(receipt.message_id, "delivered")


def test_a_receipt_signed_with_our_secret_verifies(fake: FakeVonage, sender: VonageSender,
                                                   tmp_path: Path) -> None:
    settings = vonage_settings(fake, tmp_path)
    params = fake.sign_receipt(_receipt(fake, sender))
    assert receipt_is_signed(settings, params)
    assert params["sig"]  # and the check did not consume the caller's copy


@pytest.mark.parametrize("method", ["md5", "sha1", "sha512"])
def test_each_signature_method_the_sdk_offers(fake: FakeVonage, sender: VonageSender,
                                              tmp_path: Path, method: str) -> None:
    fake.signature_method = method
    params = fake.sign_receipt(_receipt(fake, sender))
    assert receipt_is_signed(vonage_settings(fake, tmp_path, vonage_signature_method=method),
                             params)
    assert not receipt_is_signed(vonage_settings(fake, tmp_path), params)  # sha256 expected


@pytest.mark.parametrize("forge", ["unsigned", "wrong_secret", "tampered", "no_timestamp",
                                   "no_secret_configured"])
def test_forged_receipts_do_not_verify(fake: FakeVonage, sender: VonageSender, tmp_path: Path,
                                       forge: str) -> None:
    settings = vonage_settings(fake, tmp_path)
    params = _receipt(fake, sender)
    signed = fake.sign_receipt(params)
    forged = {
        "unsigned": params,
        "wrong_secret": fake.sign_receipt(params, signature_secret="not-our-secret-0123456789"),
        "tampered": {**signed, "status": "failed"},
        "no_timestamp": {k: v for k, v in signed.items() if k != "timestamp"},
        "no_secret_configured": signed,
    }[forge]
    if forge == "no_secret_configured":
        settings = vonage_settings(fake, tmp_path, sms_providers="console",
                                   VONAGE_SIGNATURE_SECRET=None)
    assert not receipt_is_signed(settings, forged)
