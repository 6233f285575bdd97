"""A login challenge is bound to its user and area, expires, is used once, allows few attempts."""

from __future__ import annotations

from sqlalchemy import update

from services.core.models import Token
from tests.integration.areas.helpers import code, enroll_active, events, wrong


def open_challenge(api, headers, user="alice", area="sso", token_id=None):
    r = api.post("/v1/challenges", json={"user_id": user, "area": area}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    if token_id is not None:
        r = api.post(f"/v1/challenges/{body['challenge_id']}/select", json={"token_id": token_id}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
    return body


def test_a_challenge_lists_factors_and_emits_an_event_per_step(api, enroll_headers, challenge_headers, clock, publisher):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    clock.advance(30)
    c = open_challenge(api, challenge_headers)
    assert c["status"] == "pending" and c["user_id"] == "alice" and c["area"] == "sso"
    assert c["factors"] == [{"token_id": token_id, "type": "totp", "description": "Pixel 8"}]
    assert c["attempts_left"] == 3
    cid = c["challenge_id"]
    api.post(f"/v1/challenges/{cid}/select", json={"token_id": token_id}, headers=challenge_headers)
    assert api.post(f"/v1/challenges/{cid}/verify", json={"code": wrong(secret, clock)}, headers=challenge_headers).status_code == 422
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.json()["status"] == "verified"
    steps = [t for t in publisher.types() if t.startswith("challenge.")]
    assert steps == ["challenge.created", "challenge.factor_selected", "challenge.failed", "challenge.verified"]
    assert all(e["user_id"] == "alice" for e in publisher.published if e["type"].startswith("challenge."))


def test_user_a_challenge_cannot_be_passed_with_user_b_code_or_token(api, enroll_headers, challenge_headers, clock):
    alice_token, _, _ = enroll_active(api, enroll_headers, clock, user="alice")
    bob_token, bob_secret, _ = enroll_active(api, enroll_headers, clock, user="bob")
    clock.advance(30)
    c = open_challenge(api, challenge_headers, user="alice")
    cid = c["challenge_id"]
    r = api.post(f"/v1/challenges/{cid}/select", json={"token_id": bob_token}, headers=challenge_headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "factor_not_found"
    api.post(f"/v1/challenges/{cid}/select", json={"token_id": alice_token}, headers=challenge_headers)
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": code(bob_secret, clock)}, headers=challenge_headers)
    assert r.status_code == 422
    state = api.get(f"/v1/challenges/{cid}", headers=challenge_headers).json()
    assert state["status"] == "pending" and state["attempts_left"] == 2
    # bob's code is still good for bob: it was never consumed by alice's challenge
    b = open_challenge(api, challenge_headers, user="bob", token_id=bob_token)
    r = api.post(f"/v1/challenges/{b['challenge_id']}/verify", json={"code": code(bob_secret, clock)}, headers=challenge_headers)
    assert r.json()["status"] == "verified" and r.json()["user_id"] == "bob"


def test_area_x_outcome_names_x_and_does_not_satisfy_area_y(api, enroll_headers, challenge_headers, clock):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    clock.advance(30)
    r = api.put("/v1/users/alice/areas/portal-security", json={"protected": True, "code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    clock.advance(30)
    x = open_challenge(api, challenge_headers, area="sso", token_id=token_id)
    r = api.post(f"/v1/challenges/{x['challenge_id']}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.json()["status"] == "verified"
    outcome = api.get(f"/v1/challenges/{x['challenge_id']}", headers=challenge_headers).json()
    assert (outcome["status"], outcome["area"], outcome["user_id"]) == ("verified", "sso", "alice")
    # used once: it cannot be answered again
    clock.advance(30)
    r = api.post(f"/v1/challenges/{x['challenge_id']}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "challenge_closed"
    # area Y still needs its own challenge, its own fresh code
    y = open_challenge(api, challenge_headers, area="portal-security")
    assert y["status"] == "pending" and y["area"] == "portal-security"
    assert y["challenge_id"] != x["challenge_id"]


def test_an_expired_challenge_refuses_a_valid_code(api, enroll_headers, challenge_headers, clock, publisher):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    c = open_challenge(api, challenge_headers, token_id=token_id)
    clock.advance(301)  # challenge_ttl_seconds defaults to 300
    r = api.post(f"/v1/challenges/{c['challenge_id']}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "challenge_expired"
    assert api.get(f"/v1/challenges/{c['challenge_id']}", headers=challenge_headers).json()["status"] == "expired"
    assert events(publisher, "challenge.verified") == []


def test_an_exhausted_challenge_refuses_a_valid_code(api, enroll_headers, challenge_headers, clock, publisher):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    clock.advance(30)
    c = open_challenge(api, challenge_headers, token_id=token_id)
    cid = c["challenge_id"]
    for _ in range(3):  # challenge_max_attempts defaults to 3
        assert api.post(f"/v1/challenges/{cid}/verify", json={"code": wrong(secret, clock)}, headers=challenge_headers).status_code == 422
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.status_code == 409
    outcome = api.get(f"/v1/challenges/{cid}", headers=challenge_headers).json()
    assert (outcome["status"], outcome["reason"], outcome["attempts_left"]) == ("failed", "exhausted", 0)
    assert [e["data"]["reason"] for e in events(publisher, "challenge.failed")] == ["invalid_code", "invalid_code", "exhausted"]
    # the valid code was not consumed: a new challenge accepts it
    n = open_challenge(api, challenge_headers, token_id=token_id)
    r = api.post(f"/v1/challenges/{n['challenge_id']}/verify", json={"code": code(secret, clock)}, headers=challenge_headers)
    assert r.json()["status"] == "verified"


def test_unknown_user_gets_the_same_answer_as_a_user_with_nothing_protected(api, enroll_headers, challenge_headers, clock):
    enroll_active(api, enroll_headers, clock, user="carol")
    clock.advance(30)
    unknown = api.post("/v1/challenges", json={"user_id": "nobody", "area": "portal-security"}, headers=challenge_headers)
    known = api.post("/v1/challenges", json={"user_id": "carol", "area": "portal-security"}, headers=challenge_headers)
    assert unknown.status_code == known.status_code == 200
    assert unknown.json() == known.json() == {**unknown.json(), "status": "not_required", "challenge_id": None}


def test_unknown_area_is_refused(api, challenge_headers):
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "billing"}, headers=challenge_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_area"


def test_locking_every_token_does_not_switch_2fa_off(api, ctx, enroll_headers, challenge_headers, clock):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    with ctx.sessions.begin() as session:
        session.execute(update(Token).where(Token.user_id == "alice").values(state="locked"))
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "factors_locked"
    # nor can the settings be changed or the token deleted without a code
    r = api.put("/v1/users/alice/areas/sso", json={"protected": False}, headers=enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "factors_locked"
    r = api.request("DELETE", f"/v1/users/alice/tokens/{token_id}", json={}, headers=enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "factors_locked"


def test_a_wrong_code_answer_says_how_many_attempts_are_left(api, enroll_headers, challenge_headers, clock):
    """docs/login-flow.md: ``verify`` → 422 with ``attempts_left``."""
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    clock.advance(30)
    cid = open_challenge(api, challenge_headers, token_id=token_id)["challenge_id"]
    lefts = []
    for _ in range(3):
        r = api.post(f"/v1/challenges/{cid}/verify", json={"code": wrong(secret, clock)}, headers=challenge_headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_code"
        lefts.append(r.json()["error"]["attempts_left"])
    assert lefts == [2, 1, 0]
