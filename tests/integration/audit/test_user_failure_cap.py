"""The per-user cap on consecutive failures over all factors: growing back-off, never a lock."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.core.bootstrap import build_context
from services.core.errors import InvalidCode, Throttled
from services.core.models import Token, UserProfile
from services.core.plumbing.settings import NIST_MAX_FAILURES, Settings
from services.core.factors.totp import otp
from services.core.lockout import UserPolicy
from services.core.tokens.verification import check_token_code
from tests.conftest import make_settings

P = otp.TotpParams()


def test_the_delay_doubles_towards_the_cap_and_then_stays():
    delays = [UserPolicy(30, 3600).delay_after(n) for n in range(0, 101)]
    assert delays[0] == 0 and delays[18] == 0  # far from the cap: the per-token throttle rules
    assert delays[19] > 0
    assert delays[29] == 1800 and delays[30] == 3600 and delays[100] == 3600
    assert delays == sorted(delays)


def test_the_cap_cannot_exceed_nist():
    with pytest.raises(ValueError):
        Settings(env="test", user_max_failures=NIST_MAX_FAILURES + 1)
    assert Settings(env="test").user_max_failures == 30


@pytest.fixture
def capped(tmp_path, database_url, clock, publisher):
    # free_failures=20 keeps the per-token throttle out of the way: only the user cap acts here.
    s = make_settings(tmp_path, database_url, user_max_failures=5, user_backoff_max_seconds=64, free_failures=20)
    ctx = build_context(s, publisher=publisher, background=False, clock=clock)
    yield ctx
    ctx.engine.dispose()


def add_totp(ctx, user="alice"):
    secret = otp.generate_secret()
    with ctx.sessions.begin() as session:
        token = Token(id=uuid.uuid4(), user_id=user, type="totp", description="t", state="active", drift=0,
                      failures=0, created_at=ctx.clock.now(), secret_enc=ctx.keyring.encrypt(secret))
        session.add(token)
    return token.id, secret


def now_code(ctx, secret, offset=0):
    return otp.code_at_step(secret, otp.time_step(ctx.clock.now().timestamp(), 30) + offset, P)


def attempt(ctx, token_id, code):
    with ctx.uow() as uow:
        token = uow.session.get(Token, token_id)
        check_token_code(ctx, uow, token, code, purpose="login")
        uow.commit()


def profile(ctx, user="alice"):
    with ctx.sessions() as session:
        return session.get(UserProfile, user)


def test_failures_on_different_tokens_add_up_and_a_success_resets(capped):
    a, secret_a = add_totp(capped)
    b, _ = add_totp(capped)
    with pytest.raises(InvalidCode):
        attempt(capped, a, "000000")
    assert profile(capped).failures == 1  # the profile row was created on demand
    # the user is now waiting 4 s: even token b's check refuses to look at the code
    with pytest.raises(Throttled) as exc:
        attempt(capped, b, "000000")
    assert exc.value.code == "user_throttled" and exc.value.retry_after == 4
    capped.clock.advance(4)
    with pytest.raises(InvalidCode):
        attempt(capped, b, "000000")
    assert profile(capped).failures == 2
    capped.clock.advance(8)
    attempt(capped, a, now_code(capped, secret_a))
    p = profile(capped)
    assert (p.failures, p.backoff_until) == (0, None)


def test_at_the_cap_the_user_waits_the_longest_but_is_never_locked_out(capped):
    a, secret = add_totp(capped)
    for n in range(1, 9):
        with pytest.raises(InvalidCode):
            attempt(capped, a, "000000")
        expected = UserPolicy(5, 64).delay_after(n)
        assert profile(capped).failures == n
        with pytest.raises(Throttled) as exc:
            attempt(capped, a, now_code(capped, secret))  # even the right code waits
        assert exc.value.retry_after == expected
        capped.clock.advance(expected)
    assert expected == 64  # past the cap every failure costs the maximum
    attempt(capped, a, now_code(capped, secret))
    assert profile(capped).failures == 0


def test_the_api_answers_429_with_retry_after(capped):
    from services.core import apikeys

    with capped.sessions.begin() as session:
        key = apikeys.create_key(session, "t", ("enroll",), capped.clock.now()).plaintext
    h = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(ctx=capped)) as api:
        body = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "p"}, headers=h).json()
        tid = body["token"]["id"]
        secret = parse_qs(urlsplit(body["details"]["provisioning_uri"]).query)["secret"][0]
        api.post(f"/v1/users/alice/tokens/{tid}/scanned", headers=h)
        r = api.post(f"/v1/users/alice/tokens/{tid}/activate", json={"code": "000000"}, headers=h)
        assert r.status_code == 422
        r = api.post(f"/v1/users/alice/tokens/{tid}/activate", json={"code": now_code(capped, secret)}, headers=h)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "4"
        assert r.json()["error"]["code"] == "user_throttled"
        capped.clock.advance(4)
        r = api.post(f"/v1/users/alice/tokens/{tid}/activate", json={"code": now_code(capped, secret)}, headers=h)
        assert r.status_code == 200, r.text
