"""The customer portal's 2FA guide (../shared/seeds/000_290e3e1028b809f0.txt), section by section.

Each test walks one section through the HTTP API, the way the portal (scope
``enroll``) and a login service (scope ``challenge``) would. The authenticator
app is played by real tools: ``zbarimg`` reads the QR code the API returns and
``oathtool`` (oath-toolkit) computes the codes for the test clock's time.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.core import apikeys
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context

OATHTOOL = shutil.which("oathtool")
ZBARIMG = shutil.which("zbarimg")
pytestmark = pytest.mark.skipif(OATHTOOL is None, reason="oathtool (oath-toolkit) is not installed")

RECOVERY_RE = re.compile(r"\b[0-9A-F]{4}(?:-[0-9A-F]{4}){7}\b")


def app_code(secret: str, clock: FrozenClock, *, skew_seconds: int = 0) -> str:
    """What the authenticator app shows at the test clock's time (± a phone clock skew)."""
    at = clock.now().timestamp() + skew_seconds
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = subprocess.run(
        [OATHTOOL, "--totp", "-b", "--now", when, secret],  # type: ignore[list-item]
        check=True, capture_output=True, text=True, timeout=10,
    )
    return out.stdout.strip()


class Portal:
    """The customer portal and the login service, as HTTP clients of the API."""

    def __init__(self, api: TestClient, enroll_key: str, challenge_key: str, user: str = "alice") -> None:
        self.api, self.user = api, user
        self.enroll = {"Authorization": f"Bearer {enroll_key}"}
        self.login = {"Authorization": f"Bearer {challenge_key}"}

    def tokens_url(self, token_id: str = "") -> str:
        return f"/v1/users/{self.user}/tokens" + (f"/{token_id}" if token_id else "")

    def secure_my_account(self, description: str) -> dict:
        r = self.api.post(self.tokens_url(), json={"type": "totp", "description": description}, headers=self.enroll)
        assert r.status_code == 201, r.text
        return r.json()

    def step(self, token_id: str, name: str, code: str | None = None):
        body = {"code": code} if code is not None else None
        return self.api.post(f"{self.tokens_url(token_id)}/{name}", json=body, headers=self.enroll)

    def set_up_totp(self, clock: FrozenClock, description: str = "Pixel 8") -> tuple[str, str, dict]:
        started = self.secure_my_account(description)
        token_id, secret = started["token"]["id"], secret_of(started["details"]["provisioning_uri"])
        assert self.step(token_id, "scanned").status_code == 200
        assert self.step(token_id, "activate", app_code(secret, clock)).status_code == 200
        clock.advance(30)
        confirmed = self.step(token_id, "confirm", app_code(secret, clock))
        assert confirmed.status_code == 200, confirmed.text
        return token_id, secret, confirmed.json()

    def overview(self) -> list[dict]:
        r = self.api.get(self.tokens_url(), headers=self.enroll)
        assert r.status_code == 200
        return r.json()["tokens"]

    def download_recovery_file(self):
        return self.api.get(f"/v1/users/{self.user}/recovery-token", headers=self.enroll)

    def log_in(self, area: str = "sso") -> dict:
        r = self.api.post("/v1/challenges", json={"user_id": self.user, "area": area}, headers=self.login)
        assert r.status_code == 200, r.text
        return r.json()


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


@pytest.fixture
def portal(ctx: Context) -> Iterator[Portal]:
    def key(*scopes: str) -> str:
        with ctx.sessions.begin() as session:
            return apikeys.create_key(session, "guide", scopes, ctx.clock.now()).plaintext

    with TestClient(create_app(ctx=ctx)) as api:
        yield Portal(api, key("enroll"), key("challenge"))


def test_guide_1_activation(portal: Portal, clock: FrozenClock, publisher) -> None:
    # "To activate, select Secure My Account. Enter a description of your device."
    started = portal.secure_my_account("Pixel 8")
    token, details = started["token"], started["details"]
    assert (token["description"], token["state"]) == ("Pixel 8", "pending")
    # "Once the necessary token has been generated, it is displayed as a QR code."
    assert details["qr_svg"].startswith("data:image/svg+xml")
    assert details["qr_png"].startswith("data:image/png;base64,")
    secret = secret_of(details["provisioning_uri"])
    # The code cannot be entered before "QR code scanned" was clicked.
    assert portal.step(token["id"], "activate", app_code(secret, clock)).status_code == 409
    # "Once this has been done, 'QR code scanned' must be clicked."
    r = portal.step(token["id"], "scanned")
    assert r.json()["token"]["state"] == "scanned"
    # "a code generated by the app must be entered, usually 6 characters long"
    first = app_code(secret, clock)
    assert re.fullmatch(r"\d{6}", first)
    r = portal.step(token["id"], "activate", first)
    assert r.status_code == 200 and r.json()["token"]["state"] == "unconfirmed"
    # "To confirm the identity, another entry of a valid 6-digit code is required" -- another one
    assert portal.step(token["id"], "confirm", first).status_code == 422
    clock.advance(30)
    r = portal.step(token["id"], "confirm", app_code(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["token"]["state"] == "active"
    # "After successful registration of the first token, a file is automatically downloaded"
    assert r.json()["details"]["recovery_token_available"] is True
    f = portal.download_recovery_file()
    assert f.status_code == 200
    assert f.headers["content-type"].startswith("text/plain")
    assert f.headers["content-disposition"].startswith("attachment; filename=")
    assert len(RECOVERY_RE.findall(f.text)) == 1
    # "All registered tokens should now be listed on the overview page."
    [listed] = portal.overview()
    assert {k: listed[k] for k in ("id", "type", "description", "state")} == {
        "id": token["id"], "type": "totp", "description": "Pixel 8", "state": "active",
    }
    assert listed["created_at"] and "last_used_at" in listed
    # "You can delete the token ... However, this is only possible after entering a valid token."
    delete = portal.tokens_url(token["id"])
    r = portal.api.request("DELETE", delete, json={}, headers=portal.enroll)
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_required"
    clock.advance(30)
    r = portal.api.request("DELETE", delete, json={"code": app_code(secret, clock)}, headers=portal.enroll)
    assert r.status_code == 200, r.text
    assert portal.overview() == []
    assert {"enrollment.started", "enrollment.scanned", "enrollment.activated",
            "enrollment.confirmed", "recovery.issued", "token.deleted"} <= set(publisher.types())


def test_guide_2_installation(portal: Portal, clock: FrozenClock, tmp_path: Path) -> None:
    started = portal.secure_my_account("Pixel 8")
    details = started["details"]
    uri = details["provisioning_uri"]
    # "The installed Authenticator app usually supports the automatic detection of a QR code"
    if ZBARIMG is not None:
        png = tmp_path / "qr.png"
        png.write_bytes(base64.b64decode(details["qr_png"].split(",", 1)[1]))
        scanned = subprocess.run([ZBARIMG, "--raw", "-q", str(png)], capture_output=True, text=True, timeout=10)
        assert scanned.stdout.strip() == uri
    query = parse_qs(urlsplit(uri).query)
    assert uri.startswith("otpauth://totp/twofa:alice?")
    assert (query["digits"], query["period"], query["algorithm"]) == (["6"], ["30"], ["SHA1"])
    # "a manual input of the token is not necessary" -- but possible: the grouped secret
    secret = secret_of(uri)
    assert details["secret"].replace(" ", "") == secret
    token_id = started["token"]["id"]
    portal.step(token_id, "scanned")
    # "After setting the QR code, the current token is automatically displayed": the app's code works
    assert portal.step(token_id, "activate", app_code(secret, clock)).status_code == 200
    # "The code ... is valid for 30 seconds": one from two minutes ago is refused
    clock.advance(150)
    assert portal.step(token_id, "confirm", app_code(secret, clock, skew_seconds=-120)).status_code == 422
    # "For TOTP Token it is crucial that the system time is synchronized": a phone 5 min off fails
    assert portal.step(token_id, "confirm", app_code(secret, clock, skew_seconds=300)).status_code == 422
    r = portal.step(token_id, "confirm", app_code(secret, clock))
    assert r.status_code == 200 and r.json()["token"]["state"] == "active"


def test_guide_3_usage(portal: Portal, clock: FrozenClock, publisher) -> None:
    # Before a second factor is set up, single sign-on needs none.
    assert portal.log_in("sso")["status"] == "not_required"
    token_id, secret, confirmed = portal.set_up_totp(clock)
    # "After successfully setting up a second factor, a second factor is now required when
    #  logging on to single sign-on services."
    assert confirmed["details"]["areas_protected_by_default"] == ["sso"]
    clock.advance(60)
    # "After the usual entry of e-mail address or user name and password, the desired second
    #  factor must now be selected."
    challenge = portal.log_in("sso")
    assert challenge["status"] == "pending"
    assert challenge["factors"] == [{"token_id": token_id, "type": "totp", "description": "Pixel 8"}]
    cid = challenge["challenge_id"]
    r = portal.api.post(f"/v1/challenges/{cid}/select", json={"token_id": token_id}, headers=portal.login)
    assert r.status_code == 200 and r.json()["selected_type"] == "totp"
    # "Now type in the 6-digit code generated by the corresponding app and click on Submit."
    r = portal.api.post(f"/v1/challenges/{cid}/verify", json={"code": app_code(secret, clock)}, headers=portal.login)
    assert r.status_code == 200, r.text
    # "If this was successful, you will be redirected": the login service reads the outcome
    outcome = portal.api.get(f"/v1/challenges/{cid}", headers=portal.login).json()
    assert (outcome["status"], outcome["user_id"], outcome["area"]) == ("verified", "alice", "sso")
    # the overview now shows when the token was last used
    [listed] = portal.overview()
    assert listed["last_used_at"].replace("Z", "+00:00") == clock.now().isoformat()
    assert [t for t in publisher.types() if t.startswith("challenge.")] == [
        "challenge.not_required", "challenge.created", "challenge.factor_selected", "challenge.verified",
    ]


def test_guide_4_deactivation(portal: Portal, clock: FrozenClock, publisher) -> None:
    portal.set_up_totp(clock)
    f = portal.download_recovery_file()
    [recovery_token] = RECOVERY_RE.findall(f.text)
    assert portal.log_in("sso")["status"] == "pending"
    # The phone is lost: "this token offers the possibility to reset the two-factor
    # authentication once and set it up again."
    r = portal.api.post(f"/v1/users/{portal.user}/recovery", json={"recovery_token": recovery_token}, headers=portal.enroll)
    assert r.status_code == 200, r.text
    assert r.json()["tokens_removed"] == 1
    assert portal.overview() == []
    assert portal.log_in("sso")["status"] == "not_required"
    assert "recovery.used" in publisher.types()
    # "After one-time use, a new token must be issued."
    r = portal.api.post(f"/v1/users/{portal.user}/recovery", json={"recovery_token": recovery_token}, headers=portal.enroll)
    assert r.status_code == 422
    clock.advance(60)
    _, _, confirmed = portal.set_up_totp(clock, "new phone")
    assert confirmed["details"]["recovery_token_available"] is True
    [renewed] = RECOVERY_RE.findall(portal.download_recovery_file().text)
    assert renewed != recovery_token
    assert portal.log_in("sso")["status"] == "pending"
