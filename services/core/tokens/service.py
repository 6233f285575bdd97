"""Token use cases: enroll (start → scanned → activate → confirm), list, delete.

Each use case opens its unit of work and commits it; a failed code is committed (it
counts) before the error is raised (see ``verification``). ``get_token``, ``list_tokens``
and ``make_active`` are steps other use cases run inside their own unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select

from services.core.errors import Conflict, Gone, NotFound, Unprocessable
from services.core.factors.base import EnrollRequest, factor_for, factor_types
from services.core.models import Token, TokenState
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import read_only
from services.core.tokens import lifecycle
from services.core.tokens.verification import check_token_code
from shared.envelope import EventData
from shared.events.enrollment import (
    EnrollmentActivated,
    EnrollmentConfirmed,
    EnrollmentScanned,
    EnrollmentStarted,
)
from shared.events.token import TokenDeleted

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

MAX_TOKENS_PER_USER = 20


@dataclass
class StepResult:
    token: Token
    details: dict[str, Any]


def get_token(uow: UnitOfWork, user_id: str, token_id: uuid.UUID) -> Token:
    token = uow.session.get(Token, token_id)
    if token is None or token.user_id != user_id:  # another user's token is simply not found
        raise NotFound("no such token for this user", code="token_not_found")
    return token


def list_tokens(uow: UnitOfWork, user_id: str) -> list[Token]:
    return list(
        uow.session.scalars(
            select(Token).where(Token.user_id == user_id).order_by(Token.created_at, Token.id)
        )
    )


def start_enrollment(
    ctx: Context, user_id: str, req: EnrollRequest, correlation_id: str | None = None
) -> StepResult:
    with ctx.uow(correlation_id) as uow:
        if req.type not in factor_types():
            raise Unprocessable(f"unknown token type {req.type!r}", code="unknown_token_type")
        if len(list_tokens(uow, user_id)) >= MAX_TOKENS_PER_USER:
            raise Conflict("this user has too many tokens", code="too_many_tokens")
        factor = factor_for(req.type)
        now = ctx.clock.now()
        token = Token(
            id=uuid.uuid4(),
            user_id=user_id,
            type=req.type,
            description=req.description,
            state=factor.initial_state,
            drift=0,
            failures=0,
            created_at=now,
            enrollment_expires_at=now + timedelta(seconds=ctx.settings.enrollment_ttl_seconds),
        )
        factor.prepare(ctx, uow, token, req)
        uow.session.add(token)
        uow.session.flush()
        details = factor.enrollment_details(ctx, uow, token)
        uow.emit(
            EnrollmentStarted(
                token_id=token.id,
                token_type=token.type,
                description=token.description,
                phone=token.phone_masked,
                serial=token.serial,
            ),
            user_id=user_id,
        )
        uow.commit()
    return StepResult(token, details)


def _enrolling(ctx: Context, uow: UnitOfWork, user_id: str, token_id: uuid.UUID) -> Token:
    token = get_token(uow, user_id, token_id)
    if token.state not in TokenState.ENROLLING:
        raise Conflict(f"the token is {token.state}, not being enrolled")
    expires = token.enrollment_expires_at
    if expires is not None and as_utc(expires) <= ctx.clock.now():
        raise Gone("the enrollment has expired; start again", code="enrollment_expired")
    return token


def overview(ctx: Context, user_id: str) -> list[Token]:
    with ctx.uow() as uow:
        tokens = list_tokens(uow, user_id)
        # Kept as read: leaving the unit of work rolls back, which would expire them.
        uow.session.expunge_all()
    return tokens


def mark_scanned(
    ctx: Context, user_id: str, token_id: uuid.UUID, correlation_id: str | None = None
) -> StepResult:
    with ctx.uow(correlation_id) as uow:
        token = _enrolling(ctx, uow, user_id, token_id)
        if not factor_for(token.type).has_scan_step:
            raise Conflict(f"{token.type} tokens have no scan step")
        if token.state == TokenState.PENDING:
            token.state = TokenState.SCANNED
            uow.emit(EnrollmentScanned(token_id=token.id, token_type=token.type), user_id=user_id)
        elif token.state != TokenState.SCANNED:
            raise Conflict(f"the token is {token.state}")
        uow.commit()
    return StepResult(token, {})


def activate(
    ctx: Context,
    user_id: str,
    token_id: uuid.UUID,
    code: str,
    correlation_id: str | None = None,
    *,
    confirm: bool = False,
) -> StepResult:
    """The first code from the new token. With ``confirm`` it also stands for the second
    (a login that enrolls a token takes one code, as privacyIDEA's does)."""
    with ctx.uow(correlation_id) as uow:
        token = _enrolling(ctx, uow, user_id, token_id)
        factor = factor_for(token.type)
        expected = TokenState.SCANNED if factor.has_scan_step else factor.initial_state
        if token.state != expected:
            raise Conflict(f"the token is {token.state}; activation needs {expected}")
        check_token_code(ctx, uow, token, code, purpose="activate")
        uow.emit(EnrollmentActivated(token_id=token.id, token_type=token.type), user_id=user_id)
        if factor.needs_confirmation and not confirm:
            token.state = TokenState.UNCONFIRMED
            result = StepResult(token, {})
        else:
            result = make_active(ctx, uow, token)
        uow.commit()
    return result


def confirm(
    ctx: Context, user_id: str, token_id: uuid.UUID, code: str, correlation_id: str | None = None
) -> StepResult:
    with ctx.uow(correlation_id) as uow:
        token = _enrolling(ctx, uow, user_id, token_id)
        if token.state != TokenState.UNCONFIRMED:
            raise Conflict(f"the token is {token.state}; confirmation follows activation")
        check_token_code(ctx, uow, token, code, purpose="confirm")
        result = make_active(ctx, uow, token)
        uow.commit()
    return result


def make_active(
    ctx: Context, uow: UnitOfWork, token: Token, event: EventData | None = None
) -> StepResult:
    """Shared by every factor type once enrollment has succeeded (push included), and by
    an import (``event`` is then ``token.imported`` instead of ``enrollment.confirmed``)."""
    token.state = TokenState.ACTIVE
    token.activated_at = ctx.clock.now()
    token.enrollment_expires_at = None
    confirmed = EnrollmentConfirmed(token_id=token.id, token_type=token.type)
    uow.emit(event or confirmed, user_id=token.user_id)
    return StepResult(token, lifecycle.token_activated(ctx, uow, token))


def delete_token(
    ctx: Context,
    user_id: str,
    token_id: uuid.UUID,
    code: str,
    verify_with: uuid.UUID | None = None,
    correlation_id: str | None = None,
    step_up_id: uuid.UUID | None = None,
) -> Token:
    """Delete a token; needs a step-up passed for deleting it (``step_up_id``) or a valid
    code from one of the user's active tokens.

    An enrollment that never finished is not a factor yet: cancelling it needs no code.
    """
    with ctx.uow(correlation_id) as uow:
        token = get_token(uow, user_id, token_id)
        if token.state not in TokenState.ENROLLING:
            lifecycle.require_step_up(
                ctx,
                uow,
                user_id,
                code,
                verify_with,
                purpose="delete",
                action=("delete_token", str(token.id)),
                step_up_id=step_up_id,
                default=token,
            )
        uow.session.delete(token)
        uow.emit(
            TokenDeleted(token_id=token.id, token_type=token.type, reason="user"), user_id=user_id
        )
        uow.commit()
    return token


_DUE_ENROLLMENTS = (
    select(Token.id, Token.user_id, Token.type)
    .where(Token.state.in_(TokenState.ENROLLING), Token.enrollment_expires_at <= bindparam("b_now"))
    .order_by(Token.enrollment_expires_at)
    .limit(bindparam("b_limit"))
)
# Compare-and-set: an enrollment finished since the read keeps its token.
_DELETE_EXPIRED_ENROLLMENT = delete(Token).where(
    Token.id == bindparam("b_token"),
    Token.state.in_(TokenState.ENROLLING),
    Token.enrollment_expires_at <= bindparam("b_now"),
)


def expire_enrollments(ctx: Context, batch: int = 500, max_batches: int = 20) -> int:
    """Remove enrollments abandoned past their expiry (``TWOFA_ENROLLMENT_TTL_SECONDS``
    after they started), each with a ``token.deleted`` event of
    reason ``enrollment_expired``: a bounded sweep like the challenges' one. Correctness
    does not wait for it: every enrollment step checks the expiry itself. Reads first,
    as the challenges' sweep does."""
    with read_only(ctx.engine) as conn:
        if not conn.execute(_DUE_ENROLLMENTS, {"b_now": ctx.clock.now(), "b_limit": 1}).first():
            return 0
    total = 0
    for _ in range(max_batches):
        with ctx.uow() as uow:
            now = ctx.clock.now()
            conn = uow.connection
            rows = conn.execute(_DUE_ENROLLMENTS, {"b_now": now, "b_limit": batch}).all()
            for row in rows:
                gone = conn.execute(_DELETE_EXPIRED_ENROLLMENT, {"b_token": row.id, "b_now": now})
                if gone.rowcount == 1:
                    total += 1
                    uow.emit(TokenDeleted(token_id=row.id, token_type=row.type,
                                          reason="enrollment_expired"), user_id=row.user_id)
            uow.commit()
        if len(rows) < batch:
            break
    return total
