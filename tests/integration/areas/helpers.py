"""Shared steps for the issue-5 API tests: enroll a TOTP token, compute its codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.factors.totp import otp

P = otp.TotpParams()


def code(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now().timestamp(), 30) + offset_steps, P)


def wrong(secret: str, clock: FrozenClock) -> str:
    """A well-formed code that is not valid in the ±1 window right now."""
    return code(secret, clock, 5)


def enroll_active(
    api: TestClient, headers: dict[str, str], clock: FrozenClock, user: str = "alice", description: str = "Pixel 8"
) -> tuple[str, str, dict[str, Any]]:
    """start → scanned → activate → (30 s later) confirm; returns (id, secret, confirm body).

    The clock is left on the confirmation's time step, so the next fresh code needs
    ``clock.advance(30)`` first.
    """
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": description}, headers=headers)
    assert r.status_code == 201, r.text
    token_id = r.json()["token"]["id"]
    secret = parse_qs(urlsplit(r.json()["details"]["provisioning_uri"]).query)["secret"][0]
    base = f"/v1/users/{user}/tokens/{token_id}"
    assert api.post(f"{base}/scanned", headers=headers).status_code == 200
    r = api.post(f"{base}/activate", json={"code": code(secret, clock)}, headers=headers)
    assert r.status_code == 200, r.text
    clock.advance(30)
    r = api.post(f"{base}/confirm", json={"code": code(secret, clock)}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["token"]["state"] == "active"
    return token_id, secret, r.json()


def events(publisher: Any, type_: str) -> list[dict[str, Any]]:
    return [e for e in publisher.published if e["type"] == type_]
