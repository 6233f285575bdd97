"""Protected areas through the API: catalogue, per-user choice, step-up, sso by default."""

from __future__ import annotations

from tests.integration.areas.helpers import code, enroll_active, events, wrong


def test_catalogue_is_readable_with_enroll_or_challenge_scope(api, make_key):
    for scopes in (("enroll",), ("challenge",)):
        r = api.get("/v1/areas", headers={"Authorization": f"Bearer {make_key(*scopes)}"})
        assert r.status_code == 200, r.text
        assert r.json() == {"areas": ["sso", "portal-security"], "display_names": {
            "sso": "Single sign-on", "portal-security": "Security settings"}}
    r = api.get("/v1/areas", headers={"Authorization": f"Bearer {make_key('audit:read')}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert api.get("/v1/areas").status_code == 401


def test_user_areas_list_every_catalogue_area_unprotected_at_first(api, enroll_headers):
    r = api.get("/v1/users/alice/areas", headers=enroll_headers)
    assert r.status_code == 200
    assert [(a["area"], a["display_name"], a["protected"]) for a in r.json()["areas"]] == [
        ("sso", "Single sign-on", False),
        ("portal-security", "Security settings", False),
    ]
    r = api.get("/v1/users/alice/areas/sso", headers=enroll_headers)
    assert r.json()["protected"] is False and r.json()["display_name"] == "Single sign-on"


def test_unknown_area_is_404_and_changes_nothing(api, enroll_headers, publisher):
    r = api.put("/v1/users/alice/areas/billing", json={"protected": True}, headers=enroll_headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_area"
    assert api.get("/v1/users/alice/areas/billing", headers=enroll_headers).status_code == 404
    assert events(publisher, "area.protection_changed") == []


def test_without_tokens_a_change_needs_no_code_and_emits_once(api, enroll_headers, publisher):
    r = api.put("/v1/users/alice/areas/portal-security", json={"protected": True}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["protected"] is True and r.json()["changed"] is True
    r = api.put("/v1/users/alice/areas/portal-security", json={"protected": True}, headers=enroll_headers)
    assert r.json()["changed"] is False
    changed = events(publisher, "area.protection_changed")
    assert [e["data"] for e in changed] == [{"area": "portal-security", "protected": True, "by_default": False}]
    assert changed[0]["user_id"] == "alice"


def test_first_active_token_protects_sso_by_default(api, enroll_headers, clock, publisher):
    _, _, confirmed = enroll_active(api, enroll_headers, clock)
    assert confirmed["details"]["first_token"] is True
    assert confirmed["details"]["areas_protected_by_default"] == ["sso"]
    flags = {a["area"]: a["protected"] for a in api.get("/v1/users/alice/areas", headers=enroll_headers).json()["areas"]}
    assert flags == {"sso": True, "portal-security": False}
    assert [e["data"] for e in events(publisher, "area.protection_changed")] == [
        {"area": "sso", "protected": True, "by_default": True}
    ]
    # a second token is not a first token: no second default event
    enroll_active(api, enroll_headers, clock, description="iPad")
    assert len(events(publisher, "area.protection_changed")) == 1


def test_an_explicit_choice_before_the_first_token_is_respected(api, enroll_headers, clock, publisher):
    api.put("/v1/users/alice/areas/sso", json={"protected": False}, headers=enroll_headers)
    _, _, confirmed = enroll_active(api, enroll_headers, clock)
    assert "areas_protected_by_default" not in confirmed["details"]
    assert api.get("/v1/users/alice/areas/sso", headers=enroll_headers).json()["protected"] is False


def test_changing_an_area_needs_a_fresh_valid_code_once_a_token_is_active(api, enroll_headers, clock, publisher):
    token_id, secret, _ = enroll_active(api, enroll_headers, clock)
    url = "/v1/users/alice/areas/sso"
    before = len(events(publisher, "area.protection_changed"))

    r = api.put(url, json={"protected": False}, headers=enroll_headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "step_up_required"

    r = api.put(url, json={"protected": False, "code": wrong(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_code"

    # the code that confirmed the token was used already: replay is refused
    r = api.put(url, json={"protected": False, "code": code(secret, clock)}, headers=enroll_headers)
    assert r.status_code == 422

    assert api.get(url, headers=enroll_headers).json()["protected"] is True
    assert len(events(publisher, "area.protection_changed")) == before
    failed = events(publisher, "token.verification_failed")
    assert {e["data"]["purpose"] for e in failed} == {"step_up"}

    clock.advance(30)
    fresh = code(secret, clock)
    r = api.put(url, json={"protected": False, "code": fresh, "verify_token_id": token_id}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json()["protected"] is False and r.json()["changed"] is True
    assert events(publisher, "area.protection_changed")[-1]["data"] == {
        "area": "sso", "protected": False, "by_default": False,
    }
    # the fresh code is now spent too
    r = api.put(url, json={"protected": True, "code": fresh}, headers=enroll_headers)
    assert r.status_code == 422


def test_step_up_with_another_users_token_is_not_found(api, enroll_headers, clock):
    bob_token, bob_secret, _ = enroll_active(api, enroll_headers, clock, user="bob")
    enroll_active(api, enroll_headers, clock, user="alice")
    clock.advance(30)
    r = api.put(
        "/v1/users/alice/areas/sso",
        json={"protected": False, "code": code(bob_secret, clock), "verify_token_id": bob_token},
        headers=enroll_headers,
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "token_not_found"
