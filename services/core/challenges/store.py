"""Challenges in SQL Core: every read a challenge needs and every write, each write a
compare-and-set on the state it was decided from.

Every statement is built once with bind parameters and runs as a ``Prepared`` statement
(compiled once per dialect, executed on the DBAPI cursor): building a construct, or
SQLAlchemy's execution of it, cost more than running it. Reads run outside the write lock
(``db.read_only``); a write whose guard no longer holds changes nothing, and the caller
learns it from the row count or the empty ``RETURNING``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.engine import Connection

from services.core.challenges.rules import ChallengeSnapshot, Factor, Protection
from services.core.factors.base import TokenSnapshot
from services.core.models import (
    AreaProtection,
    Challenge,
    ChallengeState,
    Token,
    TokenState,
    UserProfile,
)
from services.core.plumbing.db import transient
from services.core.plumbing.prepared import Prepared, insert_named

C, T, P, A = (
    Challenge.__table__.c,
    Token.__table__.c,
    UserProfile.__table__.c,
    AreaProtection.__table__.c,
)
CHALLENGES, TOKENS, PROFILES, AREAS = (
    Challenge.__table__,
    Token.__table__,
    UserProfile.__table__,
    AreaProtection.__table__,
)

# -- reads ---------------------------------------------------------------------------------

# The area's protection row joined with the user's active and locked tokens (a protected
# user without tokens gives one row with NULL token columns) and the user's failure state:
# everything a challenge's creation, or a login in one request, decides from.
_PROTECTED_FACTORS = Prepared(
    select(
        A.protected,
        T.id,
        T.user_id,
        T.type,
        T.description,
        T.state,
        T.secret_enc,
        T.totp_params,
        T.last_step,
        T.drift,
        T.serial,
        T.backoff_until,
        P.backoff_until.label("user_backoff_until"),
        P.failures.label("user_failures"),
    )
    .select_from(AREAS)
    .outerjoin(
        TOKENS, and_(T.user_id == A.user_id, T.state.in_((TokenState.ACTIVE, TokenState.LOCKED)))
    )
    .outerjoin(PROFILES, P.user_id == A.user_id)
    .where(A.user_id == bindparam("b_user"), A.area == bindparam("b_area"))
    .order_by(T.created_at, T.id)
)
# Every active and locked token of a user: the factors a step-up may be answered with.
_USER_FACTORS = Prepared(
    select(T.id, T.type, T.description, T.state, T.serial)
    .where(
        T.user_id == bindparam("b_user"),
        T.state.in_((TokenState.ACTIVE, TokenState.LOCKED)),
    )
    .order_by(T.created_at, T.id)
)
_CHALLENGE_COLUMNS = (
    C.id,
    C.user_id,
    C.area,
    C.state,
    C.token_id,
    C.token_type,
    C.attempts,
    C.max_attempts,
    C.reason,
    C.correlation_id,
    C.created_at,
    C.expires_at,
    C.completed_at,
    C.purpose,
    C.target,
    C.used_at,
)
_GET = Prepared(select(*_CHALLENGE_COLUMNS).where(C.id == bindparam("b_challenge")))
_SNAPSHOT_COLUMNS = (
    C.id,
    C.user_id,
    C.area,
    C.state,
    C.token_id,
    C.token_type,
    C.attempts,
    C.max_attempts,
    C.expires_at,
    C.purpose,
    T.id.label("t_id"),
    T.user_id.label("t_user_id"),
    T.type.label("t_type"),
    T.state.label("t_state"),
    T.description,
    T.secret_enc,
    T.totp_params,
    T.last_step,
    T.drift,
    T.phone_enc,
    T.phone_masked,
    T.serial,
    T.backoff_until,
    P.backoff_until.label("user_backoff_until"),
    P.failures.label("user_failures"),
)


def _snapshot_query(token_column: Any) -> Any:
    return (
        select(*_SNAPSHOT_COLUMNS)
        .select_from(CHALLENGES)
        .outerjoin(TOKENS, T.id == token_column)
        .outerjoin(PROFILES, P.user_id == C.user_id)
        .where(C.id == bindparam("b_challenge"))
    )


_SNAPSHOT_GIVEN = Prepared(_snapshot_query(bindparam("b_token")))  # the request names the factor
_SNAPSHOT_SELECTED = Prepared(_snapshot_query(C.token_id))  # the factor selected earlier
_DUE = Prepared(
    select(C.id, C.user_id, C.area, C.token_type)
    .where(C.state == ChallengeState.PENDING, C.expires_at <= bindparam("b_now"))
    .order_by(C.expires_at)
    .limit(bindparam("b_limit"))
)

# -- writes --------------------------------------------------------------------------------

# Every column named: a new challenge's row gives each one (None for those it leaves empty).
_INSERT = Prepared(insert_named(CHALLENGES))
_NO_VALUES = dict.fromkeys(c.key for c in CHALLENGES.c)
# Read before the write lock: the challenge must still be pending and unexpired, and still
# have this factor or none selected.
_STILL_OPEN = and_(
    C.id == bindparam("b_challenge"),
    C.state == ChallengeState.PENDING,
    C.expires_at > bindparam("b_now"),
    or_(C.token_id.is_(None), C.token_id == bindparam("b_token")),
)
_SELECT_STATEMENT = (
    update(CHALLENGES)
    .where(
        C.id == bindparam("b_challenge"),
        C.state == ChallengeState.PENDING,
        C.expires_at > bindparam("b_now"),
    )
    .values(token_id=bindparam("b_token"), token_type=bindparam("b_type"))
)
_SELECT = Prepared(_SELECT_STATEMENT)
_SELECT_UNTIL = Prepared(_SELECT_STATEMENT.values(expires_at=bindparam("b_expires")))
_CLOSE_VERIFIED = Prepared(
    update(CHALLENGES)
    .where(_STILL_OPEN)
    .values(
        state=ChallengeState.VERIFIED,
        token_id=bindparam("b_token"),
        token_type=bindparam("b_type"),
        completed_at=bindparam("b_now"),
    )
)
# Another challenge's success counted for this one (``cover``): verified or approved.
_CLOSE_COVERED = Prepared(
    update(CHALLENGES)
    .where(_STILL_OPEN)
    .values(
        state=bindparam("b_state"),
        token_id=bindparam("b_token"),
        token_type=bindparam("b_type"),
        completed_at=bindparam("b_now"),
    )
)
_EXHAUSTED = C.attempts + 1 >= C.max_attempts  # rules.exhausted, in SQL
_COUNT_ATTEMPT = Prepared(
    update(CHALLENGES)
    .where(_STILL_OPEN)
    .values(
        attempts=C.attempts + 1,
        token_id=bindparam("b_token"),
        token_type=bindparam("b_type"),
        state=case((_EXHAUSTED, ChallengeState.FAILED), else_=C.state),
        reason=case((_EXHAUSTED, "exhausted"), else_=C.reason),
        completed_at=case((_EXHAUSTED, bindparam("b_now")), else_=C.completed_at),
    )
    .returning(C.attempts, C.max_attempts)
)
# A push answer: only while pending, unexpired and still waiting for that token.
_CLOSE_ANSWERED = Prepared(
    update(CHALLENGES)
    .where(
        C.id == bindparam("b_challenge"),
        C.state == ChallengeState.PENDING,
        C.expires_at > bindparam("b_now"),
        C.token_id == bindparam("b_token"),
    )
    .values(
        state=bindparam("b_state"), reason=bindparam("b_reason"), completed_at=bindparam("b_now")
    )
)
_MARK_UNDELIVERABLE = Prepared(
    update(CHALLENGES)
    .where(
        C.id == bindparam("b_challenge"),
        C.state == ChallengeState.PENDING,
        C.expires_at > bindparam("b_now"),
        C.token_id == bindparam("b_token"),
    )
    .values(state=ChallengeState.FAILED, reason="undeliverable", completed_at=bindparam("b_now"))
    .returning(C.user_id, C.area, C.attempts, C.max_attempts)
)
# A passed step-up is spent once, by the action it was asked for, while still fresh.
_USE_STEP_UP = Prepared(
    update(CHALLENGES)
    .where(
        C.id == bindparam("b_challenge"),
        C.user_id == bindparam("b_user"),
        C.purpose == bindparam("b_purpose"),
        C.target == bindparam("b_target"),
        C.state.in_(ChallengeState.SUCCESS),
        C.used_at.is_(None),
        C.completed_at > bindparam("b_fresh_after"),
    )
    .values(used_at=bindparam("b_now"))
)
_EXPIRE = Prepared(
    update(CHALLENGES)
    .where(
        C.id == bindparam("b_challenge"),
        C.state == ChallengeState.PENDING,
        C.expires_at <= bindparam("b_now"),
    )
    .values(state=ChallengeState.EXPIRED, completed_at=bindparam("b_now"), reason="expired")
)


# -- reads ---------------------------------------------------------------------------------


def protected_factors(conn: Connection, user_id: str, area: str) -> Protection:
    """Whether (user, area) is protected, its usable factors (oldest first) as snapshots a
    code can be checked against, whether any factor is locked, and the user's back-off."""
    rows = _PROTECTED_FACTORS.all(conn, {"b_user": user_id, "b_area": area})
    if not rows or not rows[0].protected:
        return Protection(protected=False)
    first = rows[0]
    tokens = [r for r in rows if r.id is not None]
    return Protection(
        protected=True,
        tokens=[
            TokenSnapshot(
                id=r.id,
                user_id=r.user_id,
                type=r.type,
                state=r.state,
                description=r.description,
                secret_enc=r.secret_enc,
                totp_params=r.totp_params,
                last_step=r.last_step,
                drift=r.drift or 0,
                serial=r.serial,
                backoff_until=r.backoff_until,
            )
            for r in tokens
            if r.state == TokenState.ACTIVE
        ],
        any_locked=any(r.state == TokenState.LOCKED for r in tokens),
        user_backoff_until=first.user_backoff_until,
        user_failures=first.user_failures or 0,
    )


def user_factors(conn: Connection, user_id: str) -> tuple[list[Factor], bool]:
    """The user's active factors (oldest first), and whether any factor is locked."""
    rows = _USER_FACTORS.all(conn, {"b_user": user_id})
    usable = [
        Factor(r.id, r.type, r.description, r.serial)
        for r in rows
        if r.state == TokenState.ACTIVE
    ]
    return usable, any(r.state == TokenState.LOCKED for r in rows)


def get(conn: Connection, challenge_id: uuid.UUID) -> Challenge | None:
    """The challenge as a transient object (nothing is attached to a session)."""
    row = _GET.first(conn, {"b_challenge": challenge_id})
    return None if row is None else transient(Challenge, row._asdict())


def snapshot(
    conn: Connection, challenge_id: uuid.UUID, token_id: uuid.UUID | None
) -> ChallengeSnapshot | None:
    """The challenge, the factor ``token_id`` names (or the selected one) and the user's
    failure state, in one read."""
    if token_id is None:
        row = _SNAPSHOT_SELECTED.first(conn, {"b_challenge": challenge_id})
    else:
        row = _SNAPSHOT_GIVEN.first(
            conn, {"b_challenge": challenge_id, "b_token": token_id}
        )
    return None if row is None else _snapshot_of(row)


def _snapshot_of(row: Any) -> ChallengeSnapshot:
    token = (
        None
        if row.t_id is None
        else TokenSnapshot(
            id=row.t_id,
            user_id=row.t_user_id,
            type=row.t_type,
            state=row.t_state,
            description=row.description,
            secret_enc=row.secret_enc,
            totp_params=row.totp_params,
            last_step=row.last_step,
            drift=row.drift or 0,
            phone_enc=row.phone_enc,
            phone_masked=row.phone_masked,
            serial=row.serial,
            backoff_until=row.backoff_until,
        )
    )
    return ChallengeSnapshot(
        id=row.id,
        user_id=row.user_id,
        area=row.area,
        state=row.state,
        token_id=row.token_id,
        token_type=row.token_type,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        expires_at=row.expires_at,
        token=token,
        user_backoff_until=row.user_backoff_until,
        user_failures=row.user_failures or 0,
        purpose=row.purpose,
    )


def due(conn: Connection, now: datetime, limit: int) -> Sequence[Any]:
    return _DUE.all(conn, {"b_now": now, "b_limit": limit})


# -- writes --------------------------------------------------------------------------------


def insert(conn: Connection, values: dict[str, Any]) -> None:
    _INSERT.rowcount(conn, {**_NO_VALUES, **values})


def select_factor(
    conn: Connection,
    challenge_id: uuid.UUID,
    token: TokenSnapshot,
    now: datetime,
    expires_at: datetime | None,
) -> bool:
    params = {"b_challenge": challenge_id, "b_token": token.id, "b_type": token.type, "b_now": now}
    if expires_at is None:
        return _SELECT.rowcount(conn, params) == 1
    return _SELECT_UNTIL.rowcount(conn, {**params, "b_expires": expires_at}) == 1


def close_verified(
    conn: Connection, challenge_id: uuid.UUID, token: TokenSnapshot, now: datetime
) -> bool:
    params = {"b_challenge": challenge_id, "b_token": token.id, "b_type": token.type, "b_now": now}
    return _CLOSE_VERIFIED.rowcount(conn, params) == 1


def close_covered(
    conn: Connection,
    challenge_id: uuid.UUID,
    token_id: uuid.UUID,
    token_type: str,
    state: str,
    now: datetime,
) -> bool:
    params = {"b_challenge": challenge_id, "b_token": token_id, "b_type": token_type,
              "b_state": state, "b_now": now}
    return _CLOSE_COVERED.rowcount(conn, params) == 1


def count_attempt(
    conn: Connection, challenge_id: uuid.UUID, token_id: uuid.UUID, token_type: str, now: datetime
) -> tuple[int, int] | None:
    """One more wrong answer; the challenge fails when that uses up its attempts.
    (attempts, max_attempts) after it, or None if the challenge was closed meanwhile."""
    params = {"b_challenge": challenge_id, "b_token": token_id, "b_type": token_type, "b_now": now}
    row = _COUNT_ATTEMPT.first(conn, params)
    return None if row is None else (row.attempts, row.max_attempts)


def close_answered(
    conn: Connection,
    challenge_id: uuid.UUID,
    token_id: uuid.UUID,
    state: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """A push approved or declined."""
    params = {
        "b_challenge": challenge_id,
        "b_token": token_id,
        "b_state": state,
        "b_reason": reason,
        "b_now": now,
    }
    return _CLOSE_ANSWERED.rowcount(conn, params) == 1


def mark_undeliverable(
    conn: Connection, challenge_id: uuid.UUID, token_id: uuid.UUID | None, now: datetime
) -> Any | None:
    params = {"b_challenge": challenge_id, "b_token": token_id, "b_now": now}
    return _MARK_UNDELIVERABLE.first(conn, params)


def expire(conn: Connection, challenge_id: uuid.UUID, now: datetime) -> bool:
    return _EXPIRE.rowcount(conn, {"b_challenge": challenge_id, "b_now": now}) == 1


def use_step_up(
    conn: Connection,
    challenge_id: uuid.UUID,
    user_id: str,
    purpose: str,
    target: str,
    now: datetime,
    fresh_after: datetime,
) -> bool:
    """Spend a passed step-up on its action: True for exactly one caller."""
    params = {
        "b_challenge": challenge_id,
        "b_user": user_id,
        "b_purpose": purpose,
        "b_target": target,
        "b_now": now,
        "b_fresh_after": fresh_after,
    }
    return _USE_STEP_UP.rowcount(conn, params) == 1
