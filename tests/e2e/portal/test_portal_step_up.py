"""Step-ups in the browser: a user whose only token is SMS, or PUSH, changes a protected
area (the PUSH user also the contact address) and deletes the token, confirming each on the step-up page (the SMS code the API
sent; the number picked in the emulated privacyIDEA app). The step-up page is shot at a
phone's and a desktop's size under artifacts/portal/."""

from __future__ import annotations

from tests.integration.helpers import sent_sms_code

import re
import uuid
from typing import Any

import httpx
import pytest

from services.core.models import Token
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from shared.types import mask_phone
from tests.e2e.portal.test_portal_browser import _key, sign_in

pytestmark = pytest.mark.e2e
PHONE = "+4915112345678"
DESKTOP = {"width": 1280, "height": 800}


def areas_of(api: Any, portal: Any) -> dict[str, bool]:
    body = httpx.get(f"{api.url}/v1/users/alice/areas", headers=_key(portal)).json()
    return {a["area"]: a["protected"] for a in body["areas"]}


def tokens_of(api: Any, portal: Any) -> list[dict[str, Any]]:
    return httpx.get(f"{api.url}/v1/users/alice/tokens", headers=_key(portal)).json()["tokens"]  # type: ignore[no-any-return]


def protect_portal_security(page: Any) -> None:
    """Tick the area and save without a code: the portal asks for a step-up."""
    page.get_by_label("Security settings").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/portal/security/step-up$"))
    page.get_by_text("Ask for a second factor at “Security settings”.").wait_for()


def both_sizes(page: Any, shot: Any, name: str) -> None:
    shot(f"{name}-phone")
    phone = page.viewport_size
    page.set_viewport_size(DESKTOP)
    shot(f"{name}-desktop")
    page.set_viewport_size(phone)


def test_an_sms_only_user_changes_an_area_and_deletes_the_token(
        page, servers, shot, ctx: Context, clock: FrozenClock, publisher: RecordingPublisher):
    api, portal = servers
    base = f"{portal.url}/portal"
    with ctx.sessions.begin() as s:
        s.add(Token(id=uuid.uuid4(), user_id="alice", type="sms", description="Work phone", state="active",
                    drift=0, failures=0, created_at=clock.now(), phone_enc=ctx.keyring.encrypt(PHONE),
                    phone_masked=mask_phone(PHONE)))
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")

    def answer_by_sms(shot_name: str | None = None) -> None:
        page.get_by_label(re.compile(r"^SMS · Work phone")).check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_text("We sent a code by SMS").wait_for()
        sent = [e for e in publisher.published if e["type"] == "sms.requested"][-1]
        page.get_by_label("Code from the SMS").fill(sent_sms_code(ctx, sent))
        if shot_name:
            both_sizes(page, shot, shot_name)
        page.get_by_role("button", name="Submit").click()

    protect_portal_security(page)
    both_sizes(page, shot, "30-step-up-choose")
    answer_by_sms("31-step-up-sms-code")
    page.get_by_text("Your protected areas are saved.").wait_for()
    assert areas_of(api, portal)["portal-security"] is True

    clock.advance(120)  # past the SMS resend interval
    page.get_by_role("link", name="Delete SMS token Work phone").click()
    page.get_by_role("button", name="Delete").click()  # no code: confirm on the next page
    page.wait_for_url(re.compile(r"/portal/security/step-up$"))
    page.get_by_text("Delete the SMS token “Work phone”.").wait_for()
    answer_by_sms()
    page.get_by_text("is deleted").wait_for()
    assert tokens_of(api, portal) == []
    assert page.csp_errors == []


def test_a_push_only_user_changes_an_area_and_deletes_the_token_by_approving(
        page, servers, shot, clock: FrozenClock):
    from tests.fakes.pi_app import PiAuthenticatorApp
    from tests.fakes.pi_crypto import dart_utc_iso

    api, portal = servers
    base = f"{portal.url}/portal"
    sign_in(page, base)  # before the first token: no second factor asked yet
    page.wait_for_url(f"{base}/security")
    with httpx.Client(timeout=10) as http:
        app = PiAuthenticatorApp(http)
        r = http.post(f"{api.url}/v1/users/alice/tokens", json={"type": "push", "description": "iPhone 15"},
                      headers=_key(portal))
        token = app.scan(r.json()["details"]["enrollment_url"], now=clock.now().timestamp())
        app.register(token, fbtoken="fcm-e2e", key_size=2048, now=clock.now().timestamp())
        page.goto(f"{base}/security")

        def approve_in_the_app(shot_name: str | None = None) -> None:
            page.get_by_label(re.compile(r"^PUSH · iPhone 15")).check()
            page.get_by_role("button", name="Continue").click()
            number = page.locator("#presence-number").inner_text().strip()
            if shot_name:
                both_sizes(page, shot, shot_name)
            (request,) = app.poll_requests(token, dart_utc_iso(clock.now()))
            assert request.question == "Do you want to confirm this change to your security settings?"
            app.accept(request, number, now=clock.now().timestamp())  # the user taps the number

        protect_portal_security(page)
        approve_in_the_app("32-step-up-push")
        page.get_by_text("Your protected areas are saved.").wait_for()  # continued by itself
        assert areas_of(api, portal)["portal-security"] is True

        # the contact address: no code to type, so the change is confirmed in the app
        page.goto(f"{base}/security/contact")
        page.get_by_label(re.compile(r"^E-mail address")).fill("alice@example.org")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/portal/security/step-up$"))
        page.get_by_text("Send security notifications to alice@example.org.").wait_for()
        approve_in_the_app()
        page.get_by_text("Security notifications go to alice@example.org.").wait_for()
        contact = httpx.get(f"{api.url}/v1/users/alice/contact", headers=_key(portal)).json()
        assert contact["email"] == "alice@example.org"

        page.get_by_role("link", name="Delete PUSH token iPhone 15").click()
        page.get_by_role("button", name="Delete").click()
        page.get_by_text("Delete the PUSH token “iPhone 15”.").wait_for()
        approve_in_the_app()
        page.get_by_text("is deleted").wait_for()
    assert tokens_of(api, portal) == []
    assert page.csp_errors == []
