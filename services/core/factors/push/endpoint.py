"""The app-facing push endpoint logic (push-protocol.md §5-§7): answers, polling and
Firebase-token updates. Every request is signature-checked with the app's key.

Answers are matched against every open push challenge of the serial (as privacyIDEA
3.11+ does); open means pending and not past ``expires_at`` — checked here, so a late
answer is refused even when the expiry worker is down. Each transition is
compare-and-set, so an answer works once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.challenges import service as challenges
from services.core.challenges.rules import DeclineReason
from services.core.factors.push import crypto
from services.core.factors.push.enrollment import NO_FIREBASE_TOKEN, finish_enrollment
from services.core.factors.push.messages import challenge_data, server_key
from services.core.factors.push.protocol import BAD_SIGNATURE, MISSING, ProtocolError, bad_timestamp
from services.core.models import (
    Challenge,
    ChallengeState,
    PushBlock,
    PushChallenge,
    PushToken,
    Token,
    TokenState,
)
from shared.events.push import PushFraudReported

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

POLL_WINDOW = timedelta(seconds=60)
FIREBASE_UPDATE_WINDOW = timedelta(minutes=5)
DECLINE_REASONS: dict[str, DeclineReason] = {
    "cancelled": "cancelled",
    "unknown_trigger": "unknown_trigger",
}


@dataclass
class Reply:
    value: Any
    detail: dict[str, Any] | None = None
    changed: list[uuid.UUID] = field(default_factory=list)  # challenges whose state moved


def handle_post(ctx: Context, form: dict[str, str]) -> Reply:
    if form.get("serial") and form.get("fbtoken") and form.get("pubkey"):
        result = finish_enrollment(ctx, form)
        return Reply(True, {"public_key": result.public_key, "rollout_state": "enrolled",
                            "serial": result.serial})
    if form.get("new_fb_token") and form.get("timestamp") and form.get("signature"):
        return update_firebase_token(ctx, form)
    if form.get("serial") and form.get("signature"):
        return answer(ctx, form)
    raise MISSING


def _push_token(session: Session, serial: str) -> tuple[Token, PushToken, rsa.RSAPublicKey] | None:
    if not serial or len(serial) > 32:
        return None
    token = session.scalar(select(Token).where(Token.serial == serial, Token.type == "push"))
    if token is None or token.state != TokenState.ACTIVE:
        return None
    push_token = session.get(PushToken, token.id)
    if push_token is None or not push_token.app_public_key:
        return None
    return token, push_token, crypto.parse_app_public_key(push_token.app_public_key)


def _open_challenges(
    session: Session, token: Token, now: datetime
) -> list[tuple[PushChallenge, Challenge]]:
    rows = session.execute(
        select(PushChallenge, Challenge)
        .join(Challenge, Challenge.id == PushChallenge.challenge_id)
        .where(
            PushChallenge.token_id == token.id,
            Challenge.token_id == token.id,
            Challenge.state == ChallengeState.PENDING,
            Challenge.expires_at > now,
        )
        .order_by(PushChallenge.created_at)
    )
    return [(pc, ch) for pc, ch in rows]


def answer(ctx: Context, form: dict[str, str]) -> Reply:
    """§5: ``value`` True if the signature matched an open challenge and the answer counted."""
    serial, signature = form.get("serial", ""), form.get("signature", "")
    decline = form.get("decline", "").strip().lower() in ("1", "true")
    reason = form.get("decline_reason", "") if decline else ""
    presence = form.get("presence_answer", "")
    with ctx.uow() as uow:
        now = ctx.clock.now()
        found = _push_token(uow.session, serial)
        if found is None:
            return Reply(False)
        token, _, app_key = found
        for pc, challenge in _open_challenges(uow.session, token, now):
            parts = [
                pc.nonce,
                serial,
                *(["decline"] if decline else []),
                *([reason] if reason else []),
                *([presence] if presence else []),
            ]
            if not crypto.verify_b32(app_key, "|".join(parts), signature):
                continue
            if decline:
                ok = _decline(ctx, uow, token, challenge, DECLINE_REASONS.get(reason, "declined"))
            elif pc.options and presence != pc.presence_answer:
                # A wrong option leaves the challenge open (§5.3), within its attempt budget.
                challenges.count_wrong_answer(ctx, uow, challenge, token.id)
                ok = False
            else:
                ok = challenges.answer_push(ctx, uow, challenge, token.id, approve=True)
            uow.commit()
            return Reply(ok, changed=[challenge.id])
        return Reply(False)


def _decline(
    ctx: Context, uow: UnitOfWork, token: Token, challenge: Challenge, reason: DeclineReason
) -> bool:
    if not challenges.answer_push(ctx, uow, challenge, token.id, approve=False, reason=reason):
        return False
    if reason == "unknown_trigger":
        _block_user(ctx, uow, token, challenge)
    return True


def _block_user(ctx: Context, uow: UnitOfWork, token: Token, challenge: Challenge) -> None:
    until = ctx.clock.now() + timedelta(seconds=ctx.settings.push_fraud_block_seconds)
    block = uow.session.get(PushBlock, challenge.user_id)
    if block is None:
        uow.session.add(
            PushBlock(
                user_id=challenge.user_id, blocked_until=until, challenge_id=challenge.id, reports=1
            )
        )
    else:
        block.blocked_until, block.challenge_id = until, challenge.id
        block.reports += 1
    uow.emit(
        PushFraudReported(challenge_id=challenge.id, token_id=token.id, blocked_until=until),
        user_id=challenge.user_id,
    )


def _check_time(ctx: Context, raw: str, window: timedelta) -> None:
    try:
        ts = crypto.parse_app_timestamp(raw)
    except ValueError:
        raise bad_timestamp(raw) from None
    if abs(ctx.clock.now() - ts) > window:
        raise bad_timestamp(raw)


def poll(ctx: Context, params: dict[str, str]) -> Reply:
    """§6: the open challenges of the serial, signed again; one error for serial or signature."""
    serial, timestamp, signature = (params.get(k, "") for k in ("serial", "timestamp", "signature"))
    if not (serial and timestamp and signature):
        raise MISSING
    _check_time(ctx, timestamp, POLL_WINDOW)
    url = crypto.push_endpoint_url(ctx.settings.public_url)
    with ctx.sessions() as session:  # a read: no events, no commit
        found = _push_token(session, serial)
        if found is None or not crypto.verify_b32(found[2], f"{serial}|{timestamp}", signature):
            raise BAD_SIGNATURE
        token, push_token, _ = found
        key = server_key(ctx.keyring, push_token)
        return Reply(
            [
                challenge_data(key, pc, serial, url)
                for pc, _ in _open_challenges(session, token, ctx.clock.now())
            ]
        )


def update_firebase_token(ctx: Context, form: dict[str, str]) -> Reply:
    """§7: a new Firebase token, signed ``new|serial|timestamp``, within ±5 minutes."""
    new, serial, timestamp = form["new_fb_token"], form.get("serial", ""), form["timestamp"]
    if len(new) > 4096:
        raise ProtocolError(400, 905, "ERR905: Parameter too long.", "invalid_input")
    _check_time(ctx, timestamp, FIREBASE_UPDATE_WINDOW)
    with ctx.uow() as uow:
        found = _push_token(uow.session, serial)
        if found is None or not crypto.verify_b32(
            found[2], f"{new}|{serial}|{timestamp}", form["signature"]
        ):
            raise BAD_SIGNATURE
        _, push_token, _ = found
        poll_only = new == NO_FIREBASE_TOKEN
        push_token.fbtoken_enc = None if poll_only else ctx.keyring.encrypt(new)
        push_token.poll_only = poll_only
        push_token.fcm_unregistered = False
        uow.commit()
    return Reply(True)
