"""The login hot path in SQL Core: create a challenge, verify a TOTP code for it.

A TOTP login is what a 2FA server does most, so these two steps skip the ORM (an ORM
``get`` or flush cost 0.2–0.7 ms each; the ORM version of a login took ~7.7 ms of CPU
and 19 statements, issue 7). The rules are the same as ``challenges`` and
``tokens.verification`` apply on the ORM path, and so are the events. Reads happen
before the write lock is taken (``db.read_only``), so every write that depends on them
is a compare-and-set:

* create: one read (the area's protection joined with the user's tokens), then the
  challenge's INSERT and the outbox INSERT;
* verify, right code: one joined read, the code checked, then UPDATEs of the token (the
  accepted step must be newer than the last one: replays lose), the user's failure
  count (only when it is not zero) and the challenge (only while still pending with
  this factor or none selected);
* verify, wrong code: the token's and the user's failure counts are incremented in SQL
  (concurrent wrong guesses all count), back-off and lock as the throttle policy says,
  the challenge's attempt is counted, and all of it is committed before the error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.core.challenges.rules import CODE_READY_TYPES, effective_state
from services.core.errors import Conflict, Gone, InvalidCode, NotFound, Throttled
from services.core.models import AreaProtection, Challenge, ChallengeState, Token, TokenState, UserProfile
from services.core.factors.totp import otp
from services.core.lockout import next_backoff, wait_seconds
from services.core.factors.totp.factor import MAX_DRIFT_STEPS, params_from
from services.core.tokens.verification import MAX_CODE_LENGTH, policy_from, user_delay_after
from shared.events.challenge import (
    ChallengeCreated,
    ChallengeFactorSelected,
    ChallengeFailed,
    ChallengeVerified,
    FactorRef,
)
from shared.events.token import TokenLocked, TokenVerificationFailed

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

C, T, P, A = Challenge.__table__.c, Token.__table__.c, UserProfile.__table__.c, AreaProtection.__table__.c
CHALLENGES, TOKENS, PROFILES = Challenge.__table__, Token.__table__, UserProfile.__table__
AREAS = AreaProtection.__table__


@dataclass(frozen=True)
class Factor:
    """A usable factor as a challenge lists it."""

    id: uuid.UUID
    type: str
    description: str


def _conn(uow: UnitOfWork) -> Connection:
    return uow.session.connection()


# Every statement is built once with bind parameters: building a construct and its cache
# key on each call cost more than executing it (about 60 µs a statement, issue 7).
# One read for create: the area's protection row, joined with the user's active and locked
# tokens (a protected user without tokens gives one row with NULL token columns).
_PROTECTED_FACTORS = (
    select(A.protected, T.id, T.type, T.description, T.state)
    .select_from(AREAS)
    .outerjoin(TOKENS, and_(T.user_id == A.user_id, T.state.in_((TokenState.ACTIVE, TokenState.LOCKED))))
    .where(A.user_id == bindparam("b_user"), A.area == bindparam("b_area"))
    .order_by(T.created_at, T.id)
)
_INSERT_CHALLENGE = CHALLENGES.insert()
_LOAD_COLUMNS = (
    C.id, C.user_id, C.area, C.state, C.token_id, C.token_type, C.attempts, C.max_attempts,
    C.reason, C.correlation_id, C.created_at, C.expires_at, C.completed_at,
    T.id.label("t_id"), T.user_id.label("t_user_id"), T.type.label("t_type"),
    T.state.label("t_state"), T.secret_enc, T.last_step, T.drift, T.backoff_until,
    P.backoff_until.label("user_backoff_until"), P.failures.label("user_failures"),
)


def _load_query(token_column: Any) -> Any:
    return (
        select(*_LOAD_COLUMNS)
        .select_from(CHALLENGES)
        .outerjoin(TOKENS, T.id == token_column)
        .outerjoin(PROFILES, P.user_id == C.user_id)
        .where(C.id == bindparam("b_challenge"))
    )


_LOAD_GIVEN = _load_query(bindparam("b_token"))  # the request names the factor
_LOAD_SELECTED = _load_query(C.token_id)  # the factor selected earlier
_TAKE_STEP = (
    update(TOKENS)
    .where(T.id == bindparam("b_token"), T.state == TokenState.ACTIVE,
           or_(T.last_step.is_(None), T.last_step < bindparam("b_step")))
    .values(last_step=bindparam("b_step"), drift=bindparam("b_drift"), failures=0, backoff_until=None,
            last_used_at=bindparam("b_now"))
)
_RESET_USER = (
    update(PROFILES).where(P.user_id == bindparam("b_user"), P.failures != 0).values(failures=0, backoff_until=None)
)
# The challenge was read before the write lock: it must still be pending, and still have
# this factor or none selected.
_STILL_OPEN = and_(
    C.id == bindparam("b_challenge"), C.state == ChallengeState.PENDING,
    or_(C.token_id.is_(None), C.token_id == bindparam("b_token")),
)
_CLOSE_VERIFIED = (
    update(CHALLENGES)
    .where(_STILL_OPEN)
    .values(state=ChallengeState.VERIFIED, token_id=bindparam("b_token"), token_type=bindparam("b_type"),
            completed_at=bindparam("b_now"))
)
_COUNT_TOKEN_FAILURE = (
    update(TOKENS).where(T.id == bindparam("b_token")).values(failures=T.failures + 1).returning(T.failures)
)
_TOKEN_BACKOFF = update(TOKENS).where(T.id == bindparam("b_token")).values(backoff_until=bindparam("b_until"))
_TOKEN_LOCK = update(TOKENS).where(T.id == bindparam("b_token")).values(
    backoff_until=bindparam("b_until"), state=TokenState.LOCKED
)
_EXHAUSTED = C.attempts + 1 >= C.max_attempts
_COUNT_ATTEMPT = (
    update(CHALLENGES)
    .where(_STILL_OPEN)
    .values(
        attempts=C.attempts + 1, token_id=bindparam("b_token"), token_type=bindparam("b_type"),
        state=case((_EXHAUSTED, ChallengeState.FAILED), else_=C.state),
        reason=case((_EXHAUSTED, "exhausted"), else_=C.reason),
        completed_at=case((_EXHAUSTED, bindparam("b_now")), else_=C.completed_at),
    )
    .returning(C.attempts, C.max_attempts)
)
_USER_BACKOFF = update(PROFILES).where(P.user_id == bindparam("b_user")).values(backoff_until=bindparam("b_until"))
_UPSERT_USER_FAILURE = {
    name: dialect.insert(PROFILES)
    .values(user_id=bindparam("b_user"), created_at=bindparam("b_now"), failures=1)
    .on_conflict_do_update(index_elements=[P.user_id], set_={"failures": P.failures + 1})
    .returning(P.failures)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


# -- create --------------------------------------------------------------------------------

def protected_factors(conn: Connection, user_id: str, area: str) -> tuple[bool, list[Factor], bool]:
    """Whether (user, area) is protected, its usable factors (oldest first), and whether
    any factor is locked."""
    rows = conn.execute(_PROTECTED_FACTORS, {"b_user": user_id, "b_area": area}).all()
    if not rows or not rows[0].protected:
        return False, [], False
    rows = [r for r in rows if r.id is not None]
    usable = [Factor(r.id, r.type, r.description) for r in rows if r.state == TokenState.ACTIVE]
    return True, usable, any(r.state == TokenState.LOCKED for r in rows)


def insert_challenge(ctx: Context, uow: UnitOfWork, user_id: str, area: str, factors: list[Factor]) -> Challenge:
    now = ctx.clock.now()
    values: dict[str, Any] = dict(
        id=uuid.uuid4(), user_id=user_id, area=area, state=ChallengeState.PENDING, attempts=0,
        max_attempts=ctx.settings.challenge_max_attempts, correlation_id=uow.correlation_id,
        created_at=now, expires_at=now + timedelta(seconds=ctx.settings.challenge_ttl_seconds),
    )
    _conn(uow).execute(_INSERT_CHALLENGE, values)
    uow.emit(
        ChallengeCreated(challenge_id=values["id"], area=area,
                         factors=[FactorRef(token_id=f.id, token_type=f.type) for f in factors]),
        user_id=user_id,
    )
    return Challenge(**values)  # transient: the answer is built from it, nothing is flushed


# -- verify --------------------------------------------------------------------------------

def load(conn: Connection, challenge_id: uuid.UUID, token_id: uuid.UUID | None) -> Row[Any] | None:
    """The challenge, the factor to check (``token_id`` or the selected one) and the
    user's failure state, in one read; token columns are None if there is no such token."""
    if token_id is None:
        return conn.execute(_LOAD_SELECTED, {"b_challenge": challenge_id}).first()
    return conn.execute(_LOAD_GIVEN, {"b_challenge": challenge_id, "b_token": token_id}).first()


def challenge_of(row: Row[Any]) -> Challenge:
    return Challenge(
        id=row.id, user_id=row.user_id, area=row.area, state=row.state, token_id=row.token_id,
        token_type=row.token_type, attempts=row.attempts, max_attempts=row.max_attempts,
        reason=row.reason, correlation_id=row.correlation_id, created_at=row.created_at,
        expires_at=row.expires_at, completed_at=row.completed_at,
    )


def check_code(ctx: Context, uow: UnitOfWork, row: Row[Any], code: str, *, selecting: bool) -> Challenge:
    """Accept ``code`` for the TOTP factor of ``row`` and close the challenge, or count
    the failure, commit it and raise. ``selecting``: the factor is chosen in this request."""
    now = ctx.clock.now()
    if wait := wait_seconds(row.user_backoff_until, now):
        raise Throttled("too many wrong codes for this user; try again later", retry_after=wait,
                        code="user_throttled")
    if wait := wait_seconds(row.backoff_until, now):
        raise Throttled("too many wrong codes; try again later", retry_after=wait)
    code = code.strip().replace(" ", "")
    step = _match(ctx, row, code, now) if len(code) <= MAX_CODE_LENGTH else None
    conn = _conn(uow)
    if step is not None and _take_step(ctx, conn, row, step, now):
        return _verified(ctx, uow, conn, row, now, selecting=selecting)
    left = _failed(ctx, uow, conn, row, now, selecting=selecting)
    uow.commit()
    raise InvalidCode("the code is not valid", attempts_left=left)


def _match(ctx: Context, row: Row[Any], code: str, now: datetime) -> int | None:
    return otp.match_step(
        ctx.keyring.decrypt(row.secret_enc or ""), code, unix_time=now.timestamp(),
        params=params_from(ctx), window=ctx.settings.totp_window,
        drift=max(-MAX_DRIFT_STEPS, min(MAX_DRIFT_STEPS, row.drift or 0)), after_step=row.last_step,
    )


def _take_step(ctx: Context, conn: Connection, row: Row[Any], step: int, now: datetime) -> bool:
    """Compare-and-set: of two concurrent requests with the same code, one wins."""
    current = otp.time_step(now.timestamp(), ctx.settings.totp_period)
    won = conn.execute(
        _TAKE_STEP, {"b_token": row.t_id, "b_step": step, "b_drift": step - current, "b_now": now}
    ).rowcount
    return won == 1


def _verified(ctx: Context, uow: UnitOfWork, conn: Connection, row: Row[Any], now: datetime,
              *, selecting: bool) -> Challenge:
    if row.user_failures:  # most users have none to reset: one statement saved
        conn.execute(_RESET_USER, {"b_user": row.user_id})
    closed = conn.execute(
        _CLOSE_VERIFIED, {"b_challenge": row.id, "b_token": row.t_id, "b_type": row.t_type, "b_now": now}
    ).rowcount
    if closed != 1:  # closed by a concurrent answer since it was read; the rollback gives the step back
        raise Conflict("the challenge is closed", code="challenge_closed")
    if selecting:
        uow.emit(ChallengeFactorSelected(challenge_id=row.id, token_id=row.t_id, token_type=row.t_type),
                 user_id=row.user_id)
    uow.emit(ChallengeVerified(challenge_id=row.id, area=row.area, token_id=row.t_id, token_type=row.t_type),
             user_id=row.user_id)
    challenge = challenge_of(row)
    challenge.state, challenge.completed_at = ChallengeState.VERIFIED, now
    challenge.token_id, challenge.token_type = row.t_id, row.t_type
    return challenge


def _failed(ctx: Context, uow: UnitOfWork, conn: Connection, row: Row[Any], now: datetime,
            *, selecting: bool) -> int:
    """Count the wrong code everywhere it counts; returns the challenge's attempts left."""
    policy = policy_from(ctx)
    failures = conn.execute(_COUNT_TOKEN_FAILURE, {"b_token": row.t_id}).scalar()
    if failures is None:  # deleted since it was read
        raise Conflict("the selected factor is no longer usable", code="factor_unusable")
    lock = policy.should_lock(failures)  # the row was active when read (checked_row)
    until = next_backoff(policy, failures, now)
    if lock or until is not None or row.backoff_until is not None:
        conn.execute(_TOKEN_LOCK if lock else _TOKEN_BACKOFF, {"b_token": row.t_id, "b_until": until})
    _count_user_failure(ctx, conn, row, now)
    counted = conn.execute(
        _COUNT_ATTEMPT, {"b_challenge": row.id, "b_token": row.t_id, "b_type": row.t_type, "b_now": now}
    ).first()
    if counted is None:  # closed by a concurrent answer since it was read: nothing is counted
        raise Conflict("the challenge is closed", code="challenge_closed")
    attempts, max_attempts = counted
    left = max(0, max_attempts - attempts)
    if selecting:
        uow.emit(ChallengeFactorSelected(challenge_id=row.id, token_id=row.t_id, token_type=row.t_type),
                 user_id=row.user_id)
    uow.emit(TokenVerificationFailed(token_id=row.t_id, token_type=row.t_type, purpose="login",
                                     consecutive_failures=failures,
                                     backoff_seconds=int(policy.delay_after(failures))),
             user_id=row.user_id)
    if lock:
        uow.emit(TokenLocked(token_id=row.t_id, token_type=row.t_type, consecutive_failures=failures),
                 user_id=row.user_id)
    uow.emit(ChallengeFailed(challenge_id=row.id, area=row.area, token_id=row.t_id, token_type=row.t_type,
                             reason="exhausted" if left == 0 else "invalid_code", attempts_left=left),
             user_id=row.user_id)
    return left


def _count_user_failure(ctx: Context, conn: Connection, row: Row[Any], now: datetime) -> None:
    """One more consecutive failure over all of the user's factors; the profile row is
    created on demand (an upsert, so concurrent first failures both count)."""
    upsert = _UPSERT_USER_FAILURE[conn.dialect.name]
    failures = conn.execute(upsert, {"b_user": row.user_id, "b_now": now}).scalar_one()
    delay = user_delay_after(failures, ctx.settings.user_max_failures, ctx.settings.user_backoff_max_seconds)
    until = now + timedelta(seconds=delay) if delay else None
    if until is not None or row.user_backoff_until is not None:
        conn.execute(_USER_BACKOFF, {"b_user": row.user_id, "b_until": until})


def checked_row(ctx: Context, row: Row[Any] | None, token_id: uuid.UUID | None) -> Row[Any]:
    """The same refusals, in the same order, as the ORM path of ``challenges.verify``."""
    if row is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    state = effective_state(ctx, challenge_of(row))
    if state == ChallengeState.EXPIRED:
        raise Gone("the challenge has expired", code="challenge_expired")
    if state != ChallengeState.PENDING:
        raise Conflict(f"the challenge is {state}", code="challenge_closed")
    if token_id is not None and row.token_id is None:
        same_user = row.t_id is not None and row.t_user_id == row.user_id
        if same_user and row.t_type not in CODE_READY_TYPES:
            raise Conflict("select this factor first; selecting it sends the code", code="select_first")
        if not same_user or row.t_state != TokenState.ACTIVE:
            raise NotFound("that factor is not available for this challenge", code="factor_not_found")
    elif token_id is not None and row.token_id != token_id:
        raise Conflict("another factor is selected for this challenge", code="factor_mismatch")
    if row.token_id is None and token_id is None:
        raise Conflict("select a factor first", code="no_factor_selected")
    if row.t_id is None or row.t_state != TokenState.ACTIVE:
        raise Conflict("the selected factor is no longer usable", code="factor_unusable")
    return row

