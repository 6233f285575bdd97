"""FailoverSender over the real twilio and vonage SDKs, against FakeTwilio and FakeVonage: which
failures move a message to the next provider, the circuit that skips a failing one, the
metrics per provider, and the settings that build it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from services.core.factors.sms.circuit import CircuitRules
from services.core.factors.sms.failover import FailoverSender, build_sender
from services.core.factors.sms.sender import ConsoleSender, TwilioSender
from services.core.factors.sms.vonage import VonageSender
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings
from tests.fakes.fake_twilio import Delay, Drop, FakeTwilio, Reply, twilio_error
from tests.fakes.fake_vonage import FakeVonage, vonage_status

TO = "+4915112345678"
RULES = CircuitRules(failures=3, window=60.0, open_for=30.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def both_settings(tmp_path: Path, twilio: FakeTwilio, vonage: FakeVonage,
                  **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        env="test", var_dir=tmp_path, sms_providers="twilio,vonage",
        TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006", twilio_api_url=twilio.url,
        VONAGE_API_KEY=vonage.api_key, VONAGE_API_SECRET=vonage.api_secret,
        VONAGE_SIGNATURE_SECRET=vonage.signature_secret, VONAGE_FROM="twofa",
        vonage_api_url=vonage.url, public_url="https://2fa.example.test",
        sms_send_timeout_seconds=0.5)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeTwilio, FakeVonage]]:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    with FakeTwilio() as twilio, FakeVonage() as vonage:
        yield twilio, vonage


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chain(tmp_path: Path, fakes: tuple[FakeTwilio, FakeVonage],
          clock: FakeClock) -> Iterator[FailoverSender]:
    settings = both_settings(tmp_path, *fakes)
    sender = FailoverSender([TwilioSender(settings), VonageSender(settings)], RULES, clock)
    yield sender
    sender.close()


def sends(provider: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("twofa_sms_provider_sends_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


def test_twilio_first_when_it_works(chain: FailoverSender,
                                    fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    receipt = chain.send(TO, "x")
    assert receipt.provider == "twilio" and receipt.message_id == twilio.messages[0]["sid"]
    assert vonage.requests == [] and chain.name == "twilio+vonage"


@pytest.mark.parametrize("failure", [
    twilio_error(500, 20500, "Internal Server Error"),
    twilio_error(503, 20503, "Service Unavailable"),
    twilio_error(429, 20429, "Too Many Requests"),
    Delay(2),  # a timeout
    Drop(),
], ids=["500", "503", "429", "timeout", "dropped"])
def test_a_transient_failure_moves_the_message_to_vonage(
        chain: FailoverSender, fakes: tuple[FakeTwilio, FakeVonage],
        failure: Reply | Delay | Drop) -> None:
    twilio, vonage = fakes
    twilio.script(failure)
    before = (sends("twilio", "transient"), sends("vonage", "accepted"))
    receipt = chain.send(TO, "123456 is your code")
    (msg,) = vonage.messages
    assert receipt.provider == "vonage" and receipt.message_id == msg["message-id"]
    assert msg["text"] == "123456 is your code" and msg["to"] == TO[1:]
    assert len(twilio.requests) == 1
    assert (sends("twilio", "transient"), sends("vonage", "accepted")) == (
        before[0] + 1, before[1] + 1)


def test_an_invalid_number_is_not_passed_on(chain: FailoverSender,
                                            fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    before = sends("twilio", "permanent")
    with pytest.raises(PermanentProviderError) as err:
        chain.send("+1", "x")  # FakeTwilio: 21211 not a valid phone number
    assert err.value.code == 21211
    assert vonage.requests == []
    assert sends("twilio", "permanent") == before + 1


def test_a_permanent_error_at_vonage_is_final_too(chain: FailoverSender,
                                                 fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    twilio.script(twilio_error(500, 20500, "down"))
    vonage.script(vonage_status(6, "Unroutable"))
    with pytest.raises(PermanentProviderError) as err:
        chain.send(TO, "x")
    assert err.value.code == 6


def test_both_failing_transiently_is_transient(chain: FailoverSender,
                                              fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    twilio.script(twilio_error(500, 20500, "down"))
    vonage.script(vonage_status(1, "Throttled"))
    with pytest.raises(TransientProviderError) as err:
        chain.send(TO, "x")
    assert err.value.code == 1  # the last provider's failure goes to the caller
    assert len(twilio.requests) == 1 and len(vonage.requests) == 1


def test_the_circuit_opens_and_closes(chain: FailoverSender, clock: FakeClock,
                                      fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    twilio.failing = twilio_error(503, 20503, "Service Unavailable")
    opened = REGISTRY.get_sample_value("twofa_sms_provider_circuit_opened_total",
                                       {"provider": "twilio"}) or 0.0
    for _ in range(3):
        assert chain.send(TO, "x").provider == "vonage"
        clock.now += 1
    assert len(twilio.requests) == 3 and chain.circuits["twilio"].state == "open"
    assert REGISTRY.get_sample_value("twofa_sms_provider_circuit_opened_total",
                                     {"provider": "twilio"}) == opened + 1
    skipped = sends("twilio", "skipped")
    for _ in range(5):  # open: twilio is not even asked
        assert chain.send(TO, "x").provider == "vonage"
    assert len(twilio.requests) == 3 and sends("twilio", "skipped") == skipped + 5
    clock.now += 30  # half-open; twilio is still down: the probe fails, open again
    assert chain.send(TO, "x").provider == "vonage"
    assert len(twilio.requests) == 4 and chain.circuits["twilio"].state == "open"
    twilio.failing = None  # twilio recovers
    assert chain.send(TO, "x").provider == "vonage"  # still open
    clock.now += 30
    assert chain.send(TO, "x").provider == "twilio"  # the probe succeeds: closed
    assert chain.circuits["twilio"].state == "closed"
    assert [chain.send(TO, "x").provider for _ in range(3)] == ["twilio"] * 3
    assert len(vonage.messages) == 10 and len(twilio.messages) == 4


def test_with_every_circuit_open_both_are_still_tried(chain: FailoverSender, clock: FakeClock,
                                                     fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    twilio.failing = twilio_error(500, 20500, "down")
    vonage.failing = Reply(500, {"title": "down"})
    for _ in range(3):
        with pytest.raises(TransientProviderError):
            chain.send(TO, "x")
    assert chain.circuits["twilio"].state == chain.circuits["vonage"].state == "open"
    vonage.failing = None
    assert chain.send(TO, "x").provider == "vonage"  # a code is never held back by circuits
    assert len(twilio.requests) == 4


# -- settings --------------------------------------------------------------------------------


def test_build_sender_follows_the_provider_list(tmp_path: Path,
                                               fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    sender = build_sender(both_settings(tmp_path, *fakes, sms_providers="vonage, twilio",
                                        sms_circuit_failures=7))
    try:
        assert sender.name == "vonage+twilio"
        assert [type(p) for p in sender.providers.values()] == [VonageSender, TwilioSender]
    finally:
        sender.close()
    one = build_sender(both_settings(tmp_path, *fakes, sms_providers="", sms_provider="twilio"))
    assert one.name == "twilio"
    one.close()
    console = build_sender(Settings(env="test", var_dir=tmp_path))
    assert console.name == "console" and isinstance(console.providers["console"], ConsoleSender)


def test_the_list_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            fakes: tuple[FakeTwilio, FakeVonage]) -> None:
    twilio, vonage = fakes
    for name, value in {"TWOFA_SMS_PROVIDERS": "twilio,vonage", "VONAGE_API_KEY": "k",
                        "VONAGE_API_SECRET": "s", "VONAGE_SIGNATURE_SECRET": "sig",
                        "VONAGE_FROM": "twofa", "TWILIO_ACCOUNT_SID": twilio.account_sid,
                        "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "+15005550006",
                        "TWOFA_SMS_CIRCUIT_FAILURES": "9"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.sms_provider_names == ("twilio", "vonage")
    assert settings.sms_circuit_failures == 9
    assert settings.vonage_signature_secret is not None
    assert settings.vonage_signature_secret.get_secret_value() == "sig"
    monkeypatch.delenv("TWOFA_SMS_PROVIDERS")
    monkeypatch.setenv("TWOFA_SMS_PROVIDER", "vonage")  # the one-provider form
    assert Settings().sms_provider_names == ("vonage",)
    assert "TWOFA_SMS_PROVIDERS" not in os.environ


@pytest.mark.parametrize(("overrides", "message"), [
    ({"sms_providers": "twilio,sinch"}, "unknown provider 'sinch'"),
    ({"sms_providers": "twilio,twilio"}, "names a provider twice"),
    ({"sms_providers": "console,twilio"}, "console cannot be combined"),
    ({"sms_providers": "vonage", "sms_provider": "twilio"}, "not both"),
    ({"VONAGE_SIGNATURE_SECRET": None}, "vonage needs VONAGE_SIGNATURE_SECRET"),
    ({"VONAGE_API_SECRET": None, "VONAGE_FROM": None},
     "vonage needs VONAGE_API_SECRET, VONAGE_FROM"),
    ({"TWILIO_AUTH_TOKEN": None}, "twilio needs TWILIO_AUTH_TOKEN"),
])
def test_a_bad_provider_list_refuses_to_start(tmp_path: Path,
                                             fakes: tuple[FakeTwilio, FakeVonage],
                                             overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        both_settings(tmp_path, *fakes, **overrides)


def test_production_refuses_console_but_takes_vonage_alone(tmp_path: Path) -> None:
    common: dict[str, object] = dict(
        env="production", encryption_keys="x", audit_signing_key="x", push_provider="fcm",
        fcm_credentials_file=__file__, broker_url="redis://h", public_url="https://2fa.example.org")
    with pytest.raises(ValidationError, match="TWOFA_SMS_PROVIDERS=console"):
        Settings(**common)  # type: ignore[arg-type]
    s = Settings(**common, sms_providers="vonage", VONAGE_API_KEY="k",  # type: ignore[arg-type]
                 VONAGE_API_SECRET="s", VONAGE_SIGNATURE_SECRET="sig", VONAGE_FROM="twofa")
    assert s.sms_provider_names == ("vonage",)
