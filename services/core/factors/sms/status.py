"""Delivery receipts (Twilio's status callbacks, Vonage's receipts) → ``sms.delivered`` /
``sms.failed``.

A receipt names its provider and that provider's message id: together they find the record
the send wrote, whichever provider of the list accepted it. Providers retry a receipt they
could not deliver and send several per message (queued, sent, delivered), so this is
idempotent: each transition is a compare-and-set and an unknown message id changes nothing
(the caller still answers 2xx, or the provider would keep trying).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from services.core.challenges import service as challenges
from services.core.models import DeliveryState, SmsDelivery
from services.core.plumbing.db import affected_rows
from shared.events.sms import SmsDelivered, SmsFailed

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

log = logging.getLogger(__name__)

# Each provider's final statuses; anything else (queued, sent, accepted, buffered) is ignored.
FINAL_STATUSES = {
    "twilio": {"delivered": DeliveryState.DELIVERED, "failed": DeliveryState.FAILED,
               "undelivered": DeliveryState.FAILED},
    "vonage": {"delivered": DeliveryState.DELIVERED, "failed": DeliveryState.FAILED,
               "rejected": DeliveryState.FAILED, "expired": DeliveryState.FAILED},
}


def _find(uow: UnitOfWork, provider: str, sid: str,
          message_id: uuid.UUID | None) -> SmsDelivery | None:
    row = uow.session.scalar(select(SmsDelivery).where(
        SmsDelivery.provider_message_id == sid, SmsDelivery.provider == provider))
    if row is None and message_id is not None:
        # A send whose worker died before recording the provider's id (state ``unknown``):
        # the receipt carries our message id, so the outcome is learnt after all.
        row = uow.session.get(SmsDelivery, message_id)
        if row is not None and (row.provider_message_id or row.state != DeliveryState.UNKNOWN):
            row = None
    return row


def apply_status(ctx: Context, provider: str, sid: str, status: str, error_code: int | None,
                 message_id: uuid.UUID | None = None) -> str:
    """Apply one receipt of ``provider``; returns what happened (for the log, the metrics and
    the tests): delivered, failed, unchanged, ignored or unknown_message."""
    with ctx.uow() as uow:
        outcome = _apply_status(ctx, uow, provider, sid, status, error_code, message_id)
        uow.commit()
    return outcome


def _apply_status(ctx: Context, uow: UnitOfWork, provider: str, sid: str, status: str,
                  error_code: int | None, message_id: uuid.UUID | None) -> str:
    target = FINAL_STATUSES[provider].get(status)
    if target is None:
        return "ignored"  # queued / sending / sent / accepted / buffered: nothing to record
    row = _find(uow, provider, sid, message_id)
    if row is None:
        log.info("%s receipt for an unknown message: ignored", provider)
        return "unknown_message"
    won = affected_rows(
        uow.session,
        update(SmsDelivery)
        .where(SmsDelivery.message_id == row.message_id,
               SmsDelivery.state.in_((DeliveryState.SENT, DeliveryState.UNKNOWN)))
        .values(state=target, provider=provider, provider_message_id=sid,
                error_code=error_code, updated_at=ctx.clock.now())
        .execution_options(synchronize_session=False),
    )
    if won != 1:
        return "unchanged"
    if target == DeliveryState.DELIVERED:
        uow.emit(SmsDelivered(message_id=row.message_id, provider_message_id=sid, status=status),
                 user_id=row.user_id)
    else:
        uow.emit(SmsFailed(message_id=row.message_id, token_id=row.token_id,
                           provider=provider, reason=f"provider reported {status}",
                           error_code=error_code, permanent=True), user_id=row.user_id)
        if row.challenge_id is not None:
            challenges.mark_undeliverable(ctx, uow, row.challenge_id, row.token_id)
    return target
