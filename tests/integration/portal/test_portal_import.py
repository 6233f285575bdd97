"""A user whose tokens were imported never saw an enrollment page: the portal offers the
recovery file on the next visit, and until it is downloaded."""

from __future__ import annotations

import base64

from services.core.imports.records import ImportRecord, import_records
from tests.integration.portal.conftest import PortalWorld
from tests.portal_support import RECOVERY_RE, next_code

SEED = bytes.fromhex("3132333435363738393031323334353637383930")


def test_an_imported_user_is_offered_the_recovery_file(world: PortalWorld) -> None:
    record = ImportRecord("entry 1", "TOTP0001", "totp", owner="alice", description="Pixel 8",
                          secret=SEED)
    summary = import_records(world.ctx, [record], "privacyidea")
    token_id = str(summary.outcomes[0].token_id)
    # sso came protected with the import: the login asks for the imported TOTP
    assert world.login().headers["location"] == "/portal/2fa"
    world.post("/portal/2fa/select", {"token_id": token_id}, form_page="/portal/2fa")
    r = world.post("/portal/2fa/verify", {"code": next_code(base64.b32encode(SEED).decode(), world.clock)},
                   form_page="/portal/2fa/code")
    assert r.headers["location"] == "/portal/security"

    page = world.browser.get("/portal/security").text
    assert 'id="recovery-download"' in page and "Pixel 8" in page
    assert "A recovery token is waiting for you" in page
    assert "data-auto-submit" not in page  # offered with a button, not downloaded by itself
    assert 'id="recovery-download"' in world.browser.get("/portal/security").text  # not yet taken
    r = world.post("/portal/security/recovery-token", form_page="/portal/security")
    assert r.status_code == 200 and RECOVERY_RE.search(r.text)

    assert 'id="recovery-download"' not in world.browser.get("/portal/security").text


def test_a_user_without_a_waiting_file_is_not_offered_one(world: PortalWorld) -> None:
    world.login()
    assert 'id="recovery-download"' not in world.browser.get("/portal/security").text
