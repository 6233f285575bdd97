"""TOTP enrollment through the HTTP API: start → scanned → activate → confirm → active."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.factors.totp import otp

P = otp.TotpParams()


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def code(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now().timestamp(), 30) + offset_steps, P)


def enroll(api: TestClient, headers: dict[str, str], user: str = "alice") -> tuple[str, str]:
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": "Pixel 8"}, headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["token"]["id"], secret_of(body["details"]["provisioning_uri"])


def test_full_enrollment_makes_the_token_active(api, enroll_headers, clock, publisher: RecordingPublisher):
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "Pixel 8"}, headers=enroll_headers)
    assert r.status_code == 201
    body = r.json()
    assert body["token"]["state"] == "pending"
    uri = body["details"]["provisioning_uri"]
    assert uri.startswith("otpauth://totp/twofa:alice?secret=")
    assert "issuer=twofa" in uri
    assert body["details"]["qr_svg"].startswith("data:image/svg+xml")
    assert body["details"]["qr_png"].startswith("data:image/png;base64,")
    secret = secret_of(uri)
    assert body["details"]["secret"].replace(" ", "") == secret
    token_id = body["token"]["id"]
    base = f"/v1/users/alice/tokens/{token_id}"

    assert api.post(f"{base}/scanned", headers=enroll_headers).json()["token"]["state"] == "scanned"
    r = api.post(f"{base}/activate", json={"code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["token"]["state"] == "unconfirmed"
    # the same code again cannot confirm: confirmation needs a later time step
    r = api.post(f"{base}/confirm", json={"code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 422
    clock.advance(30)
    r = api.post(f"{base}/confirm", json={"code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["token"]["state"] == "active"

    listed = api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]
    assert [(t["id"], t["state"], t["type"]) for t in listed] == [(token_id, "active", "totp")]
    assert {"enrollment.started", "enrollment.scanned", "enrollment.activated", "enrollment.confirmed"} <= set(publisher.types())


def test_activation_before_scanning_is_a_conflict(api, enroll_headers, clock):
    token_id, secret = enroll(api, enroll_headers)
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"


def test_another_users_token_is_not_found(api, enroll_headers):
    token_id, _ = enroll(api, enroll_headers, "alice")
    r = api.post(f"/v1/users/bob/tokens/{token_id}/scanned", headers=enroll_headers)
    assert r.status_code == 404


def test_missing_and_wrong_scope_keys(api, make_key):
    r = api.get("/v1/users/alice/tokens")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = api.get("/v1/users/alice/tokens", headers={"Authorization": f"Bearer {make_key('challenge')}"})
    assert r.status_code == 403
    r = api.get("/v1/users/alice/tokens", headers={"Authorization": "Bearer tfa_nope_nope"})
    assert r.status_code == 401
