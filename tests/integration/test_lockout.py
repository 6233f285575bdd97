"""The lockout rules through the API: a hard lock only at the ceiling, a success with any
factor resets every count, and an administrator unlocks (API and command line)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from services.cli.main import main
from services.core.models import Token, UserProfile
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from tests.integration.helpers import active_totp, totp_code


def lock(ctx: Context, token_id: str, *, failures: int = 100, state: str = "locked") -> None:
    until = ctx.clock.now() + timedelta(seconds=900)
    with ctx.sessions.begin() as s:
        s.execute(update(Token).where(Token.id == uuid.UUID(token_id))
                  .values(failures=failures, state=state, backoff_until=until))
        s.merge(UserProfile(user_id="alice", created_at=ctx.clock.now(), failures=failures, backoff_until=until))


def state(ctx: Context, token_id: str) -> tuple[str, int, Any, int, Any]:
    with ctx.sessions() as s:
        t, p = s.get(Token, uuid.UUID(token_id)), s.get(UserProfile, "alice")
        assert t is not None and p is not None
        return t.state, t.failures, t.backoff_until, p.failures, p.backoff_until


@pytest.fixture
def admin_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('admin')}"}


def test_an_admin_unlocks_a_locked_token_and_the_user_can_log_in(ctx, api, enroll_headers, challenge_headers,
                                                                  admin_headers, clock, publisher):
    token_id, secret = active_totp(api, enroll_headers, clock)
    lock(ctx, token_id)
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "factors_locked"
    r = api.post("/v1/users/alice/unlock", json={"token_id": token_id}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["unlocked_token_ids"] == [token_id]
    assert state(ctx, token_id) == ("active", 0, None, 0, None)
    unlocked = [e for e in publisher.published if e["type"] == "token.unlocked"]
    assert [e["data"]["was_locked"] for e in unlocked] == [True]
    cid = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    r = api.post(f"/v1/challenges/{cid['challenge_id']}/verify",
                 json={"code": totp_code(secret, clock), "token_id": token_id}, headers=challenge_headers)
    assert r.json()["status"] == "verified"


def test_unlock_needs_the_admin_scope_and_an_own_token(api, enroll_headers, challenge_headers, admin_headers, clock):
    token_id, _ = active_totp(api, enroll_headers, clock)
    for headers in (enroll_headers, challenge_headers):
        assert api.post("/v1/users/alice/unlock", headers=headers).status_code == 403
    r = api.post("/v1/users/bob/unlock", json={"token_id": token_id}, headers=admin_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "token_not_found"
    r = api.post("/v1/users/alice/unlock", headers=admin_headers)  # nothing to unlock: still fine
    assert r.status_code == 200 and r.json()["unlocked_token_ids"] == []


def test_a_token_locks_only_at_the_nist_ceiling(ctx, api, enroll_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    lock(ctx, token_id, failures=98, state="active")
    with ctx.sessions.begin() as s:  # no back-off running: the next two wrong codes count
        s.execute(update(Token).values(backoff_until=None))
        s.execute(update(UserProfile).values(backoff_until=None, failures=0))
    body = {"code": "000000"}
    assert api.request("DELETE", f"/v1/users/alice/tokens/{token_id}", json=body,
                       headers=enroll_headers).status_code == 422
    assert state(ctx, token_id)[:2] == ("active", 99)
    clock.advance(900)
    assert api.request("DELETE", f"/v1/users/alice/tokens/{token_id}", json=body,
                       headers=enroll_headers).status_code == 422
    assert state(ctx, token_id)[:2] == ("locked", 100)


def test_a_success_with_any_factor_resets_every_count(ctx, api, enroll_headers, challenge_headers, clock):
    first, _ = active_totp(api, enroll_headers, clock)
    second, secret = active_totp(api, enroll_headers, clock)
    lock(ctx, first, failures=5, state="active")
    with ctx.sessions.begin() as s:  # the user's wait is over, the first token's is not
        s.execute(update(UserProfile).values(backoff_until=None))
    cid = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    r = api.post(f"/v1/challenges/{cid['challenge_id']}/verify",
                 json={"code": totp_code(secret, clock), "token_id": second}, headers=challenge_headers)
    assert r.json()["status"] == "verified"
    assert state(ctx, first) == ("active", 0, None, 0, None)


def test_the_command_line_unlocks_a_user(ctx, api, enroll_headers, clock, monkeypatch, settings, capsys,
                                         publisher: RecordingPublisher):
    token_id, _ = active_totp(api, enroll_headers, clock)
    lock(ctx, token_id)
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TWOFA_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TWOFA_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())
    assert main(["unlock", "alice"]) == 0
    assert f"unlocked alice: 1 token(s) reset\n{token_id}" in capsys.readouterr().out
    assert state(ctx, token_id)[:2] == ("active", 0)
    with pytest.raises(SystemExit):
        main(["unlock", "alice", "--token", str(uuid.uuid4())])
