"""What wrong codes cost: a back-off per token and per user, and a hard lock at the ceiling.

* **Per token**: the first ``free_failures`` consecutive failures cost nothing; after that
  each one doubles the wait, from ``backoff_base_seconds`` up to ``backoff_max_seconds``
  (15 minutes by default). At ``max_failures`` (100 by default, the ceiling of NIST SP
  800-63B 5.2.2) the token is locked until an administrator unlocks it.
* **Per user**, over all factors: the wait is ``user_backoff_max_seconds`` at
  ``user_max_failures`` consecutive failures and halves for each failure short of it
  (under a second is no wait). It never locks, so a stranger can slow a user down but
  never shut them out for good.
* A successful check with any factor resets the user's count and the count of every one
  of the user's active tokens.

The back-off check and the count are one conditional write per counter::

    UPDATE … SET failures = failures + 1, backoff_until = <the wait this count starts>
    WHERE … AND (backoff_until IS NULL OR backoff_until <= now)

so of a burst of concurrent wrong codes, those that arrive while a back-off runs count
nothing, whatever they read before. The wait each possible count starts is computed here
in Python and bound as a parameter per count (a ``CASE``), so the policy lives in one
place and the statement stays portable between SQLite and PostgreSQL.

Every check (challenge, enrollment, step-up) applies them in this order: the refusal
from what it read (``refuse_while_waiting``), the factor's code check (which records a
success on the token row with ``SUCCESS_VALUES`` or ``token_succeeded``), then
``record_success`` or ``record_failure``.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, bindparam, case, null, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from services.core.errors import Conflict, NotFound, Throttled
from services.core.models import Token, TokenState, UserProfile
from services.core.plumbing.clock import as_utc
from services.core.plumbing.prepared import Prepared
from services.core.plumbing.settings import Settings
from shared.events.token import TokenUnlocked

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

T, P = Token.__table__.c, UserProfile.__table__.c
TOKENS, PROFILES = Token.__table__, UserProfile.__table__

# Longer input is refused before any comparison: no code of ours is this long.
MAX_CODE_LENGTH = 16


@dataclass(frozen=True)
class ThrottlePolicy:
    """A doubling back-off after ``free_failures``, capped, and a lock at ``max_failures``."""

    free_failures: int = 3
    base_seconds: float = 1.0
    max_seconds: float = 900.0
    max_failures: int = 100

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.max_seconds, self.base_seconds * 2.0 ** (over - 1))

    def should_lock(self, failures: int) -> bool:
        return failures >= self.max_failures

    def capped_from(self) -> int:
        """The first count whose delay is the cap: every later one waits the same."""
        n = self.free_failures + 1
        while self.delay_after(n) < self.max_seconds:
            n += 1
        return n


@dataclass(frozen=True)
class UserPolicy:
    """The cross-factor back-off: ``max_seconds`` at ``cap`` failures, halving below it."""

    cap: int = 30
    max_seconds: float = 900.0

    def delay_after(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        delay = self.max_seconds * 2.0 ** min(0, failures - self.cap)
        return delay if delay >= 1.0 else 0.0

    def capped_from(self) -> int:
        return max(1, self.cap)


def token_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        free_failures=settings.free_failures,
        base_seconds=settings.backoff_base_seconds,
        max_seconds=settings.backoff_max_seconds,
        max_failures=settings.max_failures,
    )


def user_policy(settings: Settings) -> UserPolicy:
    return UserPolicy(cap=settings.user_max_failures, max_seconds=settings.user_backoff_max_seconds)


def wait_seconds(backoff_until: datetime | None, now: datetime) -> int:
    """Whole seconds left before another attempt is allowed (0 if none)."""
    if backoff_until is None:
        return 0
    left = (as_utc(backoff_until) - now).total_seconds()
    return max(0, int(left + 0.999))


def next_backoff(policy: ThrottlePolicy, failures: int, now: datetime) -> datetime | None:
    delay = policy.delay_after(failures)
    return now + timedelta(seconds=delay) if delay > 0 else None


def user_throttled(wait: int) -> Throttled:
    return Throttled(
        "too many wrong codes for this user; try again later",
        retry_after=wait,
        code="user_throttled",
    )


def token_throttled(wait: int) -> Throttled:
    return Throttled("too many wrong codes; try again later", retry_after=wait)


def refuse_while_waiting(
    user_backoff_until: datetime | None, token_backoff_until: datetime | None, now: datetime
) -> None:
    """The cheap refusal from a read: during a back-off the code is not even looked at."""
    if wait := wait_seconds(user_backoff_until, now):
        raise user_throttled(wait)
    if wait := wait_seconds(token_backoff_until, now):
        raise token_throttled(wait)


# -- the writes ---------------------------------------------------------------------------

_DATETIME = DateTime(timezone=True)


def _not_waiting(column: Any) -> ColumnElement[bool]:
    return or_(column.is_(None), column <= bindparam("b_now", type_=_DATETIME))


# What a success writes on the token row, and the guard it needs: a factor whose check
# already writes that row (TOTP's accepted step) folds both into its own compare-and-set.
SUCCESS_VALUES: dict[str, Any] = {
    "failures": 0,
    "backoff_until": None,
    "last_used_at": bindparam("b_now", type_=_DATETIME),
}
TOKEN_NOT_WAITING = _not_waiting(T.backoff_until)

_TOKEN_SUCCEEDED = Prepared(
    update(TOKENS)
    .where(T.id == bindparam("b_token"), T.state == bindparam("b_state"), TOKEN_NOT_WAITING)
    .values(**SUCCESS_VALUES)
)
_RESET_USER = Prepared(
    update(PROFILES)
    .where(P.user_id == bindparam("b_user"), P.failures != 0)
    .values(failures=0, backoff_until=None)
)
_RESET_OTHER_TOKENS = Prepared(
    update(TOKENS)
    .where(
        T.user_id == bindparam("b_user"),
        T.id != bindparam("b_token"),
        T.state == TokenState.ACTIVE,
        or_(T.failures != 0, T.backoff_until.is_not(None)),
    )
    .values(failures=0, backoff_until=None)
)
_TOKEN_WAIT = Prepared(select(T.backoff_until, T.state).where(T.id == bindparam("b_token")))
_USER_WAIT = Prepared(select(P.backoff_until).where(P.user_id == bindparam("b_user")))


def _schedule(delay_after: Any, capped_from: int, count: Any) -> Any:
    """``CASE`` over the new count: NULL while free, then the wait each count starts
    (bound as ``b_until_<n>``), the capped wait (``b_until_cap``) from ``capped_from`` on."""
    whens: list[tuple[Any, Any]] = [
        (count == n, bindparam(f"b_until_{n}", type_=_DATETIME))
        for n in range(1, capped_from)
        if delay_after(n) > 0
    ]
    free = [n for n in range(1, capped_from) if delay_after(n) <= 0]
    if free:
        whens.insert(0, (count <= max(free), null()))
    return case(*whens, else_=bindparam("b_until_cap", type_=_DATETIME))


def _until_params(policy: ThrottlePolicy | UserPolicy, now: datetime) -> dict[str, datetime]:
    return {name: now + wait for name, wait in _waits(policy)}


@lru_cache(maxsize=16)
def _waits(policy: ThrottlePolicy | UserPolicy) -> tuple[tuple[str, timedelta], ...]:
    """The bind parameter of each count that waits, and its wait (computed once per policy)."""
    capped_from = policy.capped_from()
    waits = [(f"b_until_{n}", timedelta(seconds=policy.delay_after(n)))
             for n in range(1, capped_from) if policy.delay_after(n) > 0]
    waits.append(("b_until_cap", timedelta(seconds=policy.delay_after(capped_from))))
    return tuple(waits)


@lru_cache(maxsize=8)
def _count_token_failure(policy: ThrottlePolicy) -> Prepared:
    count = T.failures + 1
    return Prepared(
        update(TOKENS)
        .where(T.id == bindparam("b_token"), T.state == bindparam("b_state"), TOKEN_NOT_WAITING)
        .values(
            failures=count,
            backoff_until=_schedule(policy.delay_after, policy.capped_from(), count),
            state=case((count >= policy.max_failures, TokenState.LOCKED), else_=T.state),
        )
        .returning(T.failures, T.state)
    )


@lru_cache(maxsize=8)
def _count_user_failure(policy: UserPolicy, dialect_name: str) -> Prepared:
    # The dialect's module by name, so that a process never loads the one of a database it
    # does not use (importing PostgreSQL's, with its catalog types, costs every SQLite process
    # memory for nothing).
    dialect = importlib.import_module(
        f"sqlalchemy.dialects.{'postgresql' if dialect_name == 'postgresql' else 'sqlite'}")
    count = P.failures + 1
    insert = dialect.insert(PROFILES).values(
        user_id=bindparam("b_user"),
        created_at=bindparam("b_now", type_=_DATETIME),
        failures=1,
        backoff_until=bindparam("b_first_until", type_=_DATETIME),
    )
    return Prepared(
        insert.on_conflict_do_update(
            index_elements=[P.user_id],
            set_={
                "failures": count,
                "backoff_until": _schedule(policy.delay_after, policy.capped_from(), count),
            },
            where=_not_waiting(P.backoff_until),
        ).returning(P.failures)
    )


@dataclass(frozen=True)
class Failure:
    """A counted wrong code: the token's and the user's new counts."""

    token_failures: int
    user_failures: int
    backoff_seconds: int
    locked_now: bool  # this failure reached the hard lock


def record_failure(
    settings: Settings,
    conn: Connection,
    token_id: uuid.UUID,
    token_state: str,
    user_id: str,
    now: datetime,
) -> Failure:
    """Count one wrong code for the token and its user, or raise ``Throttled`` when a
    back-off started since the read (then nothing may be written: the caller's unit of
    work rolls back). The token must still be in ``token_state``."""
    policy = token_policy(settings)
    params = {
        "b_token": token_id,
        "b_state": token_state,
        "b_now": now,
        **_until_params(policy, now),
    }
    counted = _count_token_failure(policy).first(conn, params)
    if counted is None:
        raise _why_token_not_counted(conn, token_id, token_state, now)
    failures, state = counted
    users = user_policy(settings)
    params = {
        "b_user": user_id,
        "b_now": now,
        "b_first_until": _first_until(users, now),
        **_until_params(users, now),
    }
    user_failures = _count_user_failure(users, conn.dialect.name).scalar(conn, params)
    if user_failures is None:
        backoff = _USER_WAIT.scalar(conn, {"b_user": user_id})
        raise user_throttled(max(1, wait_seconds(backoff, now)))
    locked_now = state == TokenState.LOCKED and failures == policy.max_failures
    return Failure(failures, user_failures, int(policy.delay_after(failures)), locked_now)


def _first_until(policy: UserPolicy, now: datetime) -> datetime | None:
    delay = policy.delay_after(1)
    return now + timedelta(seconds=delay) if delay else None


def _why_token_not_counted(
    conn: Connection, token_id: uuid.UUID, state: str, now: datetime
) -> Exception:
    row = _TOKEN_WAIT.first(conn, {"b_token": token_id})
    if row is None or row.state != state:
        return Conflict("the selected factor is no longer usable", code="factor_unusable")
    return token_throttled(max(1, wait_seconds(row.backoff_until, now)))


def token_succeeded(conn: Connection, token_id: uuid.UUID, token_state: str, now: datetime) -> bool:
    """Record a right code on the token row (for factors whose check does not write that
    row itself); False if the token changed state or a back-off started since the read."""
    params = {"b_token": token_id, "b_state": token_state, "b_now": now}
    return _TOKEN_SUCCEEDED.rowcount(conn, params) == 1


def record_success(
    conn: Connection, token_id: uuid.UUID, user_id: str, user_failures: int | None
) -> None:
    """After a success with any factor: the user's count and those of the user's other
    active tokens start again. A user without failures has none on any token either
    (every token failure counts for the user too), so when the read said 0 nothing is
    written; None: not read, reset whatever there is."""
    if user_failures is None or user_failures:
        _RESET_OTHER_TOKENS.rowcount(conn, {"b_user": user_id, "b_token": token_id})
        _RESET_USER.rowcount(conn, {"b_user": user_id})


# -- unlocking ----------------------------------------------------------------------------

_NEEDS_RESET = or_(T.state == TokenState.LOCKED, T.failures != 0, T.backoff_until.is_not(None))
_UNLOCKABLE = select(T.id, T.type, T.state).where(T.user_id == bindparam("b_user"), _NEEDS_RESET)
_UNLOCKABLE_ONE = _UNLOCKABLE.where(T.id == bindparam("b_token"))
_UNLOCK_TOKENS = (
    update(TOKENS)
    .where(T.id.in_(bindparam("b_tokens", expanding=True)))
    .values(
        failures=0,
        backoff_until=None,
        state=case((T.state == TokenState.LOCKED, TokenState.ACTIVE), else_=T.state),
    )
)
_OWNED = select(T.id).where(T.id == bindparam("b_token"), T.user_id == bindparam("b_user"))
_UNLOCK_USER = (
    update(PROFILES).where(P.user_id == bindparam("b_user")).values(failures=0, backoff_until=None)
)


def unlock(ctx: Context, user_id: str, token_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """An administrator's reset: the user's back-off, and the count, back-off and lock of
    one token of the user (or of all of them). Returns the tokens that changed; each gets
    a ``token.unlocked`` event."""
    with ctx.uow() as uow:
        conn = uow.connection
        if (
            token_id is not None
            and conn.execute(_OWNED, {"b_token": token_id, "b_user": user_id}).first() is None
        ):
            raise NotFound("no such token for this user", code="token_not_found")
        query, params = (
            (_UNLOCKABLE, {"b_user": user_id})
            if token_id is None
            else (_UNLOCKABLE_ONE, {"b_user": user_id, "b_token": token_id})
        )
        rows = conn.execute(query.with_for_update(), params).all()
        if rows:
            conn.execute(_UNLOCK_TOKENS, {"b_tokens": [r.id for r in rows]})
        conn.execute(_UNLOCK_USER, {"b_user": user_id})
        for row in rows:
            uow.emit(
                TokenUnlocked(
                    token_id=row.id, token_type=row.type, was_locked=row.state == TokenState.LOCKED
                ),
                user_id=user_id,
            )
        uow.commit()
    return [r.id for r in rows]
