"""The challenge use cases: create, select a factor, verify a code, answer a push,
mark undeliverable, expire. One flow for every factor.

Each use case opens its unit of work and commits it. Reads happen before the write lock
is taken (``db.read_only``); the rules decide from that read, and the store writes what
they decided by compare-and-set. A failed check is itself a state change (the failure
counts), so it is committed before the error is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.core import lockout
from services.core.challenges import rules, store
from services.core.challenges.rules import ChallengeSnapshot, Factor
from services.core.errors import Conflict, Forbidden, InvalidCode, NotFound, Unprocessable
from services.core.factors.base import ChallengeRef, TokenSnapshot, factor_for
from services.core.models import Challenge, ChallengeState, TokenState
from services.core.plumbing import metrics
from services.core.plumbing.db import read_only, transient
from shared.events.challenge import ChallengeNotRequired

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


@dataclass
class ChallengeView:
    challenge: Challenge | None
    factors: Sequence[Factor | TokenSnapshot] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def create(
    ctx: Context, user_id: str, area: str, correlation_id: str | None = None
) -> ChallengeView:
    if area not in ctx.settings.area_names:
        raise Unprocessable(f"unknown area {area!r}", code="unknown_area")
    with read_only(ctx.engine) as conn:  # the write lock is taken only for the INSERT
        protection = store.protected_factors(conn, user_id, area)
    _refuse_if_fails_closed(protection)
    factors = protection.factors
    with ctx.uow(correlation_id) as uow:
        if not factors:
            # Unknown users get this same answer: no account's existence is revealed.
            uow.emit(ChallengeNotRequired(area=area), user_id=user_id)
            uow.commit()
            return ChallengeView(None)
        values = new_challenge(ctx, uow, user_id, area)
        store.insert(uow.connection, values)
        uow.emit(rules.created(values["id"], area, factors, "login"), user_id=user_id)
        uow.commit()
    return ChallengeView(transient(Challenge, values), factors)  # the answer is built from it


def _refuse_if_fails_closed(protection: rules.Protection) -> None:
    if protection.fails_closed:
        raise Forbidden("every second factor of this user is locked", code="factors_locked")


def new_challenge(
    ctx: Context,
    uow: UnitOfWork,
    user_id: str,
    area: str,
    purpose: str = "login",
    target: str | None = None,
) -> dict[str, Any]:
    """The row of a challenge opened now: pending, no attempts, the configured lifetime."""
    now = ctx.clock.now()
    return dict(
        id=uuid.uuid4(),
        user_id=user_id,
        area=area,
        purpose=purpose,
        target=target,
        state=ChallengeState.PENDING,
        attempts=0,
        max_attempts=ctx.settings.challenge_max_attempts,
        correlation_id=uow.correlation_id,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.challenge_ttl_seconds),
    )


@dataclass(frozen=True)
class CodeLogin:
    """A login answered in the request that starts it. ``view.challenge`` is None when the
    area needs no second factor; else it is the new challenge, verified, or still pending
    (or failed) after a wrong code with ``attempts_left``. ``token`` is the factor checked."""

    view: ChallengeView
    token: TokenSnapshot | None = None
    attempts_left: int | None = None

    @property
    def verified(self) -> bool:
        c = self.view.challenge
        return c is not None and c.state == ChallengeState.VERIFIED


def login(
    ctx: Context,
    user_id: str,
    area: str,
    code: str,
    token_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> CodeLogin | None:
    """Create a login challenge and check ``code`` in one unit of work, for a factor whose
    code exists before a challenge (TOTP): the one named, or the user's oldest. One event
    tells the outcome: ``challenge.verified``, or ``challenge.failed`` for a wrong code
    (with ``token.locked`` the once the token reaches the lock). The challenge row is
    written as it ends, so a wrong code can be retried on it with ``verify``.

    None, with nothing written, when the user has no such factor: the login needs a
    challenge first (``create``, then ``select_factor``)."""
    if area not in ctx.settings.area_names:
        raise Unprocessable(f"unknown area {area!r}", code="unknown_area")
    with read_only(ctx.engine) as conn:
        protection = store.protected_factors(conn, user_id, area)
    _refuse_if_fails_closed(protection)
    if not protection.tokens:
        with ctx.uow(correlation_id) as uow:
            uow.emit(ChallengeNotRequired(area=area), user_id=user_id)
            uow.commit()
        return CodeLogin(ChallengeView(None))
    token = rules.code_factor(protection, token_id)
    if token is None:
        return None
    now = ctx.clock.now()
    lockout.refuse_while_waiting(protection.user_backoff_until, token.backoff_until, now)
    code = code.strip().replace(" ", "")
    with ctx.uow(correlation_id) as uow:
        conn = uow.connection
        values = new_challenge(ctx, uow, user_id, area)
        values.update(token_id=token.id, token_type=token.type)
        if len(code) <= lockout.MAX_CODE_LENGTH and factor_for(token.type).check_code(
            ctx, conn, token, code, now
        ):
            lockout.record_success(conn, token.id, user_id, protection.user_failures)
            values.update(state=ChallengeState.VERIFIED, completed_at=now)
            store.insert(conn, values)
            uow.emit(rules.verified_at_once(values["id"], area, token), user_id=user_id)
            uow.commit()
            return CodeLogin(ChallengeView(transient(Challenge, values), [token]), token)
        failure = lockout.record_failure(ctx.settings, conn, token.id, token.state, user_id, now)
        values["attempts"] = 1
        if rules.exhausted(0, values["max_attempts"]):
            values.update(state=ChallengeState.FAILED, reason=rules.EXHAUSTED, completed_at=now)
        store.insert(conn, values)
        for event in rules.failed_at_once(
            values["id"], area, token, failure.token_failures, failure.locked_now,
            values["max_attempts"],
        ):
            uow.emit(event, user_id=user_id)
        uow.commit()
    left = rules.attempts_left(1, values["max_attempts"])
    return CodeLogin(ChallengeView(transient(Challenge, values), [token]), token, left)


def get(ctx: Context, challenge_id: uuid.UUID) -> Challenge:
    with read_only(ctx.engine) as conn:
        challenge = store.get(conn, challenge_id)
    if challenge is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    return challenge


def state_now(ctx: Context, challenge: Challenge) -> str:
    return rules.effective_state(challenge.state, challenge.expires_at, ctx.clock.now())


def open_challenge(ctx: Context, challenge_id: uuid.UUID) -> Challenge:
    """The challenge, if it can still be answered."""
    challenge = get(ctx, challenge_id)
    rules.refuse_if_closed(challenge.state, challenge.expires_at, ctx.clock.now())
    return challenge


def select_factor(
    ctx: Context, challenge_id: uuid.UUID, token_id: uuid.UUID, correlation_id: str | None = None
) -> ChallengeView:
    """The user picks a factor: SMS sends a code, PUSH a request, TOTP nothing."""
    with read_only(ctx.engine) as conn:
        snap = rules.refuse_selection(store.snapshot(conn, challenge_id, token_id), ctx.clock.now())
    token = snap.token
    assert token is not None  # refuse_selection
    with ctx.uow(correlation_id) as uow:
        now = ctx.clock.now()
        result = factor_for(token.type).select(
            ctx, uow, token, ChallengeRef(snap.id, snap.user_id, snap.area, snap.purpose)
        )
        if not store.select_factor(
            uow.connection, snap.id, token, now, result.expires_at
        ):
            raise Conflict(
                "the challenge is closed", code="challenge_closed"
            )  # the rollback undoes the send
        uow.emit(rules.selected(snap.id, token), user_id=snap.user_id)
        uow.commit()
    challenge = _challenge_of(snap, token_id=token.id, token_type=token.type)
    if result.expires_at is not None:
        challenge.expires_at = result.expires_at
    return ChallengeView(challenge, [token], result.extras)


def verify(
    ctx: Context,
    challenge_id: uuid.UUID,
    code: str,
    token_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> Challenge:
    """Check ``code`` for the selected factor; ``token_id`` may select a factor whose code
    exists before selection (TOTP) in the same request, emitting both events.

    With a factor already selected, ``token_id`` must name that same factor."""
    return verify_snapshot(
        ctx, snapshot(ctx, challenge_id, token_id), code, token_id, correlation_id
    )


def snapshot(
    ctx: Context, challenge_id: uuid.UUID, token_id: uuid.UUID | None
) -> ChallengeSnapshot | None:
    """The read a verify decides from, taken outside the write lock."""
    with read_only(ctx.engine) as conn:
        return store.snapshot(conn, challenge_id, token_id)


def verify_snapshot(
    ctx: Context,
    snap: ChallengeSnapshot | None,
    code: str,
    token_id: uuid.UUID | None,
    correlation_id: str | None = None,
) -> Challenge:
    """``verify`` from a read taken earlier: whatever changed since is caught by the
    compare-and-set writes and changes nothing."""
    now = ctx.clock.now()
    token = rules.refuse_code(snap, token_id, now)
    assert snap is not None  # refuse_code
    lockout.refuse_while_waiting(snap.user_backoff_until, token.backoff_until, now)
    with ctx.uow(correlation_id) as uow:
        outcome = _check(ctx, uow, snap, token, code, now)
        uow.commit()
    if isinstance(outcome, int):
        raise InvalidCode("the code is not valid", attempts_left=outcome)
    return outcome


def _check(
    ctx: Context,
    uow: UnitOfWork,
    snap: ChallengeSnapshot,
    token: TokenSnapshot,
    code: str,
    now: datetime,
) -> Challenge | int:
    """The verified challenge, or the attempts left when the code was wrong (and counted)."""
    conn = uow.connection
    selecting = snap.token_id is None
    code = code.strip().replace(" ", "")
    if len(code) <= lockout.MAX_CODE_LENGTH and factor_for(token.type).check_code(
        ctx, conn, token, code, now
    ):
        lockout.record_success(conn, token.id, snap.user_id, snap.user_failures)
        if not store.close_verified(conn, snap.id, token, now):
            # Closed by a concurrent answer since the read; the rollback gives the code back.
            raise Conflict("the challenge is closed", code="challenge_closed")
        for event in rules.verified(snap, token, selecting=selecting):
            uow.emit(event, user_id=snap.user_id)
        return _challenge_of(
            snap,
            state=ChallengeState.VERIFIED,
            token_id=token.id,
            token_type=token.type,
            completed_at=now,
        )
    failure = lockout.record_failure(ctx.settings, conn, token.id, token.state, snap.user_id, now)
    counted = store.count_attempt(conn, snap.id, token.id, token.type, now)
    if counted is None:  # closed by a concurrent answer since the read: nothing is counted
        raise Conflict("the challenge is closed", code="challenge_closed")
    events = rules.code_failed(
        snap,
        token,
        selecting=selecting,
        purpose="login" if snap.purpose == "login" else "step_up",
        token_failures=failure.token_failures,
        backoff_seconds=failure.backoff_seconds,
        locked_now=failure.locked_now,
        attempts=counted[0],
        max_attempts=counted[1],
    )
    for event in events:
        uow.emit(event, user_id=snap.user_id)
    return rules.attempts_left(*counted)


def answer_push(
    ctx: Context,
    uow: UnitOfWork,
    challenge: Challenge,
    token_id: uuid.UUID,
    *,
    approve: bool,
    reason: rules.DeclineReason | None = None,
) -> bool:
    """The phone approved or declined; False if the challenge closed or expired meanwhile.
    Runs in the push endpoint's unit of work, which also checked the signature."""
    now = ctx.clock.now()
    conn = uow.connection
    state = ChallengeState.APPROVED if approve else ChallengeState.DECLINED
    if not store.close_answered(
        conn, challenge.id, token_id, state, None if approve else reason, now
    ):
        return False
    if approve:
        lockout.token_succeeded(conn, token_id, TokenState.ACTIVE, now)
        lockout.record_success(conn, token_id, challenge.user_id, user_failures=None)
        uow.emit(rules.approved(challenge.id, challenge.area, token_id), user_id=challenge.user_id)
    else:
        uow.emit(
            rules.declined(challenge.id, challenge.area, token_id, reason or "declined"),
            user_id=challenge.user_id,
        )
    return True


def count_wrong_answer(
    ctx: Context, uow: UnitOfWork, challenge: Challenge, token_id: uuid.UUID
) -> bool:
    """A wrong answer from a device (a push's number matching): one attempt of the
    challenge, which stays open while attempts are left."""
    counted = store.count_attempt(
        uow.connection, challenge.id, token_id, "push", ctx.clock.now()
    )
    if counted is None:
        return False
    uow.emit(
        rules.attempt_failed(challenge.id, challenge.area, token_id, "push", *counted),
        user_id=challenge.user_id,
    )
    return True


def mark_undeliverable(
    ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID, token_id: uuid.UUID | None
) -> None:
    """A pending challenge waiting for an SMS that cannot be delivered fails with reason
    ``undeliverable``, only if the user has not moved on (still this factor selected)."""
    row = store.mark_undeliverable(
        uow.connection, challenge_id, token_id, ctx.clock.now()
    )
    if row is not None:
        uow.emit(
            rules.undeliverable(
                challenge_id, row.area, token_id, "sms", row.attempts, row.max_attempts
            ),
            user_id=row.user_id,
        )


def expire_due(ctx: Context, batch: int = 500, max_batches: int = 20) -> int:
    """Move pending challenges past their expiry to expired, each exactly once: a bounded
    sweep of at most ``max_batches`` units of work of ``batch`` challenges.

    It reads first: the sweep runs every second, and a write transaction even when
    nothing is due would take the write lock (on SQLite, every process's) each time."""
    with read_only(ctx.engine) as conn:
        if not store.due(conn, ctx.clock.now(), 1):
            return 0
    total = 0
    for _ in range(max_batches):
        pushes = 0
        with ctx.uow() as uow:
            now = ctx.clock.now()
            conn = uow.connection
            rows = store.due(conn, now, batch)
            for row in rows:
                if store.expire(conn, row.id, now):
                    total += 1
                    pushes += row.token_type == "push"
                    uow.emit(rules.expired(row.id, row.area), user_id=row.user_id)
            uow.commit()
        if pushes:  # the event does not name the factor; the row does
            metrics.PUSH.labels("expired").inc(pushes)
        if len(rows) < batch:
            break
    return total


def _challenge_of(snap: ChallengeSnapshot, **changes: Any) -> Challenge:
    values = dict(
        id=snap.id,
        user_id=snap.user_id,
        area=snap.area,
        state=snap.state,
        token_id=snap.token_id,
        token_type=snap.token_type,
        attempts=snap.attempts,
        max_attempts=snap.max_attempts,
        expires_at=snap.expires_at,
        purpose=snap.purpose,
    )
    values.update(changes)
    return transient(Challenge, values)
