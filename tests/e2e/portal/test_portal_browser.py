"""The user guide's sections #1-#4 clicked through in headless Chromium: the controls
carry the guide's words ("Secure My Account", "QR code scanned", "Submit", the recycle
bin), codes come from oathtool, the push is approved by the emulated privacyIDEA app.
Each step leaves a screenshot under artifacts/portal/ (not committed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.core.plumbing.clock import FrozenClock
from tests.portal_support import PASSWORD, RECOVERY_RE, next_code, oathtool

pytestmark = pytest.mark.e2e


def sign_in(page: Any, base: str, user: str = "alice") -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name or e-mail address").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/portal/login$"))


def answer_with_totp(page: Any, secret: str, clock: FrozenClock, shot: Any = None) -> None:
    """The login step: choose the TOTP token, type the code, "Submit"."""
    page.wait_for_url(re.compile(r"/portal/2fa$"))
    page.get_by_label(re.compile(r"^TOTP · ")).check()
    if shot:
        shot("10-login-choose-factor")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(next_code(secret, clock))
    if shot:
        shot("11-login-code")
    page.get_by_role("button", name="Submit").click()


def enroll_totp(page: Any, base: str, clock: FrozenClock, description: str, shot: Any = None) -> str:
    shot = shot or (lambda _name: None)
    page.get_by_role("link", name="Secure My Account").click()
    page.get_by_label(re.compile("^TOTP")).check()
    page.get_by_label(re.compile("^Description of your device")).fill(description)
    shot("03-enroll-description")
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#manual-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    shot("04-enroll-qr")
    page.get_by_role("button", name="QR code scanned").click()
    page.get_by_label("6-digit code").fill(oathtool(secret, clock))
    shot("05-enroll-activate")
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile(r"/confirm$"))
    page.get_by_label("6-digit code").fill(next_code(secret, clock))
    shot("06-enroll-confirm")
    return secret


def test_guide_sections_1_to_4_with_totp(page, servers, shot, clock: FrozenClock):
    api, portal = servers
    base = f"{portal.url}/portal"
    page.goto(f"{base}/")
    shot("01-login")
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")
    shot("02-security-no-token")

    # 1 Activation: ... after the first token the recovery file downloads by itself
    secret = enroll_totp(page, base, clock, "Pixel 8", shot)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Confirm").click()
    download = download_info.value
    assert download.suggested_filename == "twofa-recovery-alice.txt"
    recovery_file = Path(download.path())
    recovery = RECOVERY_RE.search(recovery_file.read_text()).group(0)
    row = page.locator("table.tokens tbody tr", has_text="Pixel 8")
    row.wait_for()
    assert page.url == f"{base}/security"
    assert "TOTP" in row.inner_text() and "active" in row.inner_text()
    shot("07-overview-first-token")

    # the protected-area checkboxes, with the step-up code
    page.get_by_label("Security settings").check()
    assert page.get_by_label("Single sign-on").is_checked()  # protected by the first token
    page.get_by_label(re.compile("^A code from one of your tokens")).fill(next_code(secret, clock))
    shot("08-areas-step-up")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Your protected areas are saved.").wait_for()
    areas = httpx.get(f"{api.url}/v1/users/alice/areas", headers=_key(portal)).json()["areas"]
    assert {a["area"]: a["protected"] for a in areas} == {"sso": True, "portal-security": True}

    # 3 Usage: password, then the factor choice and "Submit"; one answer covers both areas
    used_before = row.locator("td[data-label='Last used']").inner_text()
    clock.advance(60)  # "Last used" is shown to the minute
    sign_out(page)
    sign_in(page, base)
    answer_with_totp(page, secret, clock, shot)
    page.wait_for_url(f"{base}/security")
    assert row.locator("td[data-label='Last used']").inner_text() != used_before
    shot("12-signed-in-overview")

    # delete a token with the recycle bin: only with a valid code
    enroll_totp(page, base, clock, "Old phone")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{base}/security")
    page.get_by_role("link", name="Delete TOTP token Old phone").click()
    page.get_by_label("The code is from").select_option(label="TOTP · Pixel 8")
    page.get_by_label(re.compile("^A code from one of your tokens")).fill("123456")
    page.get_by_role("button", name="Delete").click()
    page.get_by_text("That code was not accepted").wait_for()
    assert page.get_by_label("The code is from").input_value() == page.locator(
        "#verify_token_id option", has_text="TOTP · Pixel 8").get_attribute("value")  # kept
    page.get_by_label(re.compile("^A code from one of your tokens")).fill(next_code(secret, clock))
    shot("13-delete-with-code")
    page.get_by_role("button", name="Delete").click()
    page.get_by_text("is deleted").wait_for()
    assert page.locator("table.tokens tbody tr").count() == 1

    # 4 Deactivation: the recovery file resets 2FA once
    page.get_by_role("link", name="Use your recovery token").click()
    page.get_by_label(re.compile("choose the recovery file")).set_input_files(str(recovery_file))
    shot("14-recovery")
    page.get_by_role("button", name="Reset two-factor authentication").click()
    page.get_by_text("Set it up again now").wait_for()
    assert page.locator("table.tokens").count() == 0
    shot("15-recovered")
    tokens = httpx.get(f"{api.url}/v1/users/alice/tokens", headers=_key(portal)).json()["tokens"]
    assert tokens == [] and recovery
    assert page.csp_errors == []  # nothing the CSP had to block


def _key(portal: Any) -> dict[str, str]:
    settings = portal.server.config.app.state.settings
    return {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg reads the QR code")
def test_push_enrollment_and_login_approved_in_the_app(page, servers, shot, clock: FrozenClock, tmp_path):
    from tests.fakes.pi_app import PiAuthenticatorApp
    from tests.fakes.pi_crypto import dart_utc_iso

    api, portal = servers
    base = f"{portal.url}/portal"
    sign_in(page, base)
    page.wait_for_url(f"{base}/security")
    page.get_by_role("link", name="Secure My Account").click()
    page.get_by_label(re.compile("^PUSH")).check()
    page.get_by_label(re.compile("^Description of your device")).fill("iPhone 15")
    page.get_by_role("button", name="Continue").click()
    qr_png = tmp_path / "qr.png"
    page.locator("#qr").screenshot(path=str(qr_png))
    shot("20-push-qr")
    url = subprocess.run(["zbarimg", "-q", "--raw", str(qr_png)], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert url.startswith("otpauth://pipush/")
    with httpx.Client(timeout=10) as http:
        app = PiAuthenticatorApp(http)
        token = app.scan(url, now=clock.now().timestamp())
        app.register(token, fbtoken="fcm-e2e", key_size=2048, now=clock.now().timestamp())
        with page.expect_download() as download_info:  # the first token: the file comes by itself
            page.get_by_role("button", name="QR code scanned").click()
        assert RECOVERY_RE.search(Path(download_info.value.path()).read_text())
        page.locator("table.tokens tbody tr", has_text="iPhone 15").wait_for()
        assert "active" in page.locator("table.tokens tbody tr", has_text="iPhone 15").inner_text()
        shot("21-push-active")

        sign_out(page)
        sign_in(page, base)
        page.wait_for_url(re.compile(r"/portal/2fa$"))
        page.get_by_label(re.compile(r"^PUSH · iPhone 15")).check()
        page.get_by_role("button", name="Continue").click()
        number = page.locator("#presence-number").inner_text().strip()
        assert number.isdigit()
        shot("22-push-waiting")
        (request,) = app.poll_requests(token, dart_utc_iso(clock.now()))
        assert number in request.options
        app.accept(request, number, now=clock.now().timestamp())  # the user taps the number
        page.wait_for_url(f"{base}/security")  # the page continued by itself
        shot("23-push-signed-in")
    assert page.csp_errors == []
