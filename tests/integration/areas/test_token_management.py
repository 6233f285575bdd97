"""Token overview and deletion with a step-up code (guide #1: "only after entering a valid token")."""

from __future__ import annotations

import uuid

from tests.integration.areas.helpers import code, enroll_active, events, wrong


def test_deleting_a_token_needs_a_fresh_valid_code(api, enroll_headers, clock, publisher):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    url = f"/v1/users/alice/tokens/{token_id}"

    r = api.request("DELETE", url, json={}, headers=enroll_headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "step_up_required"

    r = api.request("DELETE", url, json={"code": wrong(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_code"

    r = api.request("DELETE", url, json={"code": code(secret, clock)}, headers=enroll_headers)  # replay
    assert r.status_code == 422

    listed = api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]
    assert [t["id"] for t in listed] == [token_id]
    assert events(publisher, "token.deleted") == []

    clock.advance(30)
    r = api.request("DELETE", url, json={"code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"] == []
    assert [e["data"]["reason"] for e in events(publisher, "token.deleted")] == ["user"]


def test_a_code_from_another_active_token_can_delete(api, enroll_headers, clock):
    first, first_secret, _ = enroll_active(api, enroll_headers, clock, description="Pixel 8")
    clock.advance(30)
    second, _, _ = enroll_active(api, enroll_headers, clock, description="iPad")
    clock.advance(30)
    r = api.request(
        "DELETE",
        f"/v1/users/alice/tokens/{second}",
        json={"code": code(first_secret, clock), "verify_token_id": first},
        headers=enroll_headers,
    )
    assert r.status_code == 200, r.text
    assert [t["id"] for t in api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]] == [first]


def test_an_abandoned_enrollment_is_dropped_without_code_when_nothing_is_active(api, enroll_headers):
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "old"}, headers=enroll_headers)
    token_id = r.json()["token"]["id"]
    r = api.request("DELETE", f"/v1/users/alice/tokens/{token_id}", json={}, headers=enroll_headers)
    assert r.status_code == 200, r.text


def test_overview_shows_type_description_state_created_and_last_login(
    api, enroll_headers, challenge_headers, clock
):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    created = clock.now()
    [row] = api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]
    assert {k: row[k] for k in ("type", "description", "state")} == {
        "type": "totp", "description": "Pixel 8", "state": "active",
    }
    assert row["created_at"] is not None

    clock.advance(600)
    c = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    api.post(f"/v1/challenges/{c['challenge_id']}/select", json={"token_id": token_id}, headers=challenge_headers)
    r = api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.json()["status"] == "verified"
    [row] = api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]
    assert row["last_used_at"].replace("Z", "+00:00") == clock.now().isoformat()
    assert row["created_at"].replace("Z", "+00:00") < created.isoformat()


def _sms_token(api, headers, publisher, ctx) -> str:
    """An active SMS token; its code is read from the message's pending-code row."""
    r = api.post("/v1/users/alice/tokens", json={"type": "sms", "description": "mobile",
                                                 "phone": "+49 151 12345678"}, headers=headers)
    assert r.status_code == 201, r.text
    token_id = r.json()["token"]["id"]
    from services.core.models import SmsPendingCode

    message_id = uuid.UUID(events(publisher, "sms.requested")[-1]["data"]["message_id"])
    with ctx.sessions() as session:
        sealed = session.get(SmsPendingCode, message_id).code_enc
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate",
                 json={"code": ctx.keyring.decrypt(sealed)}, headers=headers)
    assert r.json()["token"]["state"] == "active", r.text
    return token_id


def test_a_code_from_any_active_token_deletes_without_naming_it(api, enroll_headers, clock, publisher, ctx):
    """The README's words: "a valid code from one of the user's active tokens"."""
    totp_id, secret, _ = enroll_active(api, enroll_headers, clock, description="Pixel 8")
    sms_id = _sms_token(api, enroll_headers, publisher, ctx)
    clock.advance(30)
    r = api.request("DELETE", f"/v1/users/alice/tokens/{sms_id}", json={"code": code(secret, clock)},
                    headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == sms_id and r.json()["state"] == "deleted"
    assert [t["id"] for t in api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]] == [totp_id]


def test_a_wrong_code_for_any_token_is_refused_and_counted_once(api, enroll_headers, clock, publisher):
    first, first_secret, _ = enroll_active(api, enroll_headers, clock, description="Pixel 8")
    clock.advance(30)
    second, _, _ = enroll_active(api, enroll_headers, clock, description="iPad")
    clock.advance(30)
    r = api.request("DELETE", f"/v1/users/alice/tokens/{second}", json={"code": wrong(first_secret, clock)},
                    headers=enroll_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_code"
    failed = events(publisher, "token.verification_failed")
    assert [(e["data"]["token_id"], e["data"]["purpose"]) for e in failed] == [(second, "delete")]
    assert len(api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]) == 2


def test_an_enrollment_in_progress_is_cancelled_without_a_code(api, enroll_headers, clock, publisher):
    active, _, _ = enroll_active(api, enroll_headers, clock)
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "new phone"}, headers=enroll_headers)
    pending = r.json()["token"]["id"]
    r = api.request("DELETE", f"/v1/users/alice/tokens/{pending}", json={}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "deleted"
    assert [t["id"] for t in api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]] == [active]
    # an active token still needs the code
    r = api.request("DELETE", f"/v1/users/alice/tokens/{active}", json={}, headers=enroll_headers)
    assert r.status_code == 403
