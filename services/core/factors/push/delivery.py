"""What the push worker does with ``push.requested``: load the challenge, sign the §4
data, hand it to the sender, record the outcome.

The event carries no nonce or signature; they are read from the database here. The
provider call happens outside any transaction. A transient provider error propagates
(the task retries it); a permanent one becomes ``push.failed`` and, for UNREGISTERED,
marks the token for re-registration (polling keeps working). A redelivered event is
recognised by its ``event_id`` and not sent twice once its outcome is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.core.challenges.rules import effective_state
from services.core.factors.push import crypto
from services.core.factors.push.messages import challenge_data, server_key
from services.core.factors.push.sender import PushMessage, PushSender
from services.core.models import Challenge, ChallengeState, ProcessedEvent, PushChallenge, PushToken
from services.core.plumbing.clock import as_utc
from services.core.plumbing.messaging.consumer import first_delivery
from services.core.plumbing.providers.errors import PermanentProviderError
from shared.events.push import PushFailed, PushRequested, PushSent

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

CONSUMER = "push"


@dataclass
class _Plan:
    message: PushMessage | None
    skip: str | None = None  # why nothing is sent
    user_id: str | None = None


def _plan(
    ctx: Context, event_id: uuid.UUID, cmd: PushRequested, needs_device: bool = True
) -> _Plan:
    with ctx.sessions() as session:
        if session.get(ProcessedEvent, (CONSUMER, event_id)) is not None:
            return _Plan(None, "duplicate")
        challenge = session.get(Challenge, cmd.challenge_id)
        pc = session.get(PushChallenge, cmd.challenge_id)
        push_token = session.get(PushToken, cmd.token_id)
        if challenge is None or pc is None or push_token is None:
            return _Plan(None, "gone")
        if (
            effective_state(challenge.state, challenge.expires_at, ctx.clock.now())
            != ChallengeState.PENDING
        ):
            return _Plan(None, "closed", challenge.user_id)
        if needs_device and (push_token.poll_only or not push_token.fbtoken_enc):
            return _Plan(None, "poll_only", challenge.user_id)
        if needs_device and push_token.fcm_unregistered:
            return _Plan(None, "unregistered", challenge.user_id)
        url = crypto.push_endpoint_url(ctx.settings.public_url)
        data = challenge_data(server_key(ctx.keyring, push_token), pc, cmd.serial, url)
        left = (as_utc(challenge.expires_at) - ctx.clock.now()).total_seconds()
        message = PushMessage(
            device_token=ctx.keyring.decrypt(push_token.fbtoken_enc)
            if push_token.fbtoken_enc
            else "",
            data=data,
            ttl_seconds=max(1, int(left)),
            title=pc.title,
            body=pc.question,
        )
        return _Plan(message, user_id=challenge.user_id)


def send_push(ctx: Context, event_id: uuid.UUID, cmd: PushRequested, sender: PushSender) -> str:
    """Returns what happened: sent, failed, or the reason nothing was sent."""
    plan = _plan(ctx, event_id, cmd, sender.needs_device_token)
    if plan.skip == "duplicate":
        return "duplicate"
    outcome: str = plan.skip or "sent"
    failed: PermanentProviderError | None = None
    message_id = ""
    if plan.message is not None:
        try:
            message_id = sender.send(plan.message)
        except PermanentProviderError as exc:
            failed, outcome = exc, "failed"
    with ctx.uow() as uow:
        if not first_delivery(uow.session, CONSUMER, event_id, ctx.clock.now()):
            return "duplicate"
        if outcome == "sent":
            uow.emit(
                PushSent(
                    challenge_id=cmd.challenge_id,
                    token_id=cmd.token_id,
                    provider=sender.name,
                    provider_message_id=message_id[:200],
                ),
                user_id=plan.user_id,
            )
        elif failed is not None or outcome == "unregistered":
            unregistered = failed.unregistered if failed else True
            if unregistered:
                push_token = uow.session.get(PushToken, cmd.token_id)
                if push_token is not None:
                    push_token.fcm_unregistered = True
            uow.emit(
                PushFailed(
                    challenge_id=cmd.challenge_id,
                    token_id=cmd.token_id,
                    reason=failed.reason if failed else "unregistered",
                    unregistered=unregistered,
                    permanent=True,
                ),
                user_id=plan.user_id,
            )
        uow.commit()
    return outcome


def give_up(ctx: Context, event_id: uuid.UUID, cmd: PushRequested, reason: str) -> None:
    """Retries are exhausted: record ``push.failed`` (not permanent; polling still works)."""
    with ctx.uow() as uow:
        if not first_delivery(uow.session, CONSUMER, event_id, ctx.clock.now()):
            return
        challenge = uow.session.get(Challenge, cmd.challenge_id)
        uow.emit(
            PushFailed(
                challenge_id=cmd.challenge_id,
                token_id=cmd.token_id,
                reason=reason[:64],
                unregistered=False,
                permanent=False,
            ),
            user_id=challenge.user_id if challenge else None,
        )
        uow.commit()
