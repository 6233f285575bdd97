"""Small helpers for driving the API in tests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.factors.totp import otp


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def totp_code(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    step = otp.time_step(clock.now().timestamp(), 30) + offset_steps
    return otp.code_at_step(secret, step, otp.TotpParams())


def active_totp(api: TestClient, headers: dict[str, str], clock: FrozenClock, user: str = "alice") -> tuple[str, str]:
    """Enroll and activate a TOTP token; returns (token_id, secret). Advances the clock 60 s."""
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": "phone"}, headers=headers)
    assert r.status_code == 201, r.text
    token_id = r.json()["token"]["id"]
    secret = secret_of(r.json()["details"]["provisioning_uri"])
    base = f"/v1/users/{user}/tokens/{token_id}"
    assert api.post(f"{base}/scanned", headers=headers).status_code == 200
    assert api.post(f"{base}/activate", json={"code": totp_code(secret, clock)}, headers=headers).status_code == 200
    clock.advance(30)
    r = api.post(f"{base}/confirm", json={"code": totp_code(secret, clock)}, headers=headers)
    assert r.status_code == 200, r.text
    clock.advance(30)
    return token_id, secret
