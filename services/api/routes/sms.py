"""Asking for an SMS code again: during enrollment (scope ``enroll``) and during a login
challenge (scope ``challenge``). Throttled: 429 with Retry-After, nothing changes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.core.factors.sms import resend


class ResendOut(BaseModel):
    message_id: uuid.UUID
    phone: str | None
    code_ttl_seconds: int


enroll_router = APIRouter(prefix="/v1/users/{user_id}/tokens", tags=["tokens"],
                          dependencies=[Depends(require("enroll"))], responses=ERROR_RESPONSES)
challenge_router = APIRouter(prefix="/v1/challenges", tags=["challenges"],
                             dependencies=[Depends(require("challenge"))],
                             responses=ERROR_RESPONSES)


@enroll_router.post("/{token_id}/sms/resend", status_code=202, response_model=ResendOut)
def resend_enrollment_code(
    user_id: UserId, token_id: uuid.UUID, ctx: Ctx, correlation: Correlation
) -> ResendOut:
    token, row = resend.for_enrollment(ctx, user_id, token_id, correlation)
    return ResendOut(
        message_id=row.id,
        phone=token.phone_masked,
        code_ttl_seconds=ctx.settings.sms_code_ttl_seconds,
    )


@challenge_router.post("/{challenge_id}/sms/resend", status_code=202, response_model=ResendOut)
def resend_login_code(challenge_id: uuid.UUID, ctx: Ctx, correlation: Correlation) -> ResendOut:
    token, row = resend.for_challenge(ctx, challenge_id, correlation)
    return ResendOut(
        message_id=row.id,
        phone=token.phone_masked,
        code_ttl_seconds=ctx.settings.sms_code_ttl_seconds,
    )
