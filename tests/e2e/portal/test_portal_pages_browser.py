"""The portal's pages for people, in Chromium: error pages in the portal's look with the
message beside the field and the input kept; one answer for the two areas a sign-in
needs; a recovery notice that says what happened; Cancel on the QR page; an abandoned
set-up swept away; "Send the SMS again". The error page, the two-area sign-in and the
recovery notice are shot at a phone's and a desktop's size under artifacts/portal/."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from services.core.models import AreaProtection, Token
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.tokens import service as tokens
from shared.types import mask_phone
from tests.e2e.portal.test_portal_browser import enroll_totp, sign_in, sign_out
from tests.e2e.portal.test_portal_step_up import both_sizes, tokens_of
from tests.integration.helpers import sent_sms_code
from tests.portal_support import RECOVERY_RE, next_code

pytestmark = pytest.mark.e2e
PHONE = "+4915112345678"


def test_errors_are_portal_pages_with_the_message_beside_the_field(page, servers, shot):
    _, portal = servers
    base = f"{portal.url}/portal"
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")
    response = page.goto(f"{base}/no-such-page")
    assert response.status == 404
    page.get_by_role("heading", name="Page not found").wait_for()
    assert "detail" not in page.content() and page.get_by_text("Customer Portal").is_visible()
    both_sizes(page, shot, "30-error-page")

    page.goto(f"{base}/security/enroll")
    page.get_by_label(re.compile("^SMS")).check()
    long = "My old phone, the one with the cracked screen " * 7  # ~300 characters
    description = page.get_by_label(re.compile("^Description of your device"))
    # what a browser's own checks would stop: too long, and the number's format
    description.evaluate("el => el.removeAttribute('maxlength')")
    description.fill(long)
    page.get_by_label(re.compile("^Phone number")).fill("0151 2345")
    page.get_by_role("button", name="Continue").click()
    error = page.locator("#description-error")
    error.wait_for()
    assert "Shorten it to 64 characters or fewer." in error.inner_text()
    assert description.get_attribute("aria-describedby") == "description-error"
    assert (
        description.input_value() == long.strip()
        and page.get_by_label(re.compile("^SMS")).is_checked()
    )
    assert page.get_by_label(re.compile("^Phone number")).input_value() == "0151 2345"
    both_sizes(page, shot, "31-enroll-error-beside-field")

    description.fill("Work phone")
    page.get_by_role("button", name="Continue").click()
    phone_error = page.locator("#phone-error")
    phone_error.wait_for()
    assert phone_error.inner_text().startswith("Enter your mobile number with the country code")
    assert "(+…)" not in page.content()
    assert description.input_value() == "Work phone"
    assert page.csp_errors == []


def test_one_answer_signs_in_to_both_areas_and_the_recovery_notice_tells_the_truth(
    page, servers, shot, clock: FrozenClock, publisher: RecordingPublisher
):
    _, portal = servers
    base = f"{portal.url}/portal"
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")
    secret = enroll_totp(page, base, clock, "Pixel 8")
    with page.expect_download() as download_info:  # the first token: the file comes by itself
        page.get_by_role("button", name="Confirm").click()
    assert RECOVERY_RE.search(Path(download_info.value.path()).read_text())
    saved = page.locator("#recovery-done")
    saved.wait_for()
    assert not page.locator("#recovery-text").is_visible()
    assert "is being downloaded" not in page.content()
    assert page.locator("#recovery-download button").count() == 0  # nothing left to click
    both_sizes(page, shot, "32-recovery-notice")
    page.reload()
    assert page.locator("#recovery-download").count() == 0  # downloaded: no notice any more

    page.get_by_label("Security settings").check()
    page.get_by_label(re.compile("^A code from one of your tokens")).fill(next_code(secret, clock))
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Your protected areas are saved.").wait_for()

    sign_out(page)
    sign_in(page, base)
    page.wait_for_url(re.compile(r"/portal/2fa$"))
    assert (
        page.locator("#step-areas")
        .inner_text()
        .startswith("To sign in to Single sign-on and Security settings,")
    )
    both_sizes(page, shot, "33-two-area-sign-in")
    page.get_by_label(re.compile(r"^TOTP · Pixel 8")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(next_code(secret, clock))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(f"{base}/security")  # no second "Second factor" page
    page.get_by_role("heading", name="Two-Factor Authentication").wait_for()
    covered = [e for e in publisher.published if e["type"] == "challenge.covered"]
    assert [e["data"]["area"] for e in covered] == ["portal-security"]
    assert page.csp_errors == []


def test_cancel_on_the_qr_page_and_an_abandoned_set_up_swept(
    page, servers, ctx: Context, clock: FrozenClock
):
    api, portal = servers
    base = f"{portal.url}/portal"
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")
    for description in ("Tablet", "Laptop"):
        page.get_by_role("link", name="Secure My Account").click()
        page.get_by_label(re.compile(r"^Description of your device")).fill(description)
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("heading", name="Scan the QR code").wait_for()
        if description == "Tablet":
            page.get_by_role("button", name="Cancel").click()
            page.get_by_text("The set-up of “Tablet” is cancelled.").wait_for()
            assert tokens_of(api, portal) == []
    assert [t["state"] for t in tokens_of(api, portal)] == ["pending"]
    clock.advance(ctx.settings.enrollment_ttl_seconds)
    assert tokens.expire_enrollments(ctx) == 1  # what the expiry sweep does every second
    page.get_by_role("button", name="QR code scanned").click()
    page.get_by_text("That token is no longer there").wait_for()
    assert tokens_of(api, portal) == []


def test_send_the_sms_again_at_sign_in(
    page, servers, ctx: Context, clock: FrozenClock, publisher: RecordingPublisher
):
    _, portal = servers
    base = f"{portal.url}/portal"
    with ctx.sessions.begin() as s:
        s.add(
            Token(
                id=uuid.uuid4(),
                user_id="alice",
                type="sms",
                description="Work phone",
                state="active",
                drift=0,
                failures=0,
                created_at=clock.now(),
                phone_enc=ctx.keyring.encrypt(PHONE),
                phone_masked=mask_phone(PHONE),
            )
        )
        s.add(AreaProtection(user_id="alice", area="sso", protected=True, updated_at=clock.now()))
    sign_in(page, base)
    page.wait_for_url(re.compile(r"/portal/2fa$"))
    page.get_by_label(re.compile(r"^SMS · Work phone")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("We sent a code by SMS").wait_for()
    assert "app" not in page.locator("main").inner_text()
    first = [e for e in publisher.published if e["type"] == "sms.requested"][-1]
    clock.advance(ctx.settings.sms_resend_interval_seconds)
    page.get_by_role("button", name="Send the SMS again").click()
    page.get_by_text("We sent a new code by SMS").wait_for()
    second = [e for e in publisher.published if e["type"] == "sms.requested"][-1]
    assert second["data"]["message_id"] != first["data"]["message_id"]
    page.get_by_label("Code from the SMS").fill(sent_sms_code(ctx, second))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(f"{base}/security")
    assert page.csp_errors == []
