"""Selecting a PUSH factor in a login challenge: checks against push fatigue, the push
challenge row (nonce, number matching) and the ``push.requested`` command.

Fatigue protection: a user who reported an unknown login (``unknown_trigger``) gets no
pushes until the block ends; at most ``push_max_pending`` open pushes and
``push_max_recent`` pushes per window. Number matching is on unless
``push_presence_options`` is 0: the login page shows ``presence_answer`` and the phone
offers it among the options.
"""

from __future__ import annotations

import secrets
import string
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from services.core.errors import Conflict, Throttled
from services.core.factors.base import ChallengeRef, SelectResult, TokenSnapshot
from services.core.factors.push import crypto
from services.core.models import Challenge, ChallengeState, PushBlock, PushChallenge, PushToken
from services.core.plumbing.clock import as_utc
from shared.events.push import PushRequested

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

_rng = secrets.SystemRandom()


def presence_options(kind: str, count: int) -> tuple[str | None, str | None]:
    """(options joined with ',', the correct one), or (None, None) when turned off."""
    if count < 2:
        return None, None
    pool = [f"{n:02d}" for n in range(100)] if kind == "NUMERIC" else list(string.ascii_uppercase)
    options = _rng.sample(pool, count)
    return ",".join(options), secrets.choice(options)


def _retry_after(seconds: float) -> int:
    return max(1, int(seconds + 0.999))


def check_fatigue(ctx: Context, uow: UnitOfWork, user_id: str, challenge_id: Any) -> None:
    s, now = ctx.settings, ctx.clock.now()
    block = uow.session.get(PushBlock, user_id)
    if block is not None and as_utc(block.blocked_until) > now:
        raise Throttled(
            "pushes to this user are blocked after a reported unknown login; use another factor",
            retry_after=_retry_after((as_utc(block.blocked_until) - now).total_seconds()),
            code="push_blocked",
        )
    pending = uow.session.scalar(
        select(func.count())
        .select_from(PushChallenge)
        .join(Challenge, Challenge.id == PushChallenge.challenge_id)
        .where(
            PushChallenge.user_id == user_id,
            Challenge.state == ChallengeState.PENDING,
            Challenge.expires_at > now,
            PushChallenge.challenge_id != challenge_id,
        )
    )
    if (pending or 0) >= s.push_max_pending:
        raise Throttled(
            "too many push requests are waiting for an answer",
            retry_after=s.push_ttl_seconds,
            code="push_pending_limit",
        )
    since = now - timedelta(seconds=s.push_recent_window_seconds)
    recent = list(
        uow.session.scalars(
            select(PushChallenge.created_at)
            .where(PushChallenge.user_id == user_id, PushChallenge.created_at > since)
            .order_by(PushChallenge.created_at)
        )
    )
    if len(recent) >= s.push_max_recent:
        oldest = as_utc(recent[0])
        raise Throttled(
            "too many push requests for this user; try again later",
            retry_after=_retry_after((oldest - since).total_seconds()),
            code="push_rate_limited",
        )


def start_push(
    ctx: Context, uow: UnitOfWork, token: TokenSnapshot, challenge: ChallengeRef
) -> SelectResult:
    """Create the push challenge and emit ``push.requested``; the challenge now expires with
    the push's answer window."""
    s, now = ctx.settings, ctx.clock.now()
    push_token = uow.session.get(PushToken, token.id)
    if push_token is None or not push_token.server_key_enc or not token.serial:
        raise Conflict("the push token has not finished enrollment", code="factor_unusable")
    if uow.session.get(PushChallenge, challenge.id) is not None:
        # One push per login challenge: re-selecting would be a way around the caps.
        raise Conflict("a push was already sent for this challenge", code="push_already_sent")
    check_fatigue(ctx, uow, token.user_id, challenge.id)
    options, answer = presence_options(s.push_presence_type, s.push_presence_options)
    uow.session.add(
        PushChallenge(
            challenge_id=challenge.id,
            token_id=token.id,
            user_id=token.user_id,
            nonce=crypto.new_nonce(),
            question=s.push_question if challenge.purpose == "login" else s.push_step_up_question,
            title=s.push_title,
            sslverify="1" if s.push_sslverify else "0",
            options=options,
            presence_answer=answer,
            created_at=now,
        )
    )
    uow.emit(
        PushRequested(challenge_id=challenge.id, token_id=token.id, serial=token.serial),
        user_id=token.user_id,
    )
    return SelectResult(
        {"presence_answer": answer} if answer else {},
        expires_at=now + timedelta(seconds=s.push_ttl_seconds),
    )


def challenge_extras(ctx: Context, challenge: Challenge) -> dict[str, Any]:
    """What ``GET /v1/challenges/{id}`` adds for a push challenge: the option to show."""
    if challenge.token_type != "push":
        return {}
    with ctx.sessions() as session:
        pc = session.get(PushChallenge, challenge.id)
    return {"presence_answer": pc.presence_answer} if pc and pc.presence_answer else {}
