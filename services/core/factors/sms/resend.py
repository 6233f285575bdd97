"""Resending a code, for an enrollment or for a login challenge.

A resend is an ordinary issue: throttled and counted against the quota like the first
code, it retires the previous code and leaves every failure count as it was.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from services.core.challenges import service as challenges
from services.core.errors import Conflict, Gone
from services.core.factors.sms import codes
from services.core.models import SmsCode, Token, TokenState
from services.core.plumbing.clock import as_utc
from services.core.tokens.service import get_token

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


def for_enrollment(ctx: Context, user_id: str, token_id: uuid.UUID,
                   correlation_id: str | None = None) -> tuple[Token, SmsCode]:
    with ctx.uow(correlation_id) as uow:
        sent = _for_enrollment(ctx, uow, user_id, token_id)
        uow.commit()
    return sent


def _for_enrollment(
    ctx: Context, uow: UnitOfWork, user_id: str, token_id: uuid.UUID
) -> tuple[Token, SmsCode]:
    token = get_token(uow, user_id, token_id)
    if token.type != "sms" or token.state != TokenState.PENDING:
        raise Conflict("only an SMS token being enrolled can get its code again")
    expires = token.enrollment_expires_at
    if expires is not None and as_utc(expires) <= ctx.clock.now():
        raise Gone("the enrollment has expired; start again", code="enrollment_expired")
    return token, codes.issue(ctx, uow, token, "enrollment")


def for_challenge(
    ctx: Context, challenge_id: uuid.UUID, correlation_id: str | None = None
) -> tuple[Token, SmsCode]:
    with ctx.uow(correlation_id) as uow:
        sent = _for_challenge(ctx, uow, challenge_id)
        uow.commit()
    return sent


def _for_challenge(ctx: Context, uow: UnitOfWork, challenge_id: uuid.UUID) -> tuple[Token, SmsCode]:
    challenge = challenges.open_challenge(ctx, challenge_id)
    token = uow.session.get(Token, challenge.token_id) if challenge.token_id else None
    if token is None or token.type != "sms" or token.state != TokenState.ACTIVE:
        raise Conflict("select an SMS factor first", code="no_sms_factor_selected")
    return token, codes.issue(ctx, uow, token, "login", challenge.id)
