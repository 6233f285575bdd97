"""A user's contact address for security notifications (scope ``enroll``: the portal or
a login service, acting for the user).

``PUT`` needs a passed ``set_contact`` step-up (``step_up_id``, answered with any factor)
or a fresh code from one of the user's active factors, like every other change to their
security settings: 403 ``step_up_required`` without one. A malformed
address is 422 ``invalid_email`` and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import StepUpProof
from services.core.notify import contact

router = APIRouter(tags=["notifications"], dependencies=[Depends(require("enroll"))],
                   responses=ERROR_RESPONSES)


class ContactIn(StepUpProof):
    email: Annotated[str | None, Field(max_length=320)]  # null removes the address


class ContactOut(BaseModel):
    user_id: str
    email: str | None


@router.get("/v1/users/{user_id}/contact", response_model=ContactOut)
def read(user_id: UserId, ctx: Ctx) -> ContactOut:
    return ContactOut(user_id=user_id, email=contact.get_email(ctx, user_id))


@router.put("/v1/users/{user_id}/contact", response_model=ContactOut)
def update(user_id: UserId, body: ContactIn, ctx: Ctx, correlation: Correlation) -> ContactOut:
    email = contact.set_email(
        ctx,
        user_id,
        body.email,
        code=body.code,
        verify_with=body.verify_token_id,
        step_up_id=body.step_up_id,
        correlation_id=correlation,
    )
    return ContactOut(user_id=user_id, email=email)
