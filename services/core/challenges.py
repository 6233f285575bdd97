"""Login challenges: after the password, does (user, area) need a second factor,
which factor does the user pick, and did the code (or the phone) say yes.

A challenge is bound to its user and area, expires, is used once and allows a
limited number of attempts. Its expiry is checked here on every read and answer;
the expiry worker only makes the ``challenge.expired`` event happen on time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from services.core.clock import as_utc
from services.core.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from services.core.models import AreaProtection, Challenge, ChallengeState, Token, TokenState
from services.core.tokens.factors import factor_for
from services.core.tokens.verification import check_token_code
from shared.events.challenge import (
    ChallengeCreated,
    ChallengeExpired,
    ChallengeFactorSelected,
    ChallengeFailed,
    ChallengeNotRequired,
    ChallengeVerified,
    FactorRef,
)

if TYPE_CHECKING:
    from services.core.context import Context
    from services.core.uow import UnitOfWork


@dataclass
class ChallengeView:
    challenge: Challenge | None
    factors: list[Token] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def is_protected(uow: UnitOfWork, user_id: str, area: str) -> bool:
    row = uow.session.get(AreaProtection, (user_id, area))
    return bool(row and row.protected)


def usable_tokens(uow: UnitOfWork, user_id: str) -> list[Token]:
    """Active tokens, oldest first; locked and half-enrolled ones are left out."""
    return list(
        uow.session.scalars(
            select(Token)
            .where(Token.user_id == user_id, Token.state == TokenState.ACTIVE)
            .order_by(Token.created_at, Token.id)
        )
    )


def _has_locked_tokens(uow: UnitOfWork, user_id: str) -> bool:
    return (
        uow.session.scalar(
            select(Token.id)
            .where(Token.user_id == user_id, Token.state == TokenState.LOCKED)
            .limit(1)
        )
        is not None
    )


def create(ctx: Context, uow: UnitOfWork, user_id: str, area: str) -> ChallengeView:
    if area not in ctx.settings.area_names:
        raise Unprocessable(f"unknown area {area!r}", code="unknown_area")
    protected = is_protected(uow, user_id, area)
    tokens = usable_tokens(uow, user_id) if protected else []
    if protected and not tokens and _has_locked_tokens(uow, user_id):
        # Fail closed: locking every token (by guessing) must not switch 2FA off.
        raise Forbidden("every second factor of this user is locked", code="factors_locked")
    if not tokens:
        # Unknown users get this same answer: no account's existence is revealed.
        uow.emit(ChallengeNotRequired(area=area), user_id=user_id)
        return ChallengeView(None)
    now = ctx.clock.now()
    challenge = Challenge(
        id=uuid.uuid4(),
        user_id=user_id,
        area=area,
        state=ChallengeState.PENDING,
        attempts=0,
        max_attempts=ctx.settings.challenge_max_attempts,
        correlation_id=uow.correlation_id,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.challenge_ttl_seconds),
    )
    uow.session.add(challenge)
    uow.emit(
        ChallengeCreated(
            challenge_id=challenge.id,
            area=area,
            factors=[FactorRef(token_id=t.id, token_type=t.type) for t in tokens],
        ),
        user_id=user_id,
    )
    return ChallengeView(challenge, tokens)


def get(ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID) -> Challenge:
    challenge = uow.session.get(Challenge, challenge_id)
    if challenge is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    return challenge


def effective_state(ctx: Context, challenge: Challenge) -> str:
    """The state as of now: a pending challenge past its expiry is expired already."""
    if challenge.state == ChallengeState.PENDING and as_utc(challenge.expires_at) <= ctx.clock.now():
        return ChallengeState.EXPIRED
    return challenge.state


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


# Factors whose code exists before selection (the app shows it), so a login service may
# select and verify in one request: ``verify`` with ``token_id``. SMS and PUSH must be
# selected first, because selecting them is what sends the code or the notification.
CODE_READY_TYPES = frozenset({"totp"})


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
    check_token_code(
        ctx, uow, token, code, purpose="login",
        on_failure=lambda: _count_failed_attempt(ctx, uow, challenge, token),
    )
    challenge.state = ChallengeState.VERIFIED
    challenge.completed_at = ctx.clock.now()
    uow.emit(
        ChallengeVerified(
            challenge_id=challenge.id, area=challenge.area, token_id=token.id, token_type=token.type
        ),
        user_id=challenge.user_id,
    )
    return challenge


def _count_failed_attempt(ctx: Context, uow: UnitOfWork, challenge: Challenge, token: Token) -> None:
    """Runs inside the failed check's transaction, which commits it."""
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
