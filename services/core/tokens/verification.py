"""Checking a code for one token, with the per-token and per-user back-off around it.

A failed check is itself a state change (the failure counts), so it is committed
before the error is raised: a rejected code changes nothing but the count of
rejected codes.

Besides each token's own count, ``UserProfile.failures`` counts consecutive
failures over all of a user's factors (NIST SP 800-63B 5.2.2: at most 100). It never
locks: the wait it imposes doubles as the count nears ``user_max_failures`` and
stays at ``user_backoff_max_seconds`` from there on, so guessing across many tokens
gains nothing, and a stranger can delay the user but never lock them out for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from services.core.errors import InvalidCode, Throttled
from services.core.models import Token, TokenState, UserProfile
from services.core.factors.base import factor_for
from services.core.lockout import ThrottlePolicy, next_backoff, wait_seconds
from shared.events.token import TokenLocked, TokenVerificationFailed

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

MAX_CODE_LENGTH = 16


def policy_from(ctx: Context) -> ThrottlePolicy:
    s = ctx.settings
    return ThrottlePolicy(
        free_failures=s.free_failures,
        base_seconds=s.backoff_base_seconds,
        max_seconds=s.backoff_max_seconds,
        max_failures=s.max_failures,
    )


def ensure_not_throttled(ctx: Context, token: Token) -> None:
    wait = wait_seconds(token.backoff_until, ctx.clock.now())
    if wait:
        raise Throttled("too many wrong codes; try again later", retry_after=wait)


def user_delay_after(failures: int, cap: int, max_seconds: float) -> float:
    """Seconds a user waits after ``failures`` consecutive failures over all factors.

    ``max_seconds`` halves for each failure short of ``cap``; under a second is no wait,
    so the first dozen-odd failures cost nothing here (the per-token throttle applies).
    """
    if failures <= 0:
        return 0.0
    delay = max_seconds * 2.0 ** min(0, failures - cap)
    return delay if delay >= 1.0 else 0.0


def ensure_user_not_throttled(ctx: Context, uow: UnitOfWork, user_id: str) -> None:
    profile = uow.session.get(UserProfile, user_id)
    wait = wait_seconds(profile.backoff_until, ctx.clock.now()) if profile is not None else 0
    if wait:
        raise Throttled(
            "too many wrong codes for this user; try again later",
            retry_after=wait,
            code="user_throttled",
        )


def check_token_code(
    ctx: Context,
    uow: UnitOfWork,
    token: Token,
    code: str,
    *,
    purpose: str,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """Accept ``code`` for ``token`` or raise (after committing the failure).

    During a back-off (the token's or the user's) the code is not even looked at, so
    guessing gains nothing. ``on_failure`` adds the caller's own record of the failure
    (a challenge's attempt count) to the same commit: one write per wrong code.
    """
    check_any_token_code(ctx, uow, [token], code, purpose=purpose, on_failure=on_failure)


def check_any_token_code(
    ctx: Context,
    uow: UnitOfWork,
    tokens: Sequence[Token],
    code: str,
    *,
    purpose: str,
    on_failure: Callable[[], None] | None = None,
) -> Token:
    """Accept ``code`` from whichever of ``tokens`` (one user's) it is valid for, or raise.

    A person types "a code from one of my tokens" without saying which; the tokens are
    tried in the given order, except those in a back-off. A wrong code is one failure:
    it counts against the first token tried and once against the user.
    """
    if not tokens:
        raise ValueError("no token to check the code against")
    ensure_user_not_throttled(ctx, uow, tokens[0].user_id)
    now = ctx.clock.now()
    open_ = [t for t in tokens if not wait_seconds(t.backoff_until, now)]
    if not open_:
        ensure_not_throttled(ctx, tokens[0])  # raises: every one of them waits
    code = code.strip().replace(" ", "")
    if len(code) <= MAX_CODE_LENGTH:
        for token in open_:
            if factor_for(token.type).check_code(ctx, uow, token, code):
                token.failures = 0
                token.backoff_until = None
                token.last_used_at = now
                _reset_user_failures(uow, token.user_id)
                return token
    record_failure(ctx, uow, open_[0], purpose=purpose)
    if on_failure is not None:
        on_failure()
    uow.commit()
    raise InvalidCode("the code is not valid")


def record_failure(ctx: Context, uow: UnitOfWork, token: Token, *, purpose: str) -> None:
    policy = policy_from(ctx)
    now = ctx.clock.now()
    # Counted in SQL so that concurrent wrong guesses all count.
    failures = uow.session.execute(
        update(Token)
        .where(Token.id == token.id)
        .values(failures=Token.failures + 1)
        .returning(Token.failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    token.failures = failures
    token.backoff_until = next_backoff(policy, failures, now)
    _count_user_failure(ctx, uow, token.user_id, now)
    backoff = int(policy.delay_after(failures))
    uow.emit(
        TokenVerificationFailed(
            token_id=token.id,
            token_type=token.type,
            purpose=purpose,
            consecutive_failures=failures,
            backoff_seconds=backoff,
        ),
        user_id=token.user_id,
    )
    if policy.should_lock(failures) and token.state != TokenState.LOCKED:
        token.state = TokenState.LOCKED
        uow.emit(
            TokenLocked(token_id=token.id, token_type=token.type, consecutive_failures=failures),
            user_id=token.user_id,
        )


def _reset_user_failures(uow: UnitOfWork, user_id: str) -> None:
    uow.session.execute(
        update(UserProfile)
        .where(UserProfile.user_id == user_id, UserProfile.failures != 0)
        .values(failures=0, backoff_until=None)
        .execution_options(synchronize_session="fetch")
    )


def _count_user_failure(ctx: Context, uow: UnitOfWork, user_id: str, now: datetime) -> None:
    """One more consecutive failure for the user; the profile row is created on demand."""
    if uow.session.get(UserProfile, user_id) is None:
        try:
            with uow.session.begin_nested():
                uow.session.add(UserProfile(user_id=user_id, created_at=now, failures=0))
        except IntegrityError:  # a concurrent failure created it first
            pass
    cap = ctx.settings.user_max_failures
    failures = uow.session.execute(
        update(UserProfile)
        .where(UserProfile.user_id == user_id)
        .values(failures=UserProfile.failures + 1)
        .returning(UserProfile.failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    delay = user_delay_after(failures, cap, ctx.settings.user_backoff_max_seconds)
    profile = uow.session.get(UserProfile, user_id)
    if profile is not None:
        profile.failures = failures
        profile.backoff_until = now + timedelta(seconds=delay) if delay else None
