"""Step-ups: a challenge whose success allows one sensitive action of its user.

A step-up is created for (user, purpose, target), answered like any challenge (select a
factor: SMS sends a code, PUSH an approval, TOTP takes a code; then verify or approve),
and spent by the action it was asked for, in that action's unit of work: the spend is a
compare-and-set, so it happens once, and the action's rollback gives it back.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from services.core.challenges import rules, store
from services.core.challenges.service import ChallengeView, new_challenge
from services.core.errors import DomainError, Forbidden, NotFound, Unprocessable
from services.core.models import Challenge, ChallengeState, Token
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import read_only, transient
from shared.events.challenge import ChallengePurpose

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

# The area a step-up's challenge events carry: a step-up is not a login to an area.
STEP_UP_AREA: Final = "step_up"
PURPOSES: Final[tuple[ChallengePurpose, ...]] = ("delete_token", "set_area", "set_contact")
# The one target of a ``set_contact`` step-up: the address notifications go to.
CONTACT_TARGET: Final = "email"


def create(
    ctx: Context,
    user_id: str,
    purpose: ChallengePurpose,
    target: str,
    correlation_id: str | None = None,
) -> ChallengeView:
    """Open a step-up for one action; every active factor of the user may answer it.

    A user without any factor needs no step-up (``ChallengeView(None)``); a user whose
    every factor is locked gets none either (403 ``factors_locked``): locking them all by
    guessing must not open the settings."""
    if purpose not in PURPOSES:
        raise Unprocessable(f"unknown step-up purpose {purpose!r}", code="unknown_purpose")
    with read_only(ctx.engine) as conn:
        _refuse_unknown_target(ctx, conn, user_id, purpose, target)
        factors, any_locked = store.user_factors(conn, user_id)
    if not factors:
        if any_locked:
            raise Forbidden(
                "every token is locked; reset with the recovery token", code="factors_locked"
            )
        return ChallengeView(None)
    with ctx.uow(correlation_id) as uow:
        values = new_challenge(ctx, uow, user_id, STEP_UP_AREA, purpose, target)
        store.insert(uow.connection, values)
        uow.emit(
            rules.created(values["id"], STEP_UP_AREA, factors, purpose, target), user_id=user_id
        )
        uow.commit()
    return ChallengeView(transient(Challenge, values), factors)


def spend(
    ctx: Context,
    uow: UnitOfWork,
    step_up_id: uuid.UUID,
    user_id: str,
    purpose: ChallengePurpose,
    target: str,
) -> None:
    """Use the passed step-up ``step_up_id`` for this action, in the action's unit of work;
    403 with the reason when it cannot be (nothing is spent then)."""
    now = ctx.clock.now()
    fresh_after = now - timedelta(seconds=ctx.settings.step_up_use_seconds)
    conn = uow.connection
    if store.use_step_up(conn, step_up_id, user_id, purpose, target, now, fresh_after):
        return
    raise refusal(store.get(conn, step_up_id), user_id, purpose, target, fresh_after)


def refusal(
    challenge: Challenge | None,
    user_id: str,
    purpose: str,
    target: str,
    fresh_after: datetime,
) -> DomainError:
    """Why a step-up cannot be spent on (user, purpose, target), most basic reason first."""
    if challenge is None or challenge.user_id != user_id or challenge.purpose == "login":
        return Forbidden("no such step-up for this user", code="step_up_not_found")
    if challenge.purpose != purpose or challenge.target != target:
        return Forbidden("the step-up was passed for another action", code="step_up_mismatch")
    if challenge.used_at is not None:
        return Forbidden("the step-up has been used already", code="step_up_used")
    if challenge.state not in ChallengeState.SUCCESS:
        return Forbidden(f"the step-up is {challenge.state}, not passed", code="step_up_not_passed")
    if challenge.completed_at is None or as_utc(challenge.completed_at) <= fresh_after:
        return Forbidden("the step-up is too old; pass a new one", code="step_up_expired")
    return Forbidden("the step-up was used meanwhile", code="step_up_used")


def _refuse_unknown_target(
    ctx: Context, conn: Any, user_id: str, purpose: str, target: str
) -> None:
    if purpose == "set_area":
        if target not in ctx.settings.area_names:
            raise NotFound(f"no area named {target!r} in the catalogue", code="unknown_area")
        return
    if purpose == "set_contact":
        if target != CONTACT_TARGET:
            raise Unprocessable("a contact step-up is for the e-mail address", code="bad_target")
        return
    try:
        token_id = uuid.UUID(target)
    except ValueError:
        raise NotFound("no such token for this user", code="token_not_found") from None
    owner = conn.execute(select(Token.user_id).where(Token.id == token_id)).scalar()
    if owner != user_id:
        raise NotFound("no such token for this user", code="token_not_found")
