"""The login step: challenge, factor choice, code, outcome (scope ``challenge``)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from services.api.challenge_waiters import waiters
from services.api.deps import Correlation, Ctx, model_response, require, run_db
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import (
    ChallengeIn,
    ChallengeOut,
    CoverIn,
    FactorOut,
    SelectIn,
    VerifyIn,
)
from services.core.challenges import cover as covering
from services.core.challenges import service as challenges
from services.core.challenges.service import ChallengeView
from services.core.errors import Conflict, InvalidCode, Unprocessable
from services.core.factors.push import login as push_login
from services.core.models import Challenge
from services.core.plumbing.clock import as_utc
from services.core.plumbing.context import Context

MAX_WAIT_SECONDS = 30
# Changes made by other processes (expiry worker, other API replicas) are seen this often.
RECHECK_SECONDS = 0.2

router = APIRouter(
    prefix="/v1/challenges", tags=["challenges"], dependencies=[Depends(require("challenge"))],
    responses=ERROR_RESPONSES,
)


def challenge_out(ctx: Context, view: ChallengeView | Challenge) -> ChallengeOut:
    if isinstance(view, Challenge):
        view = ChallengeView(view)
    c = view.challenge
    if c is None:
        return ChallengeOut(status="not_required")
    return ChallengeOut(
        status=challenges.state_now(ctx, c),  # type: ignore[arg-type]
        challenge_id=c.id,
        user_id=c.user_id,
        area=c.area,
        purpose=c.purpose,
        target=c.target,
        factors=[
            FactorOut(token_id=t.id, type=t.type, description=t.description) for t in view.factors
        ],
        selected_token_id=c.token_id,
        selected_type=c.token_type,
        attempts_left=max(0, c.max_attempts - c.attempts),
        expires_at=as_utc(c.expires_at),
        reason=c.reason,
        presence_answer=view.extras.get("presence_answer"),
        details={k: v for k, v in view.extras.items() if k != "presence_answer"},
    )


# The two steps of every TOTP login are ``async def`` and run their unit of work through
# ``run_db``: on SQLite in the event loop, elsewhere in one thread-pool call. A sync
# endpoint with a sync unit-of-work dependency would take three thread hops.
def _create(ctx: Context, correlation: str | None, body: ChallengeIn) -> ChallengeOut:
    if body.code is None:
        if body.token_id is not None:
            raise Unprocessable("token_id is sent with a code", code="invalid_input")
        return challenge_out(ctx, challenges.create(ctx, body.user_id, body.area, correlation))
    login = challenges.login(ctx, body.user_id, body.area, body.code, body.token_id, correlation)
    if login is None:
        raise Conflict(
            "no factor of this user has a code before a challenge; create the challenge "
            "without a code and select a factor",
            code="select_first",
        )
    if login.attempts_left is not None:
        challenge = login.view.challenge
        assert challenge is not None
        raise InvalidCode(
            "the code is not valid",
            attempts_left=login.attempts_left,
            challenge_id=str(challenge.id),
        )
    return challenge_out(ctx, login.view)


@router.post("", response_model=ChallengeOut)
async def create(body: ChallengeIn, ctx: Ctx, correlation: Correlation) -> Response:
    """Start a login for ``area``. Without ``code``: the challenge, its factors to choose
    from (or ``not_required``). With ``code``: the login in one request, checked at once
    against a TOTP factor (``token_id``, or the user's oldest): ``verified``; a wrong code
    answers 422 ``invalid_code`` with ``attempts_left`` and the ``challenge_id`` to retry
    on with ``verify``; a user without such a factor gets 409 ``select_first``."""
    return model_response(await run_db(ctx, _create, ctx, correlation, body))


@router.post("/{challenge_id}/select", response_model=ChallengeOut)
def select(
    challenge_id: uuid.UUID, body: SelectIn, ctx: Ctx, correlation: Correlation
) -> ChallengeOut:
    return challenge_out(
        ctx, challenges.select_factor(ctx, challenge_id, body.token_id, correlation)
    )


def _verify(
    ctx: Context, correlation: str | None, challenge_id: uuid.UUID, body: VerifyIn
) -> ChallengeOut:
    return challenge_out(
        ctx, challenges.verify(ctx, challenge_id, body.code, body.token_id, correlation)
    )


@router.post("/{challenge_id}/verify", response_model=ChallengeOut)
async def verify(
    challenge_id: uuid.UUID, body: VerifyIn, ctx: Ctx, correlation: Correlation
) -> Response:
    """Check the code. With ``token_id`` a TOTP factor is selected in the same request,
    so a TOTP login is two requests: create the challenge, verify."""
    return model_response(await run_db(ctx, _verify, ctx, correlation, challenge_id, body))


@router.post("/{challenge_id}/cover", response_model=ChallengeOut)
def cover(
    challenge_id: uuid.UUID, body: CoverIn, ctx: Ctx, correlation: Correlation
) -> ChallengeOut:
    """One answer for several areas: when a sign-in needs more than one protected area,
    create a challenge for each, answer one, and let that answer cover the others. The
    answered challenge must be the same user's, a login, verified or approved after this
    one was created, with a token that is a factor of this area; else 409 ``not_covered``.
    The covered challenge takes the answer's status and a ``challenge.covered`` event."""
    answered = body.answered_challenge_id
    return challenge_out(ctx, covering.cover(ctx, challenge_id, answered, correlation))


def _read_once(ctx: Context, challenge_id: uuid.UUID) -> ChallengeOut:
    challenge = challenges.get(ctx, challenge_id)  # one short read, released before any waiting
    return challenge_out(
        ctx, ChallengeView(challenge, [], push_login.challenge_extras(ctx, challenge))
    )


@router.get("/{challenge_id}", response_model=ChallengeOut)
async def read(
    challenge_id: uuid.UUID,
    ctx: Ctx,
    wait: Annotated[
        int,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="long-poll: seconds to wait for an outcome"),
    ] = 0,
) -> ChallengeOut:
    """The outcome; with ``wait=N`` the answer comes as soon as the challenge leaves
    ``pending`` or after N seconds. A waiter holds no DB connection and no thread: it
    sleeps on the event loop, woken by this process's push endpoint or a periodic re-read."""
    out = await run_in_threadpool(_read_once, ctx, challenge_id)
    deadline = time.monotonic() + wait
    while out.status == "pending" and (left := deadline - time.monotonic()) > 0:
        await waiters.wait(challenge_id, min(left, RECHECK_SECONDS))
        out = await run_in_threadpool(_read_once, ctx, challenge_id)
    return out
