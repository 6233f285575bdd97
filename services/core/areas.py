"""Protected areas: which parts of the relying application need a second factor.

The catalogue is configuration (``TWOFA_AREAS``); each user chooses per area. A
user without a row for an area has it unprotected. Once the user has an active
token, every change needs a fresh valid code (step-up), because otherwise whoever
holds the portal session after the password could simply switch 2FA off.

When the user's first token becomes active, ``sso`` is protected by default (the
guide: "after successfully setting up a second factor, a second factor is now
required when logging on to single sign-on services") unless the user has already
made an explicit choice for it, which is respected.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.core.errors import NotFound
from services.core.models import AreaProtection, Token
from services.core.plumbing.clock import as_utc
from services.core.tokens.lifecycle import on_first_activation, require_step_up
from shared.events.area import AreaProtectionChanged

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

DEFAULT_AREA = "sso"


@dataclass(frozen=True)
class AreaState:
    area: str
    protected: bool
    updated_at: datetime | None = None
    changed: bool = False


def catalogue(ctx: Context) -> tuple[str, ...]:
    return ctx.settings.area_names


def display_name(ctx: Context, area: str) -> str:
    return ctx.settings.area_display_names.get(area, area)


def ensure_known(ctx: Context, area: str) -> None:
    if area not in catalogue(ctx):
        raise NotFound(f"no area named {area!r} in the catalogue", code="unknown_area")


def user_areas(ctx: Context, user_id: str) -> list[AreaState]:
    with ctx.uow() as uow:
        return _user_areas(ctx, uow, user_id)


def _user_areas(ctx: Context, uow: UnitOfWork, user_id: str) -> list[AreaState]:
    """Every catalogue area, in catalogue order, with this user's choice.

    Rows for areas that have since left the catalogue are ignored, not shown.
    """
    query = select(AreaProtection).where(AreaProtection.user_id == user_id)
    rows = {r.area: r for r in uow.session.scalars(query)}
    out = []
    for area in catalogue(ctx):
        row = rows.get(area)
        out.append(
            AreaState(
                area,
                bool(row and row.protected),
                as_utc(row.updated_at) if row is not None else None,
            )
        )
    return out


def user_area(ctx: Context, user_id: str, area: str) -> AreaState:
    ensure_known(ctx, area)
    return next(a for a in user_areas(ctx, user_id) if a.area == area)


def set_protection(
    ctx: Context,
    user_id: str,
    area: str,
    protected: bool,
    *,
    code: str | None,
    verify_with: uuid.UUID | None = None,
    correlation_id: str | None = None,
    step_up_id: uuid.UUID | None = None,
) -> AreaState:
    """Turn protection of ``area`` on or off for ``user_id``; once the user has an active
    token this needs a step-up passed for this area (``step_up_id``) or a valid code.

    The area is checked before the step-up so that a typo does not burn a code.
    The step-up is required even when the value would not change: the caller
    cannot learn the current setting by probing without a code (they can read it
    with ``GET``, which is the honest way). An unchanged value emits no event.
    """
    ensure_known(ctx, area)
    with ctx.uow(correlation_id) as uow:
        require_step_up(
            ctx, uow, user_id, code, verify_with, purpose="step_up",
            action=("set_area", area), step_up_id=step_up_id,
        )
        state = _apply(ctx, uow, user_id, area, protected, by_default=False)
        uow.commit()
    return state


def _apply(
    ctx: Context, uow: UnitOfWork, user_id: str, area: str, protected: bool, *, by_default: bool
) -> AreaState:
    now = ctx.clock.now()
    row = uow.session.get(AreaProtection, (user_id, area))
    if row is not None and row.protected == protected:
        return AreaState(area, protected, as_utc(row.updated_at), changed=False)
    if row is None:
        row = AreaProtection(user_id=user_id, area=area, protected=protected, updated_at=now)
        uow.session.add(row)
    else:
        row.protected, row.updated_at = protected, now
    uow.emit(
        AreaProtectionChanged(area=area, protected=protected, by_default=by_default),
        user_id=user_id,
    )
    return AreaState(area, protected, now, changed=True)


@on_first_activation
def protect_sso_by_default(ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
    """First active token: protect ``sso`` unless the user already chose for it."""
    if not ctx.settings.protect_sso_on_first_token or DEFAULT_AREA not in catalogue(ctx):
        return {}
    if uow.session.get(AreaProtection, (token.user_id, DEFAULT_AREA)) is not None:
        return {}  # an explicit earlier choice (or the default from a previous setup) stands
    _apply(ctx, uow, token.user_id, DEFAULT_AREA, True, by_default=True)
    return {"areas_protected_by_default": [DEFAULT_AREA]}
