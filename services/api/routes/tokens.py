"""Enrollment, overview and deletion of a user's tokens (scope ``enroll``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import CodeIn, DeleteIn, EnrollIn, EnrollmentOut, TokenListOut, TokenOut
from services.core import recovery
from services.core.factors.base import EnrollRequest
from services.core.tokens import service

router = APIRouter(
    prefix="/v1/users/{user_id}/tokens", tags=["tokens"], dependencies=[Depends(require("enroll"))],
    responses=ERROR_RESPONSES,
)


@router.post("", status_code=201, response_model=EnrollmentOut)
def start_enrollment(
    user_id: UserId, body: EnrollIn, ctx: Ctx, correlation: Correlation
) -> EnrollmentOut:
    req = EnrollRequest(type=body.type, description=body.description.strip(), phone=body.phone)
    result = service.start_enrollment(ctx, user_id, req, correlation)
    return EnrollmentOut(token=TokenOut.of(result.token), details=result.details)


@router.get("", response_model=TokenListOut)
def overview(user_id: UserId, ctx: Ctx) -> TokenListOut:
    kept = recovery.status(ctx, user_id)
    return TokenListOut(tokens=[TokenOut.of(t) for t in service.overview(ctx, user_id)],
                        recovery_token_issued=kept.issued,
                        recovery_token_available=kept.downloadable)


@router.post("/{token_id}/scanned", response_model=EnrollmentOut)
def scanned(
    user_id: UserId, token_id: uuid.UUID, ctx: Ctx, correlation: Correlation
) -> EnrollmentOut:
    result = service.mark_scanned(ctx, user_id, token_id, correlation)
    return EnrollmentOut(token=TokenOut.of(result.token))


@router.post("/{token_id}/activate", response_model=EnrollmentOut)
def activate(
    user_id: UserId, token_id: uuid.UUID, body: CodeIn, ctx: Ctx, correlation: Correlation
) -> EnrollmentOut:
    result = service.activate(ctx, user_id, token_id, body.code, correlation)
    return EnrollmentOut(token=TokenOut.of(result.token), details=result.details)


@router.post("/{token_id}/confirm", response_model=EnrollmentOut)
def confirm(
    user_id: UserId, token_id: uuid.UUID, body: CodeIn, ctx: Ctx, correlation: Correlation
) -> EnrollmentOut:
    result = service.confirm(ctx, user_id, token_id, body.code, correlation)
    return EnrollmentOut(token=TokenOut.of(result.token), details=result.details)


@router.delete("/{token_id}", status_code=200, response_model=TokenOut)
def delete(
    user_id: UserId, token_id: uuid.UUID, body: DeleteIn, ctx: Ctx, correlation: Correlation
) -> TokenOut:
    """Needs a step-up passed for deleting this token (``step_up_id``) or ``code`` from
    any of the user's active code tokens (``verify_token_id`` names one); an enrollment
    not finished yet is cancelled without either. Answers the token as it
    was, with ``state: "deleted"``."""
    token = service.delete_token(
        ctx, user_id, token_id, body.code or "", body.verify_token_id, correlation, body.step_up_id
    )
    return TokenOut.of(token).model_copy(update={"state": "deleted", "locked": False})
