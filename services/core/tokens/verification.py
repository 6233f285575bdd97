"""Checking a code for one token, with the per-token back-off around it.

A failed check is itself a state change (the failure count), so it is committed
before the error is raised: a rejected code changes nothing but the count of
rejected codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update

from services.core.errors import InvalidCode, Throttled
from services.core.models import Token, TokenState
from services.core.tokens.factors import factor_for
from services.core.tokens.throttle import ThrottlePolicy, next_backoff, wait_seconds
from shared.events.token import TokenLocked, TokenVerificationFailed

if TYPE_CHECKING:
    from services.core.context import Context
    from services.core.uow import UnitOfWork

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


def check_token_code(ctx: Context, uow: UnitOfWork, token: Token, code: str, *, purpose: str) -> None:
    """Accept ``code`` for ``token`` or raise (after committing the failure).

    During a back-off the code is not even looked at, so guessing gains nothing.
    """
    ensure_not_throttled(ctx, token)
    code = code.strip().replace(" ", "")
    ok = len(code) <= MAX_CODE_LENGTH and factor_for(token.type).check_code(ctx, uow, token, code)
    now = ctx.clock.now()
    if ok:
        token.failures = 0
        token.backoff_until = None
        token.last_used_at = now
        return
    record_failure(ctx, uow, token, purpose=purpose)
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
