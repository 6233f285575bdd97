"""The login step: challenge, factor choice, code, outcome (scope ``challenge``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from services.api.deps import Ctx, Uow, require
from services.api.schemas import ChallengeIn, ChallengeOut, FactorOut, SelectIn, VerifyIn
from services.core import challenges
from services.core.challenges import ChallengeView
from services.core.clock import as_utc
from services.core.context import Context
from services.core.models import Challenge

router = APIRouter(prefix="/v1/challenges", tags=["challenges"], dependencies=[Depends(require("challenge"))])


def challenge_out(ctx: Context, view: ChallengeView | Challenge) -> ChallengeOut:
    if isinstance(view, Challenge):
        view = ChallengeView(view)
    c = view.challenge
    if c is None:
        return ChallengeOut(status="not_required")
    return ChallengeOut(
        status=challenges.effective_state(ctx, c),  # type: ignore[arg-type]
        challenge_id=c.id,
        user_id=c.user_id,
        area=c.area,
        factors=[FactorOut(token_id=t.id, type=t.type, description=t.description) for t in view.factors],
        selected_token_id=c.token_id,
        selected_type=c.token_type,
        attempts_left=max(0, c.max_attempts - c.attempts),
        expires_at=as_utc(c.expires_at),
        reason=c.reason,
        presence_answer=view.extras.get("presence_answer"),
        details={k: v for k, v in view.extras.items() if k != "presence_answer"},
    )


@router.post("", response_model=ChallengeOut)
def create(body: ChallengeIn, ctx: Ctx, uow: Uow) -> ChallengeOut:
    view = challenges.create(ctx, uow, body.user_id, body.area)
    uow.commit()
    return challenge_out(ctx, view)


@router.post("/{challenge_id}/select", response_model=ChallengeOut)
def select(challenge_id: uuid.UUID, body: SelectIn, ctx: Ctx, uow: Uow) -> ChallengeOut:
    view = challenges.select_factor(ctx, uow, challenge_id, body.token_id)
    uow.commit()
    return challenge_out(ctx, view)


@router.post("/{challenge_id}/verify", response_model=ChallengeOut)
def verify(challenge_id: uuid.UUID, body: VerifyIn, ctx: Ctx, uow: Uow) -> ChallengeOut:
    """Check the code. With ``token_id`` a TOTP factor is selected in the same request,
    so a TOTP login is two requests: create the challenge, verify."""
    challenge = challenges.verify(ctx, uow, challenge_id, body.code, body.token_id)
    uow.commit()
    return challenge_out(ctx, challenge)


@router.get("/{challenge_id}", response_model=ChallengeOut)
def read(challenge_id: uuid.UUID, ctx: Ctx, uow: Uow) -> ChallengeOut:
    return challenge_out(ctx, challenges.get(ctx, uow, challenge_id))
