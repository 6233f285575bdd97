"""Verification rules through the API: replay, window, concurrency, back-off, lock."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from services.core.plumbing.context import Context
from services.core.errors import InvalidCode
from services.core.models import OutboxEvent, Token
from services.core.tokens.verification import check_token_code
from tests.integration.helpers import active_totp, totp_code


def delete(api, headers, token_id, code, user="alice"):
    return api.request("DELETE", f"/v1/users/{user}/tokens/{token_id}", json={"code": code}, headers=headers)


def login(api, headers, token_id, user="alice"):
    """A challenge for a protected area with the token selected."""
    from services.core.models import AreaProtection

    ctx: Context = api.app.state.ctx
    with ctx.sessions.begin() as s:
        if s.get(AreaProtection, (user, "sso")) is None:
            s.add(AreaProtection(user_id=user, area="sso", protected=True, updated_at=ctx.clock.now()))
    c = api.post("/v1/challenges", json={"user_id": user, "area": "sso"}, headers=headers).json()
    assert c["status"] == "pending", c
    api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id}, headers=headers)
    return c["challenge_id"]


def test_a_code_is_accepted_once(api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    first = login(api, challenge_headers, token_id)
    code = totp_code(secret, clock)
    assert api.post(f"/v1/challenges/{first}/verify", json={"code": code}, headers=challenge_headers).status_code == 200
    second = login(api, challenge_headers, token_id)
    r = api.post(f"/v1/challenges/{second}/verify", json={"code": code}, headers=challenge_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_code"


def test_an_earlier_step_is_refused_after_a_later_one(api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    c1 = login(api, challenge_headers, token_id)
    assert api.post(f"/v1/challenges/{c1}/verify", json={"code": totp_code(secret, clock, +1)}, headers=challenge_headers).status_code == 200
    c2 = login(api, challenge_headers, token_id)
    r = api.post(f"/v1/challenges/{c2}/verify", json={"code": totp_code(secret, clock)}, headers=challenge_headers)
    assert r.status_code == 422


def test_window_is_one_step_each_side(api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    clock.advance(60)  # keep the last accepted step out of the window under test
    c = login(api, challenge_headers, token_id)
    r = api.post(f"/v1/challenges/{c}/verify", json={"code": totp_code(secret, clock, -2)}, headers=challenge_headers)
    assert r.status_code == 422
    r = api.post(f"/v1/challenges/{c}/verify", json={"code": totp_code(secret, clock, -1)}, headers=challenge_headers)
    assert r.status_code == 200, r.text


def test_drift_is_remembered(ctx: Context, api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    c = login(api, challenge_headers, token_id)
    assert api.post(f"/v1/challenges/{c}/verify", json={"code": totp_code(secret, clock, +1)}, headers=challenge_headers).status_code == 200
    with ctx.sessions() as s:
        assert s.get(Token, uuid.UUID(token_id)).drift == 1
    clock.advance(30)
    # the phone is one step ahead: with drift 1 the window now reaches two steps ahead
    c = login(api, challenge_headers, token_id)
    assert api.post(f"/v1/challenges/{c}/verify", json={"code": totp_code(secret, clock, +2)}, headers=challenge_headers).status_code == 200


def test_concurrent_replay_accepts_exactly_one(ctx: Context, api, enroll_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    code = totp_code(secret, clock)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()  # all start together (SQLite then serialises them on its write lock)
        with ctx.uow() as uow:
            token = uow.session.get(Token, uuid.UUID(token_id))
            try:
                check_token_code(ctx, uow, token, code, purpose="login")
                uow.commit()
                results.append("ok")
            except InvalidCode:
                results.append("refused")
            except Exception as exc:  # a lost race may surface as a DB conflict: still a refusal
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results


def test_back_off_after_failures_then_lock_at_the_cap(ctx: Context, api, enroll_headers, clock, tmp_path, database_url):
    token_id, secret = active_totp(api, enroll_headers, clock)
    # free_failures=3, then 1 s, 2 s, 4 s … (settings defaults)
    for _ in range(3):
        assert delete(api, enroll_headers, token_id, "000000").status_code == 422
    r = delete(api, enroll_headers, token_id, "000000")
    assert r.status_code == 422  # the 4th failure starts a 1 s back-off
    r = delete(api, enroll_headers, token_id, totp_code(secret, clock))
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "throttled"
    clock.advance(1)
    r = delete(api, enroll_headers, token_id, totp_code(secret, clock))
    assert r.status_code == 200, r.text  # a valid code after the wait works and resets


def test_the_token_locks_at_max_failures(tmp_path, database_url, clock, publisher):
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from services.core import apikeys
    from services.core.bootstrap import build_context
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url, max_failures=5, free_failures=10)
    ctx = build_context(settings, publisher=publisher, background=False, clock=clock)
    with ctx.sessions.begin() as s:
        key = apikeys.create_key(s, "t", ("enroll",), clock.now()).plaintext
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(ctx=ctx)) as api:
        token_id, secret = active_totp(api, headers, clock)
        for _ in range(5):
            assert delete(api, headers, token_id, "000000").status_code == 422
        tokens = api.get("/v1/users/alice/tokens", headers=headers).json()["tokens"]
        assert tokens[0]["state"] == "locked"
        assert "token.locked" in publisher.types()
    ctx.engine.dispose()


def test_a_rejected_request_changes_nothing(ctx: Context, api, enroll_headers):
    with ctx.sessions() as s:
        before = s.scalar(select(func.count()).select_from(OutboxEvent))
    bad = [
        api.post("/v1/users/alice/tokens", content=b"{not json", headers={**enroll_headers, "Content-Type": "application/json"}),
        api.post("/v1/users/alice/tokens", json={"type": "hotp", "description": "x"}, headers=enroll_headers),
        api.post("/v1/users/alice/tokens", json={"type": "totp", "description": ""}, headers=enroll_headers),
        api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "x" * 65}, headers=enroll_headers),
        api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "x", "extra": 1}, headers=enroll_headers),
        api.post("/v1/users/al%20ice/tokens", json={"type": "totp", "description": "x"}, headers=enroll_headers),
        api.post(f"/v1/users/alice/tokens/{uuid.uuid4()}/scanned", headers=enroll_headers),
        api.post("/v1/users/alice/tokens/not-a-uuid/scanned", headers=enroll_headers),
        api.post("/v1/users/alice/tokens", content=b"x" * 20000, headers={**enroll_headers, "Content-Type": "application/json"}),
    ]
    assert [r.status_code for r in bad] == [400, 422, 422, 422, 422, 422, 404, 422, 413]
    for r in bad:
        assert set(r.json()["error"]) == {"code", "message"}
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == before
        assert s.scalar(select(func.count()).select_from(Token)) == 0
