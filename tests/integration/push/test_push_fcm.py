"""The FCM path: ``push.requested`` → the push task body → the real pyfcm client →
FakeFCM (OAuth token endpoint + messages:send) → the emulated app verifies the data."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from services.core.models import PushToken
from services.core.factors.push.sender import FcmSender, PermanentProviderError, PushMessage, TransientProviderError
from services.core.factors.push import delivery
from services.core.plumbing.settings import Settings
from shared.events.push import PushRequested
from shared.registry import parse_event
from tests.fakes.fake_fcm import Delay, FakeFCM, server_error, too_many, unregistered

SPEC_KEYS = {"nonce", "question", "serial", "title", "sslverify", "url", "signature", "require_presence",
             "version", "capabilities", "capabilities_signature"}


@pytest.fixture
def fake():
    with FakeFCM() as f:
        yield f


@pytest.fixture
def push_settings(tmp_path: Path, fake: FakeFCM):
    cred = fake.write_service_account(tmp_path / "sa.json")
    return {"push_server_key_bits": 2048, "push_provider": "fcm", "fcm_credentials_file": cred,
            "fcm_api_url": fake.url}


@pytest.fixture
def sender(settings) -> FcmSender:
    return FcmSender(settings.fcm_credentials_file, settings.fcm_api_url)


def requested(publisher) -> tuple[uuid.UUID, PushRequested]:
    env = [e for e in publisher.published if e["type"] == "push.requested"][-1]
    envelope, cmd = parse_event(env)
    return envelope.event_id, cmd  # type: ignore[return-value]


def test_push_goes_out_through_pyfcm_with_exactly_the_spec_fields(world, enrolled, ctx, publisher, fake, sender):
    token = enrolled(fbtoken="device-abc")
    assert not token.poll_only
    sel = world.login()
    event_id, cmd = requested(publisher)
    assert delivery.send_push(ctx, event_id, cmd, sender) == "sent"
    (msg,) = fake.wait_for_messages(1)
    assert msg.token == "device-abc"
    assert set(msg.data) == SPEC_KEYS and all(isinstance(v, str) for v in msg.data.values())
    assert msg.android == {"priority": "HIGH", "ttl": "120s"}  # FCM TTL = challenge validity
    assert msg.apns["headers"]["apns-push-type"] == "alert"
    assert msg.notification == {"title": "twofa", "body": "Do you want to confirm the login?"}
    req = world.app.verify_challenge(token, msg.data, now=world.now)  # the app accepts it
    assert world.app.accept(req, sel["presence_answer"], now=world.now)["result"]["value"] is True
    assert "push.sent" in publisher.types()
    # a redelivered command is not sent twice
    assert delivery.send_push(ctx, event_id, cmd, sender) == "duplicate"
    assert len(fake.messages) == 1
    assert any(r.path == "/token" for r in fake.requests)  # OAuth through the token_uri


def test_unregistered_marks_the_token_and_polling_still_works(world, enrolled, ctx, publisher, fake, sender):
    token = enrolled(fbtoken="stale")
    world.login()
    fake.script(unregistered())
    event_id, cmd = requested(publisher)
    assert delivery.send_push(ctx, event_id, cmd, sender) == "failed"
    failed = [e for e in publisher.published if e["type"] == "push.failed"][-1]["data"]
    assert failed["unregistered"] is True and failed["permanent"] is True
    with ctx.sessions() as s:
        assert s.get(PushToken, cmd.token_id).fcm_unregistered is True
    assert len(world.app.poll(token, world.ts())) == 1
    # the next push is not even tried until the app sends a new Firebase token
    world.clock.advance(121)
    world.login()
    event_id, cmd = requested(publisher)
    assert delivery.send_push(ctx, event_id, cmd, sender) == "unregistered"
    assert world.app.update_firebase_token(token, "fresh", world.ts())["result"]["value"] is True
    with ctx.sessions() as s:
        assert s.get(PushToken, cmd.token_id).fcm_unregistered is False


@pytest.mark.parametrize("reply", [server_error(500), too_many(), too_many(retry_after=30)])
def test_5xx_and_429_are_transient_and_never_slept_through(world, enrolled, ctx, publisher, fake, sender, reply):
    enrolled()
    world.login()
    fake.script(reply)
    event_id, cmd = requested(publisher)
    t0 = time.monotonic()
    with pytest.raises(TransientProviderError) as exc:
        delivery.send_push(ctx, event_id, cmd, sender)
    assert time.monotonic() - t0 < 2
    if reply.headers.get("Retry-After"):
        assert exc.value.retry_after == 30
    assert "push.sent" not in publisher.types()
    # the retry (the task's next attempt) goes through
    assert delivery.send_push(ctx, event_id, cmd, sender) == "sent"


def test_503_storm_is_bounded(fake, sender):
    fake.script(*[server_error(503)] * 5)
    msg = PushMessage("dev", {"a": "b"}, 120, "t", "q")
    t0 = time.monotonic()
    with pytest.raises(TransientProviderError):
        sender.send(msg)
    assert time.monotonic() - t0 < 3
    assert len([r for r in fake.requests if r.path.endswith("messages:send")]) == 3  # 1 + 2 retries


def test_hanging_fcm_times_out(fake, sender, monkeypatch):
    import services.core.factors.push.sender as provider

    monkeypatch.setattr(provider, "FCM_TIMEOUT_SECONDS", 0.3)
    fake.script(Delay(1.0), Delay(1.0), Delay(1.0))
    with pytest.raises(TransientProviderError):
        sender.send(PushMessage("dev", {"a": "b"}, 120, "t", "q"))


def test_invalid_message_is_permanent(fake, sender):
    with pytest.raises(PermanentProviderError) as exc:
        sender.send(PushMessage("dev", {"a": 1}, 120, "t", "q"))  # type: ignore[dict-item]
    assert exc.value.unregistered is False


def test_closed_challenge_is_not_pushed(world, enrolled, ctx, publisher, fake, sender):
    enrolled()
    world.login()
    event_id, cmd = requested(publisher)
    world.clock.advance(121)
    assert delivery.send_push(ctx, event_id, cmd, sender) == "closed"
    assert fake.messages == []


def test_push_task_retries_transient_errors_with_bounded_countdown():
    from services.workers.tasks import push as task

    assert task.send.name == "twofa.push.send"
    assert task.send.soft_time_limit == 30 and task.send.time_limit == 40 and task.send.acks_late
    s = Settings(env="test")
    assert all(task.countdown(s, n, None) <= task.MAX_COUNTDOWN for n in range(10))
    assert task.countdown(s, 0, 25) == 25 and task.countdown(s, 0, 999) == task.MAX_COUNTDOWN
    short = Settings(env="test", broker_visibility_timeout=10)  # a countdown past it runs twice
    assert all(task.countdown(short, n, 999) <= 9 for n in range(10))
    assert task.MAX_COUNTDOWN * task.MAX_RETRIES < 300  # below the visibility timeout


def test_threads_starting_at_once_load_the_credentials_once(sender, monkeypatch):
    """pyfcm's own first use is not thread-safe: the second loader read a path of None."""
    from pyfcm import FCMNotification

    from tests.integration.helpers import in_threads

    client = sender._fcm()
    real = FCMNotification._initialize_credentials
    inside, calls = [0, 0], []

    def slow_load(self):
        inside[0] += 1
        inside[1] = max(inside[1], inside[0])
        time.sleep(0.05)
        real(self)
        calls.append(1)
        inside[0] -= 1

    monkeypatch.setattr(FCMNotification, "_initialize_credentials", slow_load)
    client.credentials = None
    in_threads(8, lambda _: client._initialize_credentials())
    assert inside[1] == 1 and len(calls) == 1
    assert client.credentials is not None
