"""Step-ups (scope ``enroll``): a challenge for one sensitive action of a user.

Created here; answered through the challenge endpoints like a login (``select``,
``verify``, or the push approval, polled with ``GET /v1/challenges/{id}``); spent by the
action, which takes ``{"step_up_id": ...}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.routes.challenges import challenge_out
from services.api.schemas import ChallengeOut, StepUpIn
from services.core.challenges import step_up

router = APIRouter(prefix="/v1/users/{user_id}/step-ups", tags=["step-ups"],
                   dependencies=[Depends(require("enroll"))], responses=ERROR_RESPONSES)


@router.post("", response_model=ChallengeOut)
def create(user_id: UserId, body: StepUpIn, ctx: Ctx, correlation: Correlation) -> ChallengeOut:
    """A step-up for deleting ``token_id`` or changing ``area``, with the user's active
    factors; ``status: "not_required"`` when the user has no factor yet."""
    return challenge_out(ctx, step_up.create(ctx, user_id, body.purpose, body.target, correlation))
