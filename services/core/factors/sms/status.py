"""Twilio status callbacks → ``sms.delivered`` / ``sms.failed``.

Twilio retries a callback it could not deliver, and sends several per message (queued,
sent, delivered), so this is idempotent: each transition is a compare-and-set and an
unknown SID changes nothing (the caller still answers 200, or Twilio would keep trying).
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

DELIVERED = ("delivered",)
FAILED = ("failed", "undelivered")


def _find(uow: UnitOfWork, sid: str, message_id: uuid.UUID | None) -> SmsDelivery | None:
    row = uow.session.scalar(select(SmsDelivery).where(SmsDelivery.provider_message_id == sid))
    if row is None and message_id is not None:
        # A send whose worker died before recording the SID (state ``unknown``): Twilio's
        # callback URL carries our message id, so the outcome is learnt after all.
        row = uow.session.get(SmsDelivery, message_id)
        if row is not None and (row.provider_message_id or row.state != DeliveryState.UNKNOWN):
            row = None
    return row


def apply_status(ctx: Context, sid: str, status: str, error_code: int | None,
                 message_id: uuid.UUID | None = None) -> str:
    """Apply one callback; returns what happened (for the log and the tests)."""
    with ctx.uow() as uow:
        outcome = _apply_status(ctx, uow, sid, status, error_code, message_id)
        uow.commit()
    return outcome


def _apply_status(ctx: Context, uow: UnitOfWork, sid: str, status: str, error_code: int | None,
                  message_id: uuid.UUID | None) -> str:
    if status not in DELIVERED + FAILED:
        return "ignored"  # queued / sending / sent / accepted: nothing to record
    row = _find(uow, sid, message_id)
    if row is None:
        log.info("status callback for an unknown message: ignored")
        return "unknown_message"
    target = DeliveryState.DELIVERED if status in DELIVERED else DeliveryState.FAILED
    won = affected_rows(
        uow.session,
        update(SmsDelivery)
        .where(SmsDelivery.message_id == row.message_id,
               SmsDelivery.state.in_((DeliveryState.SENT, DeliveryState.UNKNOWN)))
        .values(state=target, provider_message_id=sid, error_code=error_code,
                updated_at=ctx.clock.now())
        .execution_options(synchronize_session=False),
    )
    if won != 1:
        return "unchanged"
    if target == DeliveryState.DELIVERED:
        uow.emit(SmsDelivered(message_id=row.message_id, provider_message_id=sid, status=status),
                 user_id=row.user_id)
    else:
        uow.emit(SmsFailed(message_id=row.message_id, token_id=row.token_id,
                           provider=row.provider or "twilio", reason=f"provider reported {status}",
                           error_code=error_code, permanent=True), user_id=row.user_id)
        if row.challenge_id is not None:
            challenges.mark_undeliverable(ctx, uow, row.challenge_id, row.token_id)
    return target
