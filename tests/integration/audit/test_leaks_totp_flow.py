"""A full TOTP run leaves no seed, code or recovery token in logs, events, messages or the audit log."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from services.core.audit import service
from services.core.models import AreaProtection
from services.core.factors.totp import otp
from tests.leakcheck import Sensitive, assert_no_leaks, find_leaks

P = otp.TotpParams()


def code(secret, clock, offset=0):
    return otp.code_at_step(secret, otp.time_step(clock.now().timestamp(), 30) + offset, P)


def test_the_helper_finds_leaks_in_every_form():
    s = Sensitive(secrets={"JBSWY3DPEHPK3PXPJBSWY3DP"}, codes={"123456"}, phones={"+4915112345678"})
    assert find_leaks(s, logs="seed jbsw y3dp ehpk 3pxp jbsw y3dp".replace(" ", "")) != []
    assert find_leaks(s, envelopes=[{"data": {"code": "123456"}}]) == ["envelopes: code 12…(6 chars) in 1 item(s)"]
    assert find_leaks(s, messages=[b'{"to": "015112345678"}']) != []  # national form
    assert find_leaks(s, logs="at 20261234567 and +4915*****78 and id 91234567") == []  # no whole-number match
    with pytest.raises(AssertionError) as exc:
        assert_no_leaks(s, logs="the code was 123456")
    assert "123456" not in str(exc.value)  # the report itself does not leak


def test_a_full_totp_flow_leaks_nothing(api, ctx, clock, publisher, enroll_headers, challenge_headers, make_key, caplog):
    caplog.set_level(logging.DEBUG)
    used = Sensitive()
    audit_headers = {"Authorization": f"Bearer {make_key('audit:read')}"}
    for h in (enroll_headers, challenge_headers, audit_headers):
        used.secrets.add(h["Authorization"].removeprefix("Bearer "))

    # enroll: start, scanned, activate, confirm
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "Pixel"}, headers=enroll_headers)
    body = r.json()
    tid = body["token"]["id"]
    secret = parse_qs(urlsplit(body["details"]["provisioning_uri"]).query)["secret"][0]
    used.secrets |= {secret, body["details"]["secret"]}
    base = f"/v1/users/alice/tokens/{tid}"
    api.post(f"{base}/scanned", headers=enroll_headers)
    wrong = "000000" if code(secret, clock) != "000000" else "111111"
    used.codes.add(wrong)
    assert api.post(f"{base}/activate", json={"code": wrong}, headers=enroll_headers).status_code == 422
    clock.advance(30)
    for step in range(3):
        c = code(secret, clock)
        used.codes.add(c)
        endpoint = "activate" if step == 0 else "confirm"
        r = api.post(f"{base}/{endpoint}", json={"code": c}, headers=enroll_headers)
        assert r.status_code == 200, r.text
        if endpoint == "confirm":
            details = r.json()["details"]
            for k, v in details.items():
                if "recovery" in k and isinstance(v, str) and len(v) >= 8:
                    used.secrets.add(v)
            break
        clock.advance(30)

    # login: the area is protected, the user picks TOTP, one wrong code, then the right one
    with ctx.sessions.begin() as session:
        session.merge(AreaProtection(user_id="alice", area="sso", protected=True, updated_at=clock.now()))
    ch = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers).json()
    cid = ch["challenge_id"]
    api.post(f"/v1/challenges/{cid}/select", json={"token_id": tid}, headers=challenge_headers)
    clock.advance(60)
    assert api.post(f"/v1/challenges/{cid}/verify", json={"code": wrong}, headers=challenge_headers).status_code == 422
    clock.advance(4)  # past the short back-off
    c = code(secret, clock)
    used.codes.add(c)
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": c}, headers=challenge_headers)
    assert r.json()["status"] == "verified", r.text

    # delete with a fresh code
    clock.advance(30)
    c = code(secret, clock)
    used.codes.add(c)
    assert api.request("DELETE", base, json={"code": c}, headers=enroll_headers).status_code == 200

    # the audit consumer sees every event; an auditor reads and exports them
    for env in publisher.published:
        service.record_in(ctx, env)
    audit_rows = api.get("/v1/audit/events", params={"limit": 500}, headers=audit_headers).json()["events"]
    assert len(audit_rows) == len(publisher.published) >= 10
    assert api.get("/v1/audit/verify", headers=audit_headers).json()["ok"] is True

    assert_no_leaks(
        used,
        logs=caplog.text,
        envelopes=publisher.published,
        messages=[json.dumps([[env], {}, {}]) for env in publisher.published],  # Celery's JSON body
        others={"audit rows": audit_rows},
    )
    assert len(used.codes) >= 4 and len(used.secrets) >= 5
