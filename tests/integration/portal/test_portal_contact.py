"""The portal shows where security notifications go and changes it with a step-up code."""

from __future__ import annotations

from tests.integration.portal.conftest import PortalWorld
from tests.integration.portal.test_portal_flows import enroll_totp
from tests.portal_support import next_code


def contact(world: PortalWorld) -> str | None:
    return world.api.get("/v1/users/alice/contact").json()["email"]


def test_the_address_is_shown_and_changed_with_a_code_once_there_is_a_token(world: PortalWorld):
    world.login()
    assert "No e-mail address is set" in world.browser.get("/portal/security").text
    r = world.post("/portal/security/contact", {"email": "alice@example.org"})
    assert r.status_code == 303 and contact(world) == "alice@example.org"
    assert "alice@example.org" in world.browser.get("/portal/security").text

    secret, token_id, _ = enroll_totp(world)
    r = world.post("/portal/security/contact", {"email": "alice@work.example",
                                                "code": next_code(secret, world.clock)})
    assert r.status_code == 303 and contact(world) == "alice@work.example"
    r = world.post("/portal/security/contact", {"email": "alice@work.example", "code": "000000"})
    assert r.status_code == 422 and "not accepted" in r.text and 'value="alice@work.example"' in r.text


def test_without_a_code_the_change_is_confirmed_on_the_step_up_page(world: PortalWorld):
    world.login()
    secret, token_id, _ = enroll_totp(world)
    r = world.post("/portal/security/contact", {"email": "alice@home.example"},
                   form_page="/portal/security/contact")
    assert r.headers["location"] == "/portal/security/step-up"
    assert contact(world) is None  # nothing changes before the step-up passed
    page = world.browser.get("/portal/security/step-up").text
    assert "Send security notifications to alice@home.example." in page
    world.post("/portal/security/step-up/select", {"token_id": token_id}, form_page="/portal/security/step-up")
    r = world.post("/portal/security/step-up/verify", {"code": next_code(secret, world.clock)},
                   form_page="/portal/security/step-up")
    assert r.status_code == 303 and contact(world) == "alice@home.example"
    assert "Security notifications go to alice@home.example." in world.browser.get("/portal/security").text


def test_a_malformed_address_is_refused_before_any_step_up(world: PortalWorld):
    world.login()
    enroll_totp(world)
    r = world.post("/portal/security/contact", {"email": "alice at example"}, form_page="/portal/security/contact")
    assert r.status_code == 422 and "Enter a valid e-mail address" in r.text


def test_a_malformed_address_is_refused_and_kept_in_the_form(world: PortalWorld):
    world.login()
    r = world.post("/portal/security/contact", {"email": "alice(at)example"})
    assert r.status_code == 422 and "Enter a valid e-mail address" in r.text
    assert 'value="alice(at)example"' in r.text
    assert contact(world) is None


def test_the_contact_page_needs_a_signed_in_user(world: PortalWorld):
    r = world.browser.get("/portal/security/contact")
    assert r.status_code == 303 and "/portal/login" in r.headers["location"]
