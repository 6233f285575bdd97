"""Delivering one ``sms.requested``: at most one accepted SMS per message id.

The idempotency record (``sms_deliveries``, one row per message id) is moved through
compare-and-set steps, each committed on its own:

1. **claim**: ``sending`` with ``claimed_at`` is committed *before* the provider is called;
2. **mark**: ``send_started_at`` is committed right before the call (the claim may sit in a
   batch a while first; a claim without the mark certainly sent nothing);
3. **send**: one HTTP call, bounded by ``sms_send_timeout_seconds``;
4. **record**: ``sent`` + the provider's SID and ``sms.sent`` in one unit of work, or
   ``failed`` + ``sms.failed`` (+ the challenge marked undeliverable) for a permanent
   error or a transient one on the last attempt. Other transient errors release the claim
   (``claimed_at`` and the mark cleared) and are re-raised for the task to retry with back-off.

In a worker, steps 1, 2 and 4 of many messages share transactions
(``services.core.factors.sms.ledger``): a claim and a mark are still committed before their
send and a record after it, only not alone.

A redelivered message (worker killed, visibility timeout, replay) finds the record:
``sent``/``delivered``/``failed``/``unknown`` → nothing is sent again; ``sending`` with a
live claim → another worker is on it, retry later; ``sending`` with a claim older than the
lease (longer than any send can take) → the worker died between claim and record. Without
the mark it died before calling the provider: the message is claimed again and sent. With
it, Twilio may or may not have accepted that message, and it offers no idempotency key, so the
choice is between a possible duplicate and a possible loss. We choose **never twice**:
the record goes to ``unknown``, ``sms.failed`` says so (``reason="outcome_unknown"``), the
challenge stays pending (the code may well have arrived) and the user can ask for a resend.
If Twilio did accept it, its status callback (which carries our message id) later moves the
record to ``delivered``. A *timeout* while the worker lives is retried (at-least-once in that
narrower window) because the issue asks for it and a slow answer rarely means acceptance.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Literal

from sqlalchemy import update

from services.core.challenges import service as challenges
from services.core.factors.sms.ledger import ClaimJob, Ledger, SentRecord, StartMark
from services.core.factors.sms.sender import SmsSender
from services.core.models import DeliveryState, SmsDelivery
from services.core.plumbing.db import affected_rows
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from shared.events.sms import SmsFailed, SmsRequested

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

log = logging.getLogger(__name__)

Outcome = Literal["sent", "failed", "duplicate", "unknown"]


def message_body(ctx: Context, code: str) -> str:
    minutes = max(1, ctx.settings.sms_code_ttl_seconds // 60)
    return (
        f"{code} is your {ctx.settings.issuer} code. It expires in {minutes} min. Never share it."
    )


def deliver(
    ctx: Context,
    sender: SmsSender,
    cmd: SmsRequested,
    user_id: str,
    *,
    last_attempt: bool,
    ledger: Ledger,
) -> Outcome:
    """Send ``cmd`` unless its record says it is done; see the module docstring.

    ``ledger`` runs the claim, the mark and the ``sent`` record (batched across a worker's
    threads).
    """
    claim = ledger.claim(ClaimJob(cmd, user_id))
    if claim.verdict == "done":
        return "duplicate"
    if claim.verdict == "busy":
        return _busy(last_attempt)
    if claim.verdict == "lost":
        _finish(
            ctx,
            cmd,
            user_id,
            DeliveryState.UNKNOWN,
            sender.name,
            reason="outcome_unknown",
            permanent=True,
            undeliverable=False,
        )
        return "unknown"
    if not claim.phone_enc:
        _finish(ctx, cmd, user_id, DeliveryState.FAILED, sender.name, reason="token_deleted")
        return "failed"
    if not claim.code_enc:  # used or expired before it could be sent, or a v1 command
        _finish(ctx, cmd, user_id, DeliveryState.FAILED, sender.name, reason="code_unavailable")
        return "failed"
    to = ctx.keyring.decrypt(claim.phone_enc)
    body = message_body(ctx, ctx.keyring.decrypt(claim.code_enc))
    # Only the call itself after the mark: a death before it then leaves no mark, and the
    # message is sent again rather than settled unknown.
    if not ledger.mark_started(StartMark(cmd.message_id, claim.attempt)):
        return _busy(last_attempt)  # our claim outlived its lease and was settled or taken
    try:
        receipt = sender.send(to, body, reference=cmd.message_id)
    except PermanentProviderError as exc:
        _finish(
            ctx,
            cmd,
            user_id,
            DeliveryState.FAILED,
            sender.name,
            reason=exc.message,
            error_code=exc.code,
        )
        return "failed"
    except TransientProviderError as exc:
        if last_attempt:
            _finish(
                ctx,
                cmd,
                user_id,
                DeliveryState.FAILED,
                sender.name,
                reason=f"retries exhausted: {exc.message}",
                error_code=exc.code,
                permanent=False,
            )
            return "failed"
        _release(ctx, cmd.message_id)
        raise
    ledger.record_sent(SentRecord(cmd, user_id, receipt.provider, receipt.message_id))
    return "sent"


def _busy(last_attempt: bool) -> Outcome:
    if last_attempt:
        return "duplicate"  # the live claimant records the outcome
    raise TransientProviderError("another worker is sending this message")


def _release(ctx: Context, message_id: uuid.UUID) -> None:
    with ctx.sessions.begin() as session:
        session.execute(
            update(SmsDelivery)
            .where(SmsDelivery.message_id == message_id, SmsDelivery.state == DeliveryState.SENDING)
            .values(claimed_at=None, send_started_at=None, updated_at=ctx.clock.now())
            .execution_options(synchronize_session=False)
        )


def _finish(
    ctx: Context,
    cmd: SmsRequested,
    user_id: str,
    state: str,
    provider: str,
    *,
    reason: str,
    error_code: int | None = None,
    permanent: bool = True,
    undeliverable: bool = True,
) -> None:
    """Record a final failure (or an unknown outcome) with its ``sms.failed``, once."""
    with ctx.uow() as uow:
        won = affected_rows(
            uow.session,
            update(SmsDelivery)
            .where(
                SmsDelivery.message_id == cmd.message_id, SmsDelivery.state == DeliveryState.SENDING
            )
            .values(
                state=state,
                provider=provider,
                error_code=error_code,
                reason=reason[:200],
                claimed_at=None,
                updated_at=ctx.clock.now(),
            )
            .execution_options(synchronize_session=False),
        )
        if won == 1:
            log.warning("SMS %s %s: %s", cmd.message_id, state, reason)
            uow.emit(
                SmsFailed(
                    message_id=cmd.message_id,
                    token_id=cmd.token_id,
                    provider=provider,
                    reason=reason[:200],
                    error_code=error_code,
                    permanent=permanent,
                ),
                user_id=user_id,
            )
            if undeliverable and cmd.challenge_id is not None:
                challenges.mark_undeliverable(ctx, uow, cmd.challenge_id, cmd.token_id)
        uow.commit()
