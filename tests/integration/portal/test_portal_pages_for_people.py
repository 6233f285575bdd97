"""Errors are the portal's own pages with sentences for people: the message beside its
field, what was typed still there; no raw JSON, no API wording, no "app" for an SMS.
Areas carry their display names; recovery only shows when it exists; a set-up can be
cancelled and an SMS sent again."""

from __future__ import annotations

import html
import re

from tests.integration.portal.conftest import PortalWorld
from tests.integration.portal.test_portal_flows import enroll_totp
from tests.portal_support import RECOVERY_RE


def looks_like_the_portal(text: str) -> bool:
    return (
        text.startswith("<!doctype html>") and "Customer Portal" in text and '"detail"' not in text
    )


def test_an_unknown_page_is_a_404_page_of_the_portal(world: PortalWorld):
    for path in ("/portal/nope", "/portal/security/tokens/x/y/z", "/elsewhere"):
        r = world.browser.get(path)
        assert r.status_code == 404 and looks_like_the_portal(r.text), path
        assert "Page not found" in r.text


def test_a_tampered_form_gets_a_page_not_json(world: PortalWorld):
    world.login()
    r = world.post("/portal/2fa/select", {}, form_page="/portal/security")  # token_id missing
    assert r.status_code in (303, 422)
    r = world.post("/portal/security/step-up/select", {}, form_page="/portal/security")
    assert (
        r.status_code == 422 and looks_like_the_portal(r.text) and "Something is missing" in r.text
    )


def test_enroll_errors_sit_beside_their_field_and_keep_the_input(world: PortalWorld):
    world.login()
    r = world.post(
        "/portal/security/enroll",
        {"type": "sms", "description": "", "phone": "+49 151 1"},
        form_page="/portal/security/enroll",
    )
    assert r.status_code == 422 and looks_like_the_portal(r.text)
    assert re.search(r'id="description-error"[^>]*>Enter a description', r.text)
    assert 'value="+49 151 1"' in r.text and 'value="sms" checked' in r.text
    long = "Ö" * 300
    r = world.post(
        "/portal/security/enroll",
        {"type": "totp", "description": long},
        form_page="/portal/security/enroll",
    )
    assert r.status_code == 422 and looks_like_the_portal(r.text)
    assert "is 300 characters long. Shorten it to 64 characters or fewer." in r.text
    assert f'value="{long}"' in r.text
    r = world.post(
        "/portal/security/enroll",
        {"type": "sms", "description": "Work <phone>", "phone": "12345"},
        form_page="/portal/security/enroll",
    )
    assert r.status_code == 422 and looks_like_the_portal(r.text)
    assert re.search(
        r'id="phone-error"[^>]*>Enter your mobile number with the country code', r.text
    )
    assert "international format" not in r.text and "(+…)" not in html.unescape(r.text)
    assert 'value="Work &lt;phone&gt;"' in r.text and 'value="12345"' in r.text
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []


def test_an_empty_sign_in_keeps_the_page(world: PortalWorld):
    r = world.post(
        "/portal/login", {"username": "alice", "password": ""}, form_page="/portal/login"
    )
    assert r.status_code == 422 and looks_like_the_portal(r.text) and 'value="alice"' in r.text


def test_cancel_on_the_qr_page_deletes_the_pending_enrollment(world: PortalWorld):
    world.login()
    r = world.post(
        "/portal/security/enroll",
        {"type": "totp", "description": "Tablet"},
        form_page="/portal/security/enroll",
    )
    token_id = re.search(r"/security/tokens/([0-9a-f-]{36})/cancel", r.text).group(1)
    assert [t["state"] for t in world.api.get("/v1/users/alice/tokens").json()["tokens"]] == [
        "pending"
    ]
    r = world.post(f"/portal/security/tokens/{token_id}/cancel", form_page="/portal/security")
    assert r.headers["location"] == "/portal/security"
    assert "The set-up of “Tablet” is cancelled." in world.browser.get("/portal/security").text
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []


def test_without_a_token_areas_cannot_be_ticked_and_recovery_is_not_offered(world: PortalWorld):
    world.login()
    page = world.browser.get("/portal/security").text
    assert 'name="area"' not in page and "no second factor is asked when you sign in" in page
    assert "Use your recovery token" not in page
    r = world.post(
        "/portal/security/areas", {"area": ["sso", "portal-security"]}, form_page="/portal/security"
    )
    assert r.status_code == 409 and "Set up a token first" in r.text
    assert not any(a["protected"] for a in world.api.get("/v1/users/alice/areas").json()["areas"])
    r = world.browser.get("/portal/recovery")
    assert "You have no recovery token" in r.text and 'name="recovery_token"' not in r.text


def test_areas_show_their_names_and_after_a_recovery_what_is_really_asked(world: PortalWorld):
    world.login()
    _, _, page = enroll_totp(world)
    assert '<label for="area-sso">Single sign-on</label>' in page
    assert '<label for="area-portal-security">Security settings</label>' in page
    assert 'id="area-sso" name="area" value="sso" checked' in page  # protected by the first token
    assert "Use your recovery token" in page
    text = world.post("/portal/security/recovery-token", form_page="/portal/security").text
    world.post("/portal/recovery", {"recovery_token": RECOVERY_RE.search(text).group(0)})
    page = world.browser.get("/portal/security").text
    assert 'name="area"' not in page and "checked" not in page.split('id="areas-h"', 1)[1]
    assert "no second factor is asked when you sign in" in page
    assert "Once you set one up, it is asked for: Single sign-on." in page
    assert "Use your recovery token" not in page
    world.post("/portal/logout", form_page="/portal/security")
    assert world.login().headers["location"] == "/portal/security"  # indeed nothing asked


def sent_codes(world: PortalWorld, publisher) -> list[str]:
    """Runs the SMS task in-process for what was published since; the console provider
    writes each message to var/outbox/sms.log (as in ``twofa dev``)."""
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    worker_app.configure(world.ctx.settings, ctx=world.ctx)
    sms_tasks._sender.clear()
    try:
        for env in publisher.published:
            if env["type"] == "sms.requested" and env["event_id"] not in world.__dict__.setdefault(
                "_sent", set()
            ):
                world.__dict__["_sent"].add(env["event_id"])
                sms_tasks.send.apply(args=[env])
    finally:
        sms_tasks._sender.clear()
    outbox = world.ctx.settings.var_dir / "outbox" / "sms.log"
    return re.findall(r"\b(\d{6})\b", outbox.read_text()) if outbox.exists() else []


def test_sms_pages_speak_of_the_sms_and_send_it_again(world: PortalWorld, publisher):
    world.login()
    r = world.post(
        "/portal/security/enroll",
        {"type": "sms", "description": "Work phone", "phone": "+49 151 12345678"},
        form_page="/portal/security/enroll",
    )
    activate = r.headers["location"]
    first = sent_codes(world, publisher)[-1]
    page = world.browser.get(activate).text
    assert (
        "Code from the SMS" in page and "Send the SMS again" in page and "from your app" not in page
    )
    token_id = activate.split("/")[-2]
    r = world.post(f"/portal/security/tokens/{token_id}/resend", form_page=activate)
    assert (
        r.status_code == 429 and "We sent an SMS moments ago" in r.text
    )  # a sentence, not sms_throttled
    world.clock.advance(world.ctx.settings.sms_resend_interval_seconds)
    r = world.post(f"/portal/security/tokens/{token_id}/resend", form_page=activate)
    assert r.headers["location"] == activate
    assert "We sent a new code by SMS" in world.browser.get(activate).text
    second = sent_codes(world, publisher)[-1]
    r = world.post(activate, {"code": "000000" if first != "000000" else "111111"})
    assert (
        r.status_code == 422
        and "Check the code from the SMS" in r.text
        and "app" not in r.text.split("<main>")[1]
    )
    assert world.post(activate, {"code": second}).headers["location"] == "/portal/security"

    # the sign-in: the SMS again, then the code
    world.post("/portal/logout", form_page="/portal/security")
    assert world.login().headers["location"] == "/portal/2fa"
    (sms_id,) = [t["id"] for t in world.api.get("/v1/users/alice/tokens").json()["tokens"]]
    world.post("/portal/2fa/select", {"token_id": sms_id}, form_page="/portal/2fa")
    page = world.browser.get("/portal/2fa/code").text
    assert "Send the SMS again" in page and "from your app" not in page and "app shows" not in page
    world.clock.advance(world.ctx.settings.sms_resend_interval_seconds)
    r = world.post("/portal/2fa/resend", form_page="/portal/2fa/code")
    assert r.headers["location"] == "/portal/2fa/code"
    latest = sent_codes(world, publisher)[-1]
    r = world.post("/portal/2fa/verify", {"code": latest}, form_page="/portal/2fa/code")
    assert r.headers["location"] == "/portal/security"


def test_a_404_neither_starts_a_session_nor_takes_a_flash(world: PortalWorld):
    """A browser fetches /favicon.ico on its own, while the user fills in a form: its 404
    must not replace the session cookie (and the form's CSRF token) or eat a message."""
    r = world.browser.get("/favicon.ico")
    assert r.status_code == 404 and "set-cookie" not in r.headers
    world.login()
    r = world.post(
        "/portal/security/enroll",
        {"type": "totp", "description": "Tablet"},
        form_page="/portal/security/enroll",
    )
    token_id = re.search(r"/security/tokens/([0-9a-f-]{36})/cancel", r.text).group(1)
    world.post(f"/portal/security/tokens/{token_id}/cancel", form_page="/portal/security")
    assert world.browser.get("/portal/favicon.ico").status_code == 404
    assert "is cancelled" in world.browser.get("/portal/security").text
