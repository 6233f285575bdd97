"""Login challenges: after the password, does (user, area) need a second factor,
which factor does the user pick, and did the code (or the phone) say yes.

A challenge is bound to its user and area, expires, is used once and allows a
limited number of attempts. Its expiry is checked here on every read and answer;
the expiry worker only makes the ``challenge.expired`` event happen on time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from services.core.plumbing.db import read_only
from services.core.errors import Conflict, Forbidden, Gone, InvalidCode, NotFound, Unprocessable
from services.core.models import Challenge, ChallengeState, Token, TokenState
from services.core.factors.base import factor_for
from services.core.challenges import store
from services.core.challenges.rules import CODE_READY_TYPES, effective_state
from services.core.tokens.verification import check_token_code
from shared.events.challenge import (
    ChallengeExpired,
    ChallengeFactorSelected,
    ChallengeFailed,
    ChallengeNotRequired,
    ChallengeVerified,
)

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


@dataclass
class ChallengeView:
    challenge: Challenge | None
    factors: Sequence[store.Factor | Token] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def create(ctx: Context, uow: UnitOfWork, user_id: str, area: str) -> ChallengeView:
    if area not in ctx.settings.area_names:
        raise Unprocessable(f"unknown area {area!r}", code="unknown_area")
    with read_only(ctx.engine) as conn:  # the write lock is taken only for the INSERT
        protected, factors, any_locked = store.protected_factors(conn, user_id, area)
    if protected and not factors and any_locked:
        # Fail closed: locking every token (by guessing) must not switch 2FA off.
        raise Forbidden("every second factor of this user is locked", code="factors_locked")
    if not factors:
        # Unknown users get this same answer: no account's existence is revealed.
        uow.emit(ChallengeNotRequired(area=area), user_id=user_id)
        return ChallengeView(None)
    return ChallengeView(store.insert_challenge(ctx, uow, user_id, area, factors), factors)


def get(ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID) -> Challenge:
    challenge = uow.session.get(Challenge, challenge_id)
    if challenge is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    return challenge


def _open(ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID) -> Challenge:
    challenge = get(ctx, uow, challenge_id)
    state = effective_state(ctx, challenge)
    if state == ChallengeState.EXPIRED:
        raise Gone("the challenge has expired", code="challenge_expired")
    if state != ChallengeState.PENDING:
        raise Conflict(f"the challenge is {state}", code="challenge_closed")
    return challenge


def select_factor(
    ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID, token_id: uuid.UUID
) -> ChallengeView:
    challenge = _open(ctx, uow, challenge_id)
    token = uow.session.get(Token, token_id)
    if token is None or token.user_id != challenge.user_id or token.state != TokenState.ACTIVE:
        raise NotFound("that factor is not available for this challenge", code="factor_not_found")
    challenge.token_id, challenge.token_type = token.id, token.type
    result = factor_for(token.type).select(ctx, uow, token, challenge)
    uow.emit(
        ChallengeFactorSelected(challenge_id=challenge.id, token_id=token.id, token_type=token.type),
        user_id=challenge.user_id,
    )
    return ChallengeView(challenge, [token], result.extras)


def verify(
    ctx: Context,
    uow: UnitOfWork,
    challenge_id: uuid.UUID,
    code: str,
    token_id: uuid.UUID | None = None,
) -> Challenge:
    """Check ``code`` for the selected factor; ``token_id`` selects a code-ready factor first.

    With ``token_id`` and no factor selected yet, this is exactly ``select_factor`` then
    ``verify`` in one unit of work (both events are emitted), for TOTP only. With a factor
    already selected, ``token_id`` must name that same factor.
    """
    with read_only(ctx.engine) as conn:  # decided outside the write lock, written by compare-and-set
        row = store.checked_row(ctx, store.load(conn, challenge_id, token_id), token_id)
    if row.t_type == "totp":  # the hot path, in SQL Core (totp_login)
        return store.check_code(ctx, uow, row, code, selecting=row.token_id is None)
    return _verify_with_orm(ctx, uow, challenge_id, code, token_id)


def _verify_with_orm(
    ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID, code: str, token_id: uuid.UUID | None
) -> Challenge:
    """SMS and PUSH codes: ``verify`` through the factor's own ``check_code``."""
    challenge = _open(ctx, uow, challenge_id)
    if token_id is not None and challenge.token_id is None:
        token = uow.session.get(Token, token_id)
        if token is not None and token.user_id == challenge.user_id and token.type not in CODE_READY_TYPES:
            raise Conflict("select this factor first; selecting it sends the code", code="select_first")
        select_factor(ctx, uow, challenge_id, token_id)
    elif token_id is not None and challenge.token_id != token_id:
        raise Conflict("another factor is selected for this challenge", code="factor_mismatch")
    if challenge.token_id is None:
        raise Conflict("select a factor first", code="no_factor_selected")
    token = uow.session.get(Token, challenge.token_id)
    if token is None or token.state != TokenState.ACTIVE:
        raise Conflict("the selected factor is no longer usable", code="factor_unusable")
    left: list[int] = []
    try:
        check_token_code(
            ctx, uow, token, code, purpose="login",
            on_failure=lambda: left.append(_count_failed_attempt(ctx, uow, challenge, token)),
        )
    except InvalidCode as exc:
        raise InvalidCode(exc.message, attempts_left=left[0]) from None
    challenge.state = ChallengeState.VERIFIED
    challenge.completed_at = ctx.clock.now()
    uow.emit(
        ChallengeVerified(
            challenge_id=challenge.id, area=challenge.area, token_id=token.id, token_type=token.type
        ),
        user_id=challenge.user_id,
    )
    return challenge


def _count_failed_attempt(ctx: Context, uow: UnitOfWork, challenge: Challenge, token: Token) -> int:
    """Runs inside the failed check's transaction, which commits it; returns the attempts left."""
    challenge.attempts += 1
    left = max(0, challenge.max_attempts - challenge.attempts)
    if left == 0:
        challenge.state = ChallengeState.FAILED
        challenge.reason = "exhausted"
        challenge.completed_at = ctx.clock.now()
    uow.emit(
        ChallengeFailed(
            challenge_id=challenge.id,
            area=challenge.area,
            token_id=token.id,
            token_type=token.type,
            reason="exhausted" if left == 0 else "invalid_code",
            attempts_left=left,
        ),
        user_id=challenge.user_id,
    )
    return left


def expire_due(ctx: Context, uow: UnitOfWork, limit: int = 500) -> int:
    """Move pending challenges past their expiry to expired, each exactly once."""
    now = ctx.clock.now()
    due = list(
        uow.session.scalars(
            select(Challenge)
            .where(Challenge.state == ChallengeState.PENDING, Challenge.expires_at <= now)
            .order_by(Challenge.expires_at)
            .limit(limit)
        )
    )
    done = 0
    for challenge in due:
        won = uow.session.execute(
            update(Challenge)
            .where(Challenge.id == challenge.id, Challenge.state == ChallengeState.PENDING)
            .values(state=ChallengeState.EXPIRED, completed_at=now, reason="expired")
            .execution_options(synchronize_session=False)
        ).rowcount
        if won == 1:
            done += 1
            uow.emit(
                ChallengeExpired(challenge_id=challenge.id, area=challenge.area),
                user_id=challenge.user_id,
            )
    return done
