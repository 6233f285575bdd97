"""The recovery token: the one download, and the 2FA reset (scope ``enroll``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import Strict
from services.core import recovery

router = APIRouter(
    prefix="/v1/users/{user_id}", tags=["recovery"], dependencies=[Depends(require("enroll"))],
    responses=ERROR_RESPONSES,
)


class RecoveryIn(Strict):
    # 32 hex digits, with or without separators (spaces, dashes), any case.
    recovery_token: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9 _\-]+$")


class RecoveryOut(BaseModel):
    reset: bool
    tokens_removed: int


@router.get(
    "/recovery-token",
    # No response_class here: it would also relabel the JSON error responses as text/plain.
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "the file, offered once",
        },
        404: {"description": "no recovery token issued"},
        410: {"description": "already downloaded"},
    },
)
def download(user_id: UserId, ctx: Ctx, correlation: Correlation) -> PlainTextResponse:
    """Returns the recovery token once, as a text file; the next call gets 410 Gone."""
    file = recovery.download(ctx, user_id, correlation)
    return PlainTextResponse(
        file.text,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/recovery", response_model=RecoveryOut)
def redeem(user_id: UserId, body: RecoveryIn, ctx: Ctx, correlation: Correlation) -> RecoveryOut:
    """Removes all of the user's tokens; the recovery token never works again.

    Wrong tokens: 422 ``invalid_recovery_token``; after a few, 429 with Retry-After.
    """
    removed = recovery.redeem(ctx, user_id, body.recovery_token, correlation)
    return RecoveryOut(reset=True, tokens_removed=removed)
