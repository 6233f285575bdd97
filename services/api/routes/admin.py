"""Administration of a user's lockout (scope ``admin``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.api.deps import Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import Strict
from services.core import lockout

router = APIRouter(
    prefix="/v1/users/{user_id}", tags=["admin"], dependencies=[Depends(require("admin"))],
    responses=ERROR_RESPONSES,
)


class UnlockIn(Strict):
    token_id: uuid.UUID | None = None  # one token; without it, every token of the user


class UnlockOut(BaseModel):
    user_id: str
    unlocked_token_ids: list[uuid.UUID]


@router.post("/unlock", response_model=UnlockOut)
def unlock(user_id: UserId, ctx: Ctx, body: UnlockIn | None = None) -> UnlockOut:
    """Clear the user's back-off and the failure count, back-off and lock of one token (or
    of all of them); the tokens that changed get a ``token.unlocked`` event."""
    changed = lockout.unlock(ctx, user_id, body.token_id if body else None)
    return UnlockOut(user_id=user_id, unlocked_token_ids=changed)
