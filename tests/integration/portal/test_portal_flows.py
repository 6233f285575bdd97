"""The guide's flows through the portal's pages, on the real API in-process
(the browser suite walks the same pages in Chromium)."""

from __future__ import annotations

import logging
import re

import pytest

from tests.integration.portal.conftest import PortalWorld
from tests.portal_support import RECOVERY_RE, next_code, oathtool

SECRET_RE = re.compile(r'id="manual-secret">([A-Z2-7 ]+)<')


def enroll_totp(world: PortalWorld, description: str = "Pixel 8") -> tuple[str, str, str]:
    """Secure My Account → QR → QR code scanned → activate → confirm; returns (secret, token id, page)."""
    r = world.post("/portal/security/enroll", {"type": "totp", "description": description},
                   form_page="/portal/security/enroll")
    assert r.status_code == 200 and "QR code scanned" in r.text
    assert 'src="data:image/svg+xml' in r.text
    secret = SECRET_RE.search(r.text).group(1).replace(" ", "")
    token_id = re.search(r"/security/tokens/([0-9a-f-]{36})/scanned", r.text).group(1)
    r = world.post(f"/portal/security/tokens/{token_id}/scanned", form_page="/portal/security")
    assert r.headers["location"] == f"/portal/security/tokens/{token_id}/activate"
    page = f"/portal/security/tokens/{token_id}/activate"
    r = world.post(page, {"code": oathtool(secret, world.clock)})
    assert r.headers["location"] == f"/portal/security/tokens/{token_id}/confirm"
    r = world.post(f"/portal/security/tokens/{token_id}/confirm", {"code": next_code(secret, world.clock)})
    assert r.status_code == 303 and r.headers["location"] == "/portal/security"
    return secret, token_id, world.browser.get("/portal/security").text


def test_enroll_download_protect_login_delete_and_recover(world: PortalWorld, caplog):
    caplog.set_level(logging.DEBUG)
    r = world.login()
    assert r.status_code == 303 and r.headers["location"] == "/portal/security"  # no 2FA yet
    secret, token_id, page = enroll_totp(world)
    assert 'data-auto-submit="1"' in page and "Pixel 8" in page and "active" in page
    r = world.post("/portal/security/recovery-token", form_page="/portal/security")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["cache-control"] == "no-store"
    recovery = RECOVERY_RE.search(r.text).group(0)
    r = world.post("/portal/security/recovery-token", form_page="/portal/security")
    assert r.status_code == 303  # once only: the second time is a message, not a file
    page = world.browser.get("/portal/security").text
    assert "downloaded only once" in page and 'id="recovery-download"' not in page

    # protect portal-security (sso was protected by the first token) with a step-up code;
    # without one, the change goes to the step-up page
    r = world.post("/portal/security/areas", {"area": ["sso", "portal-security"]},
                   form_page="/portal/security")
    assert r.headers["location"] == "/portal/security/step-up"
    page = world.browser.get("/portal/security/step-up").text
    assert "Ask for a second factor at “Security settings”." in page and "TOTP · Pixel 8" in page
    world.post("/portal/security/step-up/cancel", form_page="/portal/security/step-up")
    r = world.post("/portal/security/areas", {"area": ["sso", "portal-security"],
                                              "code": next_code(secret, world.clock)},
                   form_page="/portal/security")
    assert r.status_code == 303
    protected = {a["area"]: a["protected"] for a in world.api.get("/v1/users/alice/areas").json()["areas"]}
    assert protected == {"sso": True, "portal-security": True}

    # sign out, sign in to the security page: both areas are protected, one code covers both
    world.post("/portal/logout", form_page="/portal/security")
    r = world.login(next="/portal/security")
    assert r.headers["location"] == "/portal/2fa"
    page = world.browser.get("/portal/2fa").text
    assert "TOTP · Pixel 8" in page and "Single sign-on</strong> and <strong>" not in page
    assert "<strong>Single sign-on and Security settings</strong>" in page
    r = world.post("/portal/2fa/select", {"token_id": token_id}, form_page="/portal/2fa")
    assert r.headers["location"] == "/portal/2fa/code"
    r = world.post("/portal/2fa/verify", {"code": "000000"}, form_page="/portal/2fa/code")
    assert r.status_code == 422 and "That code was not accepted" in r.text
    assert "from your app" not in r.text and 'id="code-error"' in r.text  # beside the field
    r = world.post("/portal/2fa/verify", {"code": next_code(secret, world.clock)}, form_page="/portal/2fa/code")
    assert r.headers["location"] == "/portal/security"
    r = world.browser.get("/portal/security")
    assert r.status_code == 200  # the same answer covered portal-security: no second step
    page = r.text
    assert "never" not in page.split("Pixel 8", 1)[1].split("</tr>", 1)[0]  # last used is shown

    # a second token, deleted with a code from the first
    _, second_id, _ = enroll_totp(world, "Old phone")
    delete = f"/portal/security/tokens/{second_id}/delete"
    r = world.post(delete, {"code": "123456", "verify_token_id": token_id})
    assert r.status_code == 422
    r = world.post(delete, {"code": next_code(secret, world.clock), "verify_token_id": token_id})
    assert r.headers["location"] == "/portal/security"
    assert [t["description"] for t in world.api.get("/v1/users/alice/tokens").json()["tokens"]] == ["Pixel 8"]

    # recovery: wrong token refused, the real one resets 2FA
    r = world.post("/portal/recovery", {"recovery_token": "0000-0000-0000-0000-0000-0000-0000-0000"})
    assert r.status_code == 422 and "not valid" in r.text
    r = world.post("/portal/recovery", {"recovery_token": recovery})
    assert r.headers["location"] == "/portal/security"
    page = world.browser.get("/portal/security").text
    assert "Set it up again" in page and "no second factor yet" in page
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []

    # no secret, code or recovery token in any log line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged and recovery not in logged and recovery.replace("-", "") not in logged


def test_recovery_from_a_file_upload_after_the_password_only(world: PortalWorld):
    world.login()
    secret, _, _ = enroll_totp(world)
    text = world.post("/portal/security/recovery-token", form_page="/portal/security").text
    world.post("/portal/logout", form_page="/portal/security")
    assert world.login().headers["location"] == "/portal/2fa"  # lost phone: stuck at the 2nd factor
    token = world.csrf("/portal/recovery")
    r = world.browser.post("/portal/recovery", data={"csrf_token": token},
                           files={"file": ("twofa-recovery-alice.txt", text.encode(), "text/plain")})
    assert r.headers["location"] == "/portal/security"
    assert world.browser.get("/portal/security").status_code == 200  # signed in, 2FA reset
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []


def test_wrong_password_is_one_message_for_known_and_unknown_users(world: PortalWorld):
    a = world.login("alice", "wrong password")
    b = world.login("mallory", "wrong password")
    assert a.status_code == b.status_code == 401
    assert "user name or the password is wrong" in a.text and "user name or the password is wrong" in b.text
    assert world.browser.get("/portal/security").headers["location"].startswith("/portal/login")


@pytest.mark.parametrize("path", ["/portal/security", "/portal/security/enroll"])
def test_pages_need_a_signed_in_user(world: PortalWorld, path: str):
    r = world.browser.get(path)
    assert r.status_code == 303 and r.headers["location"] == f"/portal/login?next={path}"


def test_sms_enrollment_description_and_phone_then_the_code_from_the_console_outbox(
        world: PortalWorld, publisher):
    """SMS: description + phone → code entry. The SMS task runs in-process on the console
    provider, which writes the message to var/outbox/sms.log as in ``twofa dev``."""
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    world.login()
    r = world.post("/portal/security/enroll", {"type": "sms", "description": "Work phone",
                                               "phone": "+49 151 12345678"},
                   form_page="/portal/security/enroll")
    assert r.status_code == 303 and r.headers["location"].endswith("/activate")
    worker_app.configure(world.ctx.settings, ctx=world.ctx)
    sms_tasks._sender.clear()
    try:
        for env in publisher.published:
            if env["type"] == "sms.requested":
                sms_tasks.send.apply(args=[env])
    finally:
        sms_tasks._sender.clear()
    outbox = (world.ctx.settings.var_dir / "outbox" / "sms.log").read_text()
    code = re.findall(r"\b(\d{6})\b", outbox)[-1]
    page = world.browser.get(r.headers["location"]).text
    assert "We sent a code by SMS" in page and "12345678" not in page  # the number is masked
    r = world.post(r.headers["location"], {"code": code})
    assert r.headers["location"] == "/portal/security"
    (token,) = world.api.get("/v1/users/alice/tokens").json()["tokens"]
    assert token["type"] == "sms" and token["state"] == "active"
    assert 'data-auto-submit="1"' in world.browser.get("/portal/security").text  # first token


def test_sms_enrollment_needs_a_phone_number(world: PortalWorld):
    world.login()
    r = world.post("/portal/security/enroll", {"type": "sms", "description": "Work phone"},
                   form_page="/portal/security/enroll")
    assert r.status_code == 422 and "phone number" in r.text
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []
