"""The two-request TOTP login: ``verify`` with ``token_id`` selects and verifies at once."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from services.core.plumbing.context import Context
from services.core.models import AreaProtection, Challenge, OutboxEvent, Token
from tests.integration.helpers import active_totp, totp_code


def open_challenge(api, headers, user="alice") -> str:
    ctx: Context = api.app.state.ctx
    with ctx.sessions.begin() as s:
        if s.get(AreaProtection, (user, "sso")) is None:
            s.add(AreaProtection(user_id=user, area="sso", protected=True, updated_at=ctx.clock.now()))
    c = api.post("/v1/challenges", json={"user_id": user, "area": "sso"}, headers=headers).json()
    assert c["status"] == "pending", c
    return c["challenge_id"]


def event_types(ctx: Context) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxEvent.type).order_by(OutboxEvent.seq)))


def test_a_totp_login_is_two_requests(ctx, api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    before = len(event_types(ctx))
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(secret, clock), "token_id": token_id},
                 headers=challenge_headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "verified"
    assert r.json()["selected_token_id"] == token_id
    # the audit trail is the same as select + verify
    assert event_types(ctx)[before:] == ["challenge.factor_selected", "challenge.verified"]


def test_a_wrong_code_with_token_id_counts_an_attempt_and_keeps_the_selection(ctx, api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": "000000", "token_id": token_id}, headers=challenge_headers)
    assert r.status_code == 422
    with ctx.sessions() as s:
        c = s.get(Challenge, uuid.UUID(cid))
        assert c.attempts == 1 and str(c.token_id) == token_id
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(secret, clock), "token_id": token_id},
                 headers=challenge_headers)
    assert r.status_code == 200, r.text


def test_token_id_of_another_user_is_refused_and_changes_nothing(ctx, api, enroll_headers, challenge_headers, clock):
    active_totp(api, enroll_headers, clock, user="alice")
    bob_token, bob_secret = active_totp(api, enroll_headers, clock, user="bob")
    cid = open_challenge(api, challenge_headers, user="alice")
    before = event_types(ctx)
    with ctx.sessions() as s:
        bob_step = s.get(Token, uuid.UUID(bob_token)).last_step
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(bob_secret, clock), "token_id": bob_token},
                 headers=challenge_headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "factor_not_found"
    assert event_types(ctx) == before
    with ctx.sessions() as s:
        assert s.get(Challenge, uuid.UUID(cid)).token_id is None
        assert s.get(Token, uuid.UUID(bob_token)).last_step == bob_step  # bob's code not spent


def test_token_id_must_match_an_earlier_selection(api, enroll_headers, challenge_headers, clock):
    first, secret = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    assert api.post(f"/v1/challenges/{cid}/select", json={"token_id": first}, headers=challenge_headers).status_code == 200
    other = str(uuid.uuid4())
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(secret, clock), "token_id": other},
                 headers=challenge_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "factor_mismatch"
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(secret, clock), "token_id": first},
                 headers=challenge_headers)
    assert r.status_code == 200, r.text


def test_verify_without_selection_or_token_id_still_asks_for_a_selection(api, enroll_headers, challenge_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    r = api.post(f"/v1/challenges/{cid}/verify", json={"code": totp_code(secret, clock)}, headers=challenge_headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "no_factor_selected"
