"""One answer for the areas a sign-in needs at once: the challenges opened together are
covered by the answer to one of them, each area with its own event; nothing else is."""

from __future__ import annotations

from tests.integration.areas.helpers import code, enroll_active, events
from tests.integration.areas.test_challenge_binding import open_challenge


def protect_security(api, enroll_headers, clock, secret, user="alice"):
    clock.advance(30)
    r = api.put(
        f"/v1/users/{user}/areas/portal-security",
        json={"protected": True, "code": code(secret, clock)},
        headers=enroll_headers,
    )
    assert r.status_code == 200, r.text
    clock.advance(30)


def cover(api, headers, challenge_id, answered_id):
    return api.post(
        f"/v1/challenges/{challenge_id}/cover",
        json={"answered_challenge_id": answered_id},
        headers=headers,
    )


def test_one_code_passes_both_areas_opened_together(
    api, enroll_headers, challenge_headers, clock, publisher
):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    protect_security(api, enroll_headers, clock, secret)
    sso = open_challenge(api, challenge_headers, area="sso")
    security = open_challenge(api, challenge_headers, area="portal-security")
    r = api.post(
        f"/v1/challenges/{sso['challenge_id']}/verify",
        json={"code": code(secret, clock), "token_id": token_id},
        headers=challenge_headers,
    )
    assert r.json()["status"] == "verified"
    # typing the same code into the second challenge is a replay, as before …
    r = api.post(
        f"/v1/challenges/{security['challenge_id']}/verify",
        json={"code": code(secret, clock), "token_id": token_id},
        headers=challenge_headers,
    )
    assert r.status_code == 422
    # … the answer covers it instead
    r = cover(api, challenge_headers, security["challenge_id"], sso["challenge_id"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["area"], out["selected_token_id"]) == (
        "verified",
        "portal-security",
        token_id,
    )
    assert (
        api.get(f"/v1/challenges/{security['challenge_id']}", headers=challenge_headers).json()[
            "status"
        ]
        == "verified"
    )
    (covered,) = events(publisher, "challenge.covered")
    assert covered["user_id"] == "alice"
    assert covered["data"] == {
        "challenge_id": security["challenge_id"],
        "area": "portal-security",
        "token_id": token_id,
        "token_type": "totp",
        "by_challenge_id": sso["challenge_id"],
    }
    verified_areas = [e["data"]["area"] for e in events(publisher, "challenge.verified")]
    assert verified_areas[-1] == "sso"
    # covered once: the challenge is closed now
    r = cover(api, challenge_headers, security["challenge_id"], sso["challenge_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "challenge_closed"


def test_an_answer_does_not_cover_a_challenge_opened_after_it(
    api, enroll_headers, challenge_headers, clock, publisher
):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    protect_security(api, enroll_headers, clock, secret)
    sso = open_challenge(api, challenge_headers, area="sso")
    api.post(
        f"/v1/challenges/{sso['challenge_id']}/verify",
        json={"code": code(secret, clock), "token_id": token_id},
        headers=challenge_headers,
    )
    clock.advance(1)
    later = open_challenge(api, challenge_headers, area="portal-security")
    r = cover(api, challenge_headers, later["challenge_id"], sso["challenge_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_covered"
    assert (
        api.get(f"/v1/challenges/{later['challenge_id']}", headers=challenge_headers).json()[
            "status"
        ]
        == "pending"
    )
    assert events(publisher, "challenge.covered") == []


def test_no_cover_from_another_user_an_unanswered_challenge_or_a_step_up(
    api, enroll_headers, challenge_headers, both_headers, clock, publisher
):
    alice_token, alice_secret, _ = enroll_active(api, enroll_headers, clock, user="alice")
    bob_token, bob_secret, _ = enroll_active(api, enroll_headers, clock, user="bob")
    protect_security(api, enroll_headers, clock, alice_secret)
    alice_security = open_challenge(api, challenge_headers, user="alice", area="portal-security")
    alice_sso = open_challenge(api, challenge_headers, user="alice", area="sso")
    bob_sso = open_challenge(api, challenge_headers, user="bob", area="sso")
    step_up = api.post(
        "/v1/users/alice/step-ups",
        json={"purpose": "set_area", "area": "sso"},
        headers=both_headers,
    ).json()
    # not answered yet
    r = cover(api, challenge_headers, alice_security["challenge_id"], alice_sso["challenge_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_covered"
    # bob's answer is bob's
    api.post(
        f"/v1/challenges/{bob_sso['challenge_id']}/verify",
        json={"code": code(bob_secret, clock), "token_id": bob_token},
        headers=challenge_headers,
    )
    r = cover(api, challenge_headers, alice_security["challenge_id"], bob_sso["challenge_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_covered"
    # a passed step-up is for its one action, not a sign-in
    api.post(
        f"/v1/challenges/{step_up['challenge_id']}/verify",
        json={"code": code(alice_secret, clock), "token_id": alice_token},
        headers=both_headers,
    )
    r = cover(api, challenge_headers, alice_security["challenge_id"], step_up["challenge_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_covered"
    r = cover(
        api,
        challenge_headers,
        alice_security["challenge_id"],
        "00000000-0000-4000-8000-000000000000",
    )
    assert r.status_code == 404
    assert (
        api.get(
            f"/v1/challenges/{alice_security['challenge_id']}", headers=challenge_headers
        ).json()["status"]
        == "pending"
    )
    assert events(publisher, "challenge.covered") == []
