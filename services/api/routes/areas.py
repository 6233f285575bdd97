"""Protected areas: the catalogue and each user's choice.

``GET /v1/areas`` accepts a key with scope ``enroll`` (the portal renders the
choices) or ``challenge`` (a login service needs the valid area names). The
catalogue is configuration, not a secret. The per-user endpoints need ``enroll``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from services.api.deps import Correlation, Ctx, UserId, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import StepUpProof
from services.core import areas
from services.core.plumbing.context import Context

router = APIRouter(tags=["areas"], responses=ERROR_RESPONSES)

_enroll = require("enroll")
# The catalogue is configuration, not a secret: the portal and login services both read it.
require_catalogue_reader = require("enroll", "challenge")

AreaPath = Annotated[str, Path(min_length=1, max_length=64)]


class CatalogueOut(BaseModel):
    areas: list[str]
    display_names: dict[str, str] = Field(
        description="the name people read for each area (TWOFA_AREAS `slug=Display name`)"
    )


class AreaOut(BaseModel):
    area: str
    display_name: str
    protected: bool
    updated_at: datetime | None = None


class AreaChangeOut(AreaOut):
    changed: bool


class UserAreasOut(BaseModel):
    user_id: str
    areas: list[AreaOut]


class AreaIn(StepUpProof):
    protected: bool


def _out(ctx: Context, state: areas.AreaState) -> AreaOut:
    return AreaOut(area=state.area, display_name=areas.display_name(ctx, state.area),
                   protected=state.protected, updated_at=state.updated_at)


@router.get(
    "/v1/areas", response_model=CatalogueOut, dependencies=[Depends(require_catalogue_reader)]
)
def catalogue(ctx: Ctx) -> CatalogueOut:
    return CatalogueOut(areas=list(areas.catalogue(ctx)),
                        display_names=ctx.settings.area_display_names)


@router.get(
    "/v1/users/{user_id}/areas", response_model=UserAreasOut, dependencies=[Depends(_enroll)]
)
def user_areas(user_id: UserId, ctx: Ctx) -> UserAreasOut:
    listed = [_out(ctx, a) for a in areas.user_areas(ctx, user_id)]
    return UserAreasOut(user_id=user_id, areas=listed)


@router.get(
    "/v1/users/{user_id}/areas/{area}", response_model=AreaOut, dependencies=[Depends(_enroll)]
)
def user_area(user_id: UserId, area: AreaPath, ctx: Ctx) -> AreaOut:
    return _out(ctx, areas.user_area(ctx, user_id, area))


@router.put(
    "/v1/users/{user_id}/areas/{area}",
    response_model=AreaChangeOut,
    dependencies=[Depends(_enroll)],
)
def set_area(
    user_id: UserId, area: AreaPath, body: AreaIn, ctx: Ctx, correlation: Correlation
) -> AreaChangeOut:
    """Needs, once the user has an active token, a step-up passed for this area
    (``step_up_id``) or a fresh valid code (``code``, optionally ``verify_token_id``):
    403 ``step_up_required`` without either, 403 ``step_up_*`` for a step-up that is
    not usable here, 422 for a wrong or replayed code. An unknown area is 404 ``unknown_area``."""
    state = areas.set_protection(
        ctx,
        user_id,
        area,
        body.protected,
        code=body.code,
        verify_with=body.verify_token_id,
        correlation_id=correlation,
        step_up_id=body.step_up_id,
    )
    return AreaChangeOut(**_out(ctx, state).model_dump(), changed=state.changed)
