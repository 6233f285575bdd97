"""Push fixtures: settings with 2048-bit server keys (speed), the emulated app on the
TestClient, and helpers to enroll a push token and open a login challenge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.models import AreaProtection
from services.core.plumbing.settings import Settings
from tests.conftest import make_settings
from tests.fakes.pi_app import AppToken, PiAuthenticatorApp, PushRequest
from tests.fakes.pi_crypto import dart_utc_iso


@pytest.fixture
def push_settings() -> dict[str, Any]:
    return {"push_server_key_bits": 2048}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, push_settings: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, database_url, **push_settings)


@pytest.fixture
def app(api: TestClient) -> PiAuthenticatorApp:
    return PiAuthenticatorApp(api)


@dataclass
class PushWorld:
    api: TestClient
    app: PiAuthenticatorApp
    ctx: Context
    clock: FrozenClock
    enroll_headers: dict[str, str]
    challenge_headers: dict[str, str]

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()

    def start(self, user: str = "alice") -> dict[str, Any]:
        r = self.api.post(f"/v1/users/{user}/tokens", json={"type": "push", "description": "phone"},
                          headers=self.enroll_headers)
        assert r.status_code == 201, r.text
        return r.json()

    def enroll(self, user: str = "alice", key_size: int = 2048, fbtoken: str | None = "fcm-1") -> AppToken:
        body = self.start(user)
        token = self.app.scan(body["details"]["enrollment_url"], now=self.now)
        self.app.register(token, fbtoken=fbtoken, key_size=key_size, now=self.now)
        return token

    def protect(self, user: str = "alice", area: str = "sso") -> None:
        with self.ctx.sessions.begin() as s:
            s.merge(AreaProtection(user_id=user, area=area, protected=True, updated_at=self.clock.now()))

    def login(self, user: str = "alice") -> dict[str, Any]:
        """Open a challenge and select the user's push token; returns the select answer."""
        r = self.api.post("/v1/challenges", json={"user_id": user, "area": "sso"},
                          headers=self.challenge_headers)
        assert r.status_code == 200, r.text
        body = r.json()
        push = next(f for f in body["factors"] if f["type"] == "push")
        return self.select(body["challenge_id"], push["token_id"])

    def select(self, challenge_id: str, token_id: str) -> dict[str, Any]:
        r = self.api.post(f"/v1/challenges/{challenge_id}/select", json={"token_id": token_id},
                          headers=self.challenge_headers)
        assert r.status_code == 200, r.text
        return r.json()

    def outcome(self, challenge_id: str) -> dict[str, Any]:
        r = self.api.get(f"/v1/challenges/{challenge_id}", headers=self.challenge_headers)
        assert r.status_code == 200, r.text
        return r.json()

    def ts(self, offset: float = 0) -> str:
        from datetime import timedelta

        return dart_utc_iso(self.clock.now() + timedelta(seconds=offset))

    def requests(self, token: AppToken) -> list[PushRequest]:
        return [self.app.verify_challenge(token, e, now=self.now) for e in self.app.poll(token, self.ts())]


@pytest.fixture
def world(api: TestClient, app: PiAuthenticatorApp, ctx: Context, clock: FrozenClock,
          enroll_headers: dict[str, str], challenge_headers: dict[str, str]) -> PushWorld:
    return PushWorld(api, app, ctx, clock, enroll_headers, challenge_headers)


@pytest.fixture
def enrolled(world: PushWorld) -> Callable[..., AppToken]:
    def make(user: str = "alice", **kw: Any) -> AppToken:
        token = world.enroll(user, **kw)
        world.protect(user)
        return token

    return make


_server_keys: dict[int, list[Any]] = {}


@pytest.fixture(autouse=True)
def pooled_server_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Server key generation dominates these tests: reuse up to 4 keys per size (a pool
    separate from the app's keys, so an app key never equals a server key)."""
    from services.core.factors.push import crypto

    real = crypto.generate_server_key
    counter = {"n": 0}

    def pooled(bits: int) -> Any:
        keys = _server_keys.setdefault(bits, [])
        counter["n"] += 1
        if len(keys) < 4:
            keys.append(real(bits))
            return keys[-1]
        return keys[counter["n"] % 4]

    monkeypatch.setattr(crypto, "generate_server_key", pooled)
