"""Checking a code for one token outside a challenge: enrollment's activation and
confirmation, and step-up codes for sensitive changes.

The same factor check and the same ``lockout`` rules as a challenge's verify. A failed
check is itself a state change (the failure counts), so it is committed before the error
is raised: a rejected code changes nothing but the count of rejected codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from services.core import lockout
from services.core.challenges import rules
from services.core.errors import InvalidCode
from services.core.factors.base import TokenSnapshot, factor_for
from services.core.models import Token, UserProfile

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

P = UserProfile.__table__.c
_USER_STATE = select(P.backoff_until, P.failures).where(P.user_id == bindparam("b_user"))


def check_token_code(
    ctx: Context, uow: UnitOfWork, token: Token, code: str, *, purpose: str
) -> None:
    """Accept ``code`` for ``token`` or raise: ``Throttled`` during a back-off (the code is
    not even looked at), ``InvalidCode`` after committing the failure."""
    check_any_token_code(ctx, uow, [token], code, purpose=purpose)


def check_any_token_code(
    ctx: Context, uow: UnitOfWork, tokens: Sequence[Token], code: str, *, purpose: str
) -> Token:
    """Accept ``code`` from whichever of ``tokens`` (one user's) it is valid for, or raise.

    A person types "a code from one of my tokens" without saying which; the tokens are
    tried in the given order, except those in a back-off. A wrong code is one failure:
    it counts against the first token tried and once against the user.
    """
    if not tokens:
        raise ValueError("no token to check the code against")
    now = ctx.clock.now()
    conn = uow.connection
    user_id = tokens[0].user_id
    user = conn.execute(_USER_STATE, {"b_user": user_id}).first()
    user_backoff, user_failures = (
        (user.backoff_until, user.failures) if user is not None else (None, 0)
    )
    open_ = [t for t in tokens if not lockout.wait_seconds(t.backoff_until, now)]
    lockout.refuse_while_waiting(user_backoff, None if open_ else tokens[0].backoff_until, now)
    code = code.strip().replace(" ", "")
    if len(code) <= lockout.MAX_CODE_LENGTH:
        for token in open_:
            if factor_for(token.type).check_code(ctx, conn, TokenSnapshot.of(token), code, now):
                lockout.record_success(conn, token.id, user_id, user_failures)
                # Written in SQL by the check; the object says so too, without a second write.
                for name, value in (
                    ("failures", 0),
                    ("backoff_until", None),
                    ("last_used_at", now),
                ):
                    set_committed_value(token, name, value)
                return token
    first = open_[0]
    failure = lockout.record_failure(ctx.settings, conn, first.id, first.state, user_id, now)
    for event in rules.token_failed(
        TokenSnapshot.of(first),
        purpose=purpose,
        failures=failure.token_failures,
        backoff_seconds=failure.backoff_seconds,
        locked_now=failure.locked_now,
    ):
        uow.emit(event, user_id=user_id)
    uow.commit()
    raise InvalidCode("the code is not valid")
