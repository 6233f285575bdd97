"""A PUSH-only user passes step-ups by approving on the app (number matching as for
logins): one approval changes an area, another deletes the token."""

from __future__ import annotations

from typing import Any


def step_up(world, purpose: str | None = None, **target: str) -> dict[str, Any]:
    purpose = purpose or ("delete_token" if "token_id" in target else "set_area")
    r = world.api.post("/v1/users/alice/step-ups", json={"purpose": purpose, **target},
                       headers=world.enroll_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    (factor,) = body["factors"]
    assert factor["type"] == "push"
    return world.select(body["challenge_id"], factor["token_id"])


def approve(world, token, sel: dict[str, Any]) -> None:
    (req,) = world.requests(token)
    assert req.question == world.ctx.settings.push_step_up_question
    assert world.app.accept(req, sel["presence_answer"], now=world.now)["result"]["value"] is True
    assert world.outcome(sel["challenge_id"])["status"] == "approved"


def test_a_push_only_user_changes_an_area_and_deletes_the_token_by_approving(world, enrolled, publisher):
    token = world.enroll()
    (push,) = world.api.get("/v1/users/alice/tokens", headers=world.enroll_headers).json()["tokens"]

    sel = step_up(world, area="portal-security")
    approve(world, token, sel)
    r = world.api.put("/v1/users/alice/areas/portal-security", json={"protected": True, "step_up_id": sel["challenge_id"]},
                      headers=world.enroll_headers)
    assert r.status_code == 200 and r.json()["protected"] is True, r.text

    sel = step_up(world, token_id=push["id"])
    approve(world, token, sel)
    r = world.api.request("DELETE", f"/v1/users/alice/tokens/{push['id']}",
                          json={"step_up_id": sel["challenge_id"]}, headers=world.enroll_headers)
    assert r.status_code == 200 and r.json()["state"] == "deleted", r.text
    created = [e["data"] for e in publisher.published if e["type"] == "challenge.created"]
    assert [(c["purpose"], c["target"]) for c in created] == [("set_area", "portal-security"), ("delete_token", push["id"])]


def test_a_declined_push_step_up_allows_nothing(world, enrolled):
    token = world.enroll()
    sel = step_up(world, area="portal-security")
    (req,) = world.requests(token)
    world.app.decline(req, now=world.now)
    assert world.outcome(sel["challenge_id"])["status"] == "declined"
    r = world.api.put("/v1/users/alice/areas/portal-security", json={"protected": True, "step_up_id": sel["challenge_id"]},
                      headers=world.enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_not_passed"


def test_a_push_only_user_changes_the_contact_address_by_approving(world, enrolled, publisher):
    token = world.enroll()
    r = world.api.put("/v1/users/alice/contact", json={"email": "alice@example.org"}, headers=world.enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_required"

    area_step_up = step_up(world, area="portal-security")
    approve(world, token, area_step_up)
    r = world.api.put("/v1/users/alice/contact", json={"email": "alice@example.org", "step_up_id": area_step_up["challenge_id"]},
                      headers=world.enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_mismatch"

    sel = step_up(world, "set_contact")
    approve(world, token, sel)
    r = world.api.put("/v1/users/alice/contact", json={"email": "alice@example.org", "step_up_id": sel["challenge_id"]},
                      headers=world.enroll_headers)
    assert r.status_code == 200 and r.json()["email"] == "alice@example.org", r.text
    r = world.api.put("/v1/users/alice/contact", json={"email": None, "step_up_id": sel["challenge_id"]},
                      headers=world.enroll_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_used"
    assert world.api.get("/v1/users/alice/contact", headers=world.enroll_headers).json()["email"] == "alice@example.org"
    created = [e["data"] for e in publisher.published if e["type"] == "challenge.created"]
    assert (created[-1]["purpose"], created[-1]["target"]) == ("set_contact", "email")


def test_a_contact_step_up_takes_no_token_or_area(world, enrolled):
    world.enroll()
    for extra in ({"area": "sso"}, {"token_id": "6a1d1a5e-3f39-4f43-8a7e-7c2b5f0f9d11"}):
        r = world.api.post("/v1/users/alice/step-ups", json={"purpose": "set_contact", **extra},
                           headers=world.enroll_headers)
        assert r.status_code == 422, r.text
