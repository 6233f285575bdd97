"""Logging in with a push: the app polls, verifies the signed challenge and answers
(push-protocol.md §4-§7), and the login service reads the outcome."""

from __future__ import annotations

import pytest

from tests.fakes.pi_app import PollError
from tests.fakes.pi_crypto import sign


def only_request(world, token):
    (req,) = world.requests(token)
    return req


def test_select_returns_the_presence_answer_and_polls_show_the_signed_challenge(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    assert sel["status"] == "pending" and sel["selected_type"] == "push"
    answer = sel["presence_answer"]
    assert answer is not None and len(answer) == 2 and answer.isdigit()
    assert world.outcome(sel["challenge_id"])["presence_answer"] == answer
    (entry,) = world.app.poll(token, world.ts())
    assert all(isinstance(v, str) for v in entry.values())
    assert set(entry) == {"nonce", "question", "serial", "title", "sslverify", "url", "signature",
                          "require_presence", "version", "capabilities", "capabilities_signature"}
    assert len(entry["nonce"]) == 32 and entry["version"] == "2"
    assert entry["url"] == "http://127.0.0.1:8000/ttype/push"
    assert entry["capabilities"] == '{"decline_reason": true}'
    options = entry["require_presence"].split(",")
    assert len(options) == 3 and answer in options and len(set(options)) == 3
    req = world.app.verify_challenge(token, entry, now=world.now)  # signature + capabilities verify
    assert req.decline_reason_supported
    requested = [e for e in publisher.published if e["type"] == "push.requested"]
    assert len(requested) == 1 and set(requested[0]["data"]) == {"challenge_id", "token_id", "serial"}
    assert world.outcome(sel["challenge_id"])["expires_at"].startswith("2026-11-28T20:02:00")


def test_accept_approves_the_challenge_once(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    assert world.app.accept(req, sel["presence_answer"], now=world.now)["result"]["value"] is True
    assert world.outcome(sel["challenge_id"])["status"] == "approved"
    assert "challenge.approved" in publisher.types()
    assert world.app.poll(token, world.ts()) == []  # no longer open


def test_replayed_answer_is_refused(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    msg = f"{req.nonce}|{req.serial}|{sel['presence_answer']}"
    fields = {"serial": req.serial, "nonce": req.nonce, "presence_answer": sel["presence_answer"],
              "signature": sign(token.private_key, msg)}
    assert world.app.answer_raw(req.url, fields)["result"]["value"] is True
    assert world.app.answer_raw(req.url, fields)["result"]["value"] is False
    assert publisher.types().count("challenge.approved") == 1


@pytest.mark.parametrize("reason, expected", [(None, "declined"), ("cancelled", "cancelled"),
                                              ("unknown_trigger", "unknown_trigger")])
def test_decline_with_and_without_reason(world, enrolled, publisher, reason, expected):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    assert world.app.decline(req, reason, now=world.now)["result"]["value"] is True
    out = world.outcome(sel["challenge_id"])
    assert out["status"] == "declined" and out["reason"] == expected
    declined = [e for e in publisher.published if e["type"] == "challenge.declined"]
    assert declined[0]["data"]["reason"] == expected
    assert ("push.fraud_reported" in publisher.types()) == (reason == "unknown_trigger")


def test_unsigned_decline_reason_is_refused(world, enrolled):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    fields = {"serial": req.serial, "nonce": req.nonce, "decline": "1",
              "decline_reason": "cancelled", "signature": sign(token.private_key, f"{req.nonce}|{req.serial}|decline")}
    assert world.app.answer_raw(req.url, fields)["result"]["value"] is False
    assert world.outcome(sel["challenge_id"])["status"] == "pending"


def test_unknown_trigger_blocks_further_pushes(world, enrolled, clock, publisher):
    token = enrolled()
    world.login()
    world.app.decline(only_request(world, token), "unknown_trigger", now=world.now)
    fraud = next(e for e in publisher.published if e["type"] == "push.fraud_reported")
    assert fraud["data"]["blocked_until"].startswith("2026-11-28T21:00:00")
    r = world.api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=world.challenge_headers)
    body = r.json()
    r = world.api.post(f"/v1/challenges/{body['challenge_id']}/select",
                       json={"token_id": body["factors"][0]["token_id"]}, headers=world.challenge_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "push_blocked"
    assert 3590 <= int(r.headers["Retry-After"]) <= 3600
    clock.advance(3601)
    world.login()  # the block is over


def test_wrong_then_right_presence_answer(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    wrong = next(o for o in req.options if o != sel["presence_answer"])
    assert world.app.accept(req, wrong, now=world.now)["result"]["value"] is False
    assert world.outcome(sel["challenge_id"])["status"] == "pending"
    assert world.app.accept(req, sel["presence_answer"], now=world.now)["result"]["value"] is True
    assert world.outcome(sel["challenge_id"])["status"] == "approved"


def test_accept_without_presence_answer_is_refused(world, enrolled):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    fields = {"serial": req.serial, "nonce": req.nonce, "signature": sign(token.private_key, f"{req.nonce}|{req.serial}")}
    assert world.app.answer_raw(req.url, fields)["result"]["value"] is False
    assert world.outcome(sel["challenge_id"])["status"] == "pending"


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "push_presence_options": 0}])
def test_without_number_matching_a_plain_accept_works(world, enrolled):
    token = enrolled()
    sel = world.login()
    assert sel["presence_answer"] is None
    req = only_request(world, token)
    assert req.options is None
    assert world.app.accept(req, now=world.now)["result"]["value"] is True


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "push_presence_type": "ALPHABETIC",
                                            "push_presence_options": 5}])
def test_alphabetic_presence_options(world, enrolled):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    assert len(req.options) == 5 and all(o.isalpha() and len(o) == 1 for o in req.options)
    assert sel["presence_answer"] in req.options


def test_forged_signature_is_refused(world, enrolled):
    token = enrolled()
    other = world.enroll("mallory")  # another phone's key
    sel = world.login()
    req = only_request(world, token)
    forged = {"serial": req.serial, "nonce": req.nonce, "presence_answer": sel["presence_answer"],
              "signature": sign(other.private_key, f"{req.nonce}|{req.serial}|{sel['presence_answer']}")}
    assert world.app.answer_raw(req.url, forged)["result"] == {"status": True, "value": False}
    garbage = dict(forged, signature="not base32 !!")
    assert world.app.answer_raw(req.url, garbage)["result"]["value"] is False
    assert world.outcome(sel["challenge_id"])["status"] == "pending"


def test_answer_after_expiry_is_refused_even_without_the_expiry_worker(world, enrolled, clock):
    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    clock.advance(120)
    assert world.app.accept(req, sel["presence_answer"], now=req.received_at)["result"]["value"] is False
    out = world.outcome(sel["challenge_id"])
    assert out["status"] == "expired"
    assert world.app.poll(token, world.ts()) == []


def test_poll_timestamp_window_edges(world, enrolled):
    token = enrolled()
    world.login()
    for offset in (-60, -50, 0, 50, 60):
        assert len(world.app.poll(token, world.ts(offset))) == 1, offset
    for offset in (-61, 61, -120):
        with pytest.raises(PollError) as exc:
            world.app.poll(token, world.ts(offset))
        assert (exc.value.status, exc.value.code) == (400, 10)
        assert "not in valid range" in exc.value.message
    naive = world.clock.now().replace(tzinfo=None).isoformat()
    offset_form = world.clock.now().astimezone().isoformat()
    for ts in (naive, offset_form, world.clock.now().isoformat().replace("+00:00", "+02:00").replace("T20", "T22")):
        assert len(world.app.poll(token, ts)) == 1, ts


def test_poll_errors_are_one_generic_answer(world, enrolled):
    token = enrolled()
    ts = world.ts()
    unknown = world.api.get(token.url, params={"serial": "PIPU00000000", "timestamp": ts,
                                               "signature": sign(token.private_key, f"PIPU00000000|{ts}")})
    bad_sig = world.api.get(token.url, params={"serial": token.serial, "timestamp": ts,
                                               "signature": sign(token.private_key, f"{token.serial}|other")})
    bad_b32 = world.api.get(token.url, params={"serial": token.serial, "timestamp": ts, "signature": "1!"})
    bodies = [r.json()["result"] for r in (unknown, bad_sig, bad_b32)]
    assert {r.status_code for r in (unknown, bad_sig, bad_b32)} == {400}
    assert all(b == {"status": False, "error": {"code": 10, "message": "ERR10: Could not verify signature!"}}
               for b in bodies)


def test_firebase_token_update(world, enrolled, ctx):
    token = enrolled()
    body = world.app.update_firebase_token(token, "fcm-new", world.ts(-290))
    assert body["result"]["value"] is True and token.fbtoken == "fcm-new"
    stale = world.app.update_firebase_token(token, "fcm-newer", world.ts(-301))
    assert world.app.last_response.status_code == 400 and stale["result"]["error"]["code"] == 10
    ts = world.ts()
    forged = world.api.post(token.url, data={"new_fb_token": "evil", "serial": token.serial, "timestamp": ts,
                                             "signature": sign(token.private_key, f"other|{token.serial}|{ts}")})
    assert forged.status_code == 400 and forged.json()["result"]["error"]["code"] == 10
    from services.core.models import PushToken, Token
    from sqlalchemy import select
    with ctx.sessions() as s:
        tok = s.scalar(select(Token).where(Token.serial == token.serial))
        pt = s.get(PushToken, tok.id)
        assert ctx.keyring.decrypt(pt.fbtoken_enc) == "fcm-new" and pt.poll_only is False


def test_per_user_caps_on_pending_and_recent_pushes(world, enrolled, clock):
    enrolled()
    for _ in range(3):
        world.login()
    r = world.api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=world.challenge_headers)
    body = r.json()
    r = world.api.post(f"/v1/challenges/{body['challenge_id']}/select",
                       json={"token_id": body["factors"][0]["token_id"]}, headers=world.challenge_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "push_pending_limit"
    for batch in (3, 3, 1):  # 10 pushes within the 600 s window, never more than 3 pending
        clock.advance(121)  # the pending ones expire
        for _ in range(batch):
            world.login()
    clock.advance(121)
    r = world.api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=world.challenge_headers)
    body = r.json()
    r = world.api.post(f"/v1/challenges/{body['challenge_id']}/select",
                       json={"token_id": body["factors"][0]["token_id"]}, headers=world.challenge_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "push_rate_limited"


def test_selecting_push_twice_on_one_challenge_is_refused(world, enrolled):
    enrolled()
    sel = world.login()
    r = world.api.post(f"/v1/challenges/{sel['challenge_id']}/select",
                       json={"token_id": sel["selected_token_id"]}, headers=world.challenge_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "push_already_sent"


def test_long_poll_returns_when_the_phone_answers(world, enrolled):
    import threading

    token = enrolled()
    sel = world.login()
    req = only_request(world, token)
    timer = threading.Timer(0.3, lambda: world.app.accept(req, sel["presence_answer"], now=world.now))
    timer.start()
    import time
    t0 = time.monotonic()
    r = world.api.get(f"/v1/challenges/{sel['challenge_id']}?wait=5", headers=world.challenge_headers)
    took = time.monotonic() - t0
    timer.join()
    assert r.json()["status"] == "approved" and 0.2 < took < 2


def test_long_poll_times_out_pending_and_bounds_wait(world, enrolled):
    enrolled()
    sel = world.login()
    r = world.api.get(f"/v1/challenges/{sel['challenge_id']}?wait=1", headers=world.challenge_headers)
    assert r.json()["status"] == "pending"
    r = world.api.get(f"/v1/challenges/{sel['challenge_id']}?wait=31", headers=world.challenge_headers)
    assert r.status_code == 422


def test_an_approved_push_covers_the_other_area_opened_with_it(world, enrolled, publisher):
    token = enrolled()
    world.protect(area="portal-security")
    r = world.api.post("/v1/challenges", json={"user_id": "alice", "area": "portal-security"},
                       headers=world.challenge_headers)
    security = r.json()["challenge_id"]
    sel = world.login()
    world.app.accept(only_request(world, token), sel["presence_answer"], now=world.now)
    r = world.api.post(f"/v1/challenges/{security}/cover",
                       json={"answered_challenge_id": sel["challenge_id"]},
                       headers=world.challenge_headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["selected_type"]) == ("approved", "push")
    assert world.outcome(security)["status"] == "approved"
    (covered,) = [e for e in publisher.published if e["type"] == "challenge.covered"]
    assert covered["data"]["area"] == "portal-security"
    assert covered["data"]["token_type"] == "push"
