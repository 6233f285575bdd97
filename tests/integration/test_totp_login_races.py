"""A verify decides from a read taken before the write lock; what changed
in between must be caught by its compare-and-set writes and change nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, select, update

from services.core.challenges import service as challenges
from services.core.plumbing.context import Context
from services.core.errors import Conflict
from services.core.models import Challenge, ChallengeState, OutboxEvent, Token
from tests.integration.helpers import active_totp, totp_code
from tests.integration.test_verify_with_token import open_challenge


def stale_row(ctx: Context, cid: str, token_id: str):
    return challenges.snapshot(ctx, uuid.UUID(cid), uuid.UUID(token_id))


def snapshot(ctx: Context, cid: str, token_id: str) -> tuple:
    with ctx.sessions() as s:
        c = s.get(Challenge, uuid.UUID(cid))
        t = s.get(Token, uuid.UUID(token_id))
        events = s.scalar(select(OutboxEvent.seq).order_by(OutboxEvent.seq.desc()).limit(1))
        return (c.state, c.attempts, c.token_id) if c else None, (t.last_step, t.failures) if t else None, events


@pytest.mark.parametrize("code_ok", [True, False])
def test_a_challenge_closed_since_the_read_is_not_verified_or_counted(ctx, api, enroll_headers, challenge_headers,
                                                                     clock, code_ok):
    token_id, secret = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    row = stale_row(ctx, cid, token_id)
    with ctx.sessions.begin() as s:  # a concurrent answer closes it
        s.execute(update(Challenge).where(Challenge.id == uuid.UUID(cid)).values(state=ChallengeState.FAILED))
    before = snapshot(ctx, cid, token_id)
    code = totp_code(secret, clock) if code_ok else "000000"
    with pytest.raises(Conflict) as err:
        challenges.verify_snapshot(ctx, row, code, uuid.UUID(token_id))
    assert err.value.code == "challenge_closed"
    assert snapshot(ctx, cid, token_id) == before  # the step is not used up, no failure counted, no event


def test_a_factor_deleted_since_the_read_is_refused_and_nothing_is_counted(ctx, api, enroll_headers,
                                                                           challenge_headers, clock):
    token_id, _ = active_totp(api, enroll_headers, clock)
    cid = open_challenge(api, challenge_headers)
    row = stale_row(ctx, cid, token_id)
    with ctx.sessions.begin() as s:
        s.execute(delete(Token).where(Token.id == uuid.UUID(token_id)))
    before = snapshot(ctx, cid, token_id)
    with pytest.raises(Conflict) as err:
        challenges.verify_snapshot(ctx, row, "000000", uuid.UUID(token_id))
    assert err.value.code == "factor_unusable"
    assert snapshot(ctx, cid, token_id) == before


def test_a_step_taken_since_the_read_is_a_replay(ctx, api, enroll_headers, challenge_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    first, second = open_challenge(api, challenge_headers), open_challenge(api, challenge_headers)
    row = stale_row(ctx, second, token_id)  # read before the first login uses the code
    code = totp_code(secret, clock)
    r = api.post(f"/v1/challenges/{first}/verify", json={"code": code, "token_id": token_id},
                 headers=challenge_headers)
    assert r.json()["status"] == "verified"
    with pytest.raises(Exception) as err:
        challenges.verify_snapshot(ctx, row, code, uuid.UUID(token_id))
    assert getattr(err.value, "code", None) == "invalid_code"
    with ctx.sessions() as s:
        assert s.get(Challenge, uuid.UUID(second)).attempts == 1  # counted as a wrong code
