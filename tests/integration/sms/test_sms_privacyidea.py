"""SMS through the privacyIDEA-compatible API: an SMS-only user's two-step login sends the
code through the real SMS task and the real twilio client (FakeTwilio over HTTP)."""

from __future__ import annotations

from tests.integration.sms.conftest import events, protect
from tests.integration.sms.test_sms_flow_api import enroll, last_code
from tests.pi_plugins import client_for


def test_an_sms_user_gets_the_code_by_sms_and_answers_with_it(api, enroll_headers, fake_twilio, run_sms,
                                                              ctx, publisher, clock):
    token_id = enroll(api, enroll_headers).json()["token"]["id"]
    run_sms()
    r = api.post(f"/v1/users/alice/tokens/{token_id}/activate", json={"code": last_code(fake_twilio)},
                 headers=enroll_headers)
    assert r.status_code == 200
    protect(ctx, "alice")
    clock.advance(31)  # the login code is newer than the enrollment code
    adfs = client_for(api, "adfs")
    challenge = adfs.check("alice", "")
    assert challenge.decision == "challenge"
    (entry,) = challenge.detail["multi_challenge"]
    assert entry["type"] == "sms" and entry["client_mode"] == "interactive"
    assert entry["message"] == "Enter the OTP from the SMS:" and entry["serial"].startswith("PISM")
    run_sms()
    assert len(events(publisher, "sms.requested")) == 2  # enrollment, then this login
    code = last_code(fake_twilio)
    wrong = "000000" if code != "000000" else "111111"
    assert adfs.answer("alice", wrong, challenge.transaction_id).decision == "failure"
    final = adfs.answer("alice", code, challenge.transaction_id)
    assert final.decision == "success", (final.body["detail"], final.body["result"])
