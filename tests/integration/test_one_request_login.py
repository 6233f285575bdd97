"""The login in one request: ``POST /v1/challenges`` with ``code`` creates the challenge and
checks the code in one unit of work, with one event for the outcome."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from services.core.models import AreaProtection, Challenge, OutboxEvent, Token
from services.core.plumbing.context import Context
from shared.types import mask_phone
from tests.integration.helpers import active_totp, in_threads, totp_code


def protect(ctx: Context, user: str = "alice", area: str = "sso") -> None:
    with ctx.sessions.begin() as s:
        if s.get(AreaProtection, (user, area)) is None:
            s.add(AreaProtection(user_id=user, area=area, protected=True, updated_at=ctx.clock.now()))


def events(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    with ctx.sessions() as s:
        return [(r.type, r.envelope) for r in s.execute(
            select(OutboxEvent.type, OutboxEvent.envelope).order_by(OutboxEvent.seq))]


def challenges_of(ctx: Context, user: str = "alice") -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(Challenge).where(Challenge.user_id == user))


def login(api, headers, code: str, user: str = "alice", **extra: str):
    return api.post("/v1/challenges", json={"user_id": user, "area": "sso", "code": code, **extra},
                    headers=headers)


def add_sms_token(ctx: Context, user: str = "alice") -> uuid.UUID:
    token_id = uuid.uuid4()
    with ctx.sessions.begin() as s:
        s.add(Token(id=token_id, user_id=user, type="sms", description="phone", state="active", drift=0,
                    failures=0, created_at=ctx.clock.now(), phone_enc=ctx.keyring.encrypt("+4915112345678"),
                    phone_masked=mask_phone("+4915112345678")))
    return token_id


def test_a_right_code_is_a_verified_login_with_one_event(ctx, api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    before = len(events(ctx))
    r = login(api, challenge_headers, totp_code(secret, clock))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "verified" and body["selected_token_id"] == token_id
    after = events(ctx)[before:]
    assert [t for t, _ in after] == ["challenge.verified"]
    envelope = after[0][1]  # who, which factor, which area, the outcome
    assert envelope["user_id"] == "alice"
    assert envelope["data"] == {"challenge_id": body["challenge_id"], "area": "sso",
                                "token_id": token_id, "token_type": "totp"}
    # the challenge exists, verified, for whatever reads it later (cover, GET)
    read = api.get(f"/v1/challenges/{body['challenge_id']}", headers=challenge_headers).json()
    assert read["status"] == "verified"


def test_the_same_code_twice_is_refused_the_second_time(ctx, api, enroll_headers, challenge_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    code = totp_code(secret, clock)
    assert login(api, challenge_headers, code).status_code == 200
    r = login(api, challenge_headers, code)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_code"


def test_a_wrong_code_counts_once_and_can_be_retried_on_its_challenge(ctx, api, enroll_headers, challenge_headers,
                                                                      clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    before = len(events(ctx))
    r = login(api, challenge_headers, "000000")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_code"
    assert error["attempts_left"] == ctx.settings.challenge_max_attempts - 1
    after = events(ctx)[before:]
    assert [t for t, _ in after] == ["challenge.failed"]
    assert after[0][1]["data"]["reason"] == "invalid_code"
    assert "000000" not in str(after)
    with ctx.sessions() as s:
        challenge = s.get(Challenge, uuid.UUID(error["challenge_id"]))
        token = s.get(Token, uuid.UUID(token_id))
        assert challenge.state == "pending" and challenge.attempts == 1 and str(challenge.token_id) == token_id
        assert token.failures == 1
    r = api.post(f"/v1/challenges/{error['challenge_id']}/verify", json={"code": totp_code(secret, clock)},
                 headers=challenge_headers)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    with ctx.sessions() as s:
        assert s.get(Token, uuid.UUID(token_id)).failures == 0  # a success resets the count


def test_a_user_without_a_code_ready_factor_is_told_to_select_and_nothing_is_written(
        ctx, api, challenge_headers):
    add_sms_token(ctx)
    protect(ctx)
    before = len(events(ctx))
    r = login(api, challenge_headers, "123456")
    assert r.status_code == 409 and r.json()["error"]["code"] == "select_first", r.text
    assert len(events(ctx)) == before and challenges_of(ctx) == 0


def test_naming_a_factor_that_is_not_code_ready_or_not_the_users_is_refused(
        ctx, api, enroll_headers, challenge_headers, clock):
    active_totp(api, enroll_headers, clock)
    _, bob_secret = active_totp(api, enroll_headers, clock, user="bob")
    sms = add_sms_token(ctx)
    protect(ctx)
    with ctx.sessions() as s:
        bob_token = s.scalar(select(Token.id).where(Token.user_id == "bob"))
    before = len(events(ctx))
    r = login(api, challenge_headers, "123456", token_id=str(sms))
    assert r.status_code == 409 and r.json()["error"]["code"] == "select_first"
    r = login(api, challenge_headers, totp_code(bob_secret, clock), token_id=str(bob_token))
    assert r.status_code == 404 and r.json()["error"]["code"] == "factor_not_found"
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso", "token_id": str(sms)},
                 headers=challenge_headers)
    assert r.status_code == 422
    assert len(events(ctx)) == before and challenges_of(ctx) == 0


def test_an_unprotected_area_needs_no_code(ctx, api, enroll_headers, challenge_headers, clock):
    r = login(api, challenge_headers, "123456", user="nobody")
    assert r.status_code == 200 and r.json()["status"] == "not_required"
    assert [t for t, _ in events(ctx)][-1] == "challenge.not_required"


def test_during_a_back_off_the_code_is_not_looked_at_and_nothing_is_written(
        ctx, api, enroll_headers, challenge_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    for _ in range(ctx.settings.free_failures + 1):
        assert login(api, challenge_headers, "000000").status_code == 422
    before, count = len(events(ctx)), challenges_of(ctx)
    r = login(api, challenge_headers, totp_code(secret, clock))
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert len(events(ctx)) == before and challenges_of(ctx) == count


def test_a_one_request_login_covers_another_area(ctx, api, enroll_headers, challenge_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    protect(ctx, area="portal-security")
    other = api.post("/v1/challenges", json={"user_id": "alice", "area": "portal-security"},
                     headers=challenge_headers).json()
    done = login(api, challenge_headers, totp_code(secret, clock)).json()
    r = api.post(f"/v1/challenges/{other['challenge_id']}/cover",
                 json={"answered_challenge_id": done["challenge_id"]}, headers=challenge_headers)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text


def test_concurrent_right_codes_verify_once(ctx, api, enroll_headers, challenge_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    code = totp_code(secret, clock)
    before = len(events(ctx))
    statuses = sorted(in_threads(4, lambda _: login(api, challenge_headers, code).status_code))
    assert statuses == [200, 422, 422, 422], statuses
    assert [t for t, _ in events(ctx)[before:]].count("challenge.verified") == 1


def test_a_concurrent_burst_of_wrong_codes_during_a_back_off_counts_at_most_one(
        ctx, api, enroll_headers, challenge_headers, clock):
    token_id, _ = active_totp(api, enroll_headers, clock)
    protect(ctx)
    free = ctx.settings.free_failures
    for _ in range(free):
        assert login(api, challenge_headers, "000000").status_code == 422
    statuses = in_threads(8, lambda _: login(api, challenge_headers, "000000").status_code)
    assert statuses.count(422) == 1 and statuses.count(429) == 7, statuses
    with ctx.sessions() as s:
        assert s.get(Token, uuid.UUID(token_id)).failures == free + 1


def test_the_audit_chain_records_who_which_factor_which_area_and_the_outcome(
        ctx, api, enroll_headers, challenge_headers, clock, publisher):
    from services.core.audit.service import record_many_in, verifier_for
    from services.core.audit.verify import verify_chain
    from services.core.models import AuditEntry

    _, secret = active_totp(api, enroll_headers, clock)
    protect(ctx)
    start = len(publisher.published)
    assert login(api, challenge_headers, "000000").status_code == 422
    assert login(api, challenge_headers, totp_code(secret, clock)).status_code == 200
    record_many_in(ctx, publisher.published)
    with ctx.sessions() as s:
        assert verify_chain(s, verifier_for(ctx)).ok
        ids = [e["event_id"] for e in publisher.published[start:]]
        rows = s.scalars(select(AuditEntry).where(AuditEntry.event_id.in_([uuid.UUID(i) for i in ids]))
                         .order_by(AuditEntry.position)).all()
    assert [(r.type, r.user_id, r.factor, r.outcome, r.envelope["data"]["area"]) for r in rows] == [
        ("challenge.failed", "alice", "totp", "failure", "sso"),
        ("challenge.verified", "alice", "totp", "success", "sso"),
    ]
