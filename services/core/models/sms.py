"""SMS codes and SMS deliveries.

``sms_codes``: one row per code sent (enrollment or login). Only the keyed hash of the code
is kept; the row doubles as the send log the throttles and the daily quota count, which is
why it also keeps a keyed hash of the number (per-number throttle without the number).

``sms_deliveries``: the idempotency record of the SMS worker, one row per message id
(= the code row's id). Its state says how far a send got: ``sending`` is written and
committed *before* the provider is called, ``sent`` (with the provider's message id) right
after it accepted, so a redelivered task can tell "done", "in flight" and "died mid-send".
"""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UserIdStr, UtcDateTime


class SmsCode(Base):
    __tablename__ = "sms_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # also the message id
    token_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[UserIdStr]
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)  # keyed hash of the E.164
    country: Mapped[str | None] = mapped_column(String(2), index=True)  # ISO 3166, of the number
    purpose: Mapped[str] = mapped_column(String(16))  # enrollment | login
    challenge_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    code_hash: Mapped[str] = mapped_column(String(64))  # keyed hash, never the code
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong guesses on this code
    created_at: Mapped[UtcDateTime] = mapped_column(index=True)
    expires_at: Mapped[UtcDateTime]
    used_at: Mapped[UtcDateTime | None]


class SmsPendingCode(Base):
    """The code of a message the SMS worker has still to send, encrypted for it.

    The only place a code exists outside the recipient's phone: deleted when the code is
    used (``codes.check``) and by the expiry sweep once expired, never put into an event.
    """

    __tablename__ = "sms_pending_codes"

    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # = SmsCode.id
    code_enc: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[UtcDateTime] = mapped_column(index=True)


class DeliveryState:
    SENDING = "sending"  # claimed; the provider call may be in flight
    SENT = "sent"  # the provider accepted it (provider_message_id known)
    DELIVERED = "delivered"  # the provider's status callback said so
    FAILED = "failed"  # permanent error, retries exhausted, or a failed/undelivered callback
    # a worker died mid-send; not resent (see services.core.factors.sms.delivery)
    UNKNOWN = "unknown"

    FINAL = (SENT, DELIVERED, FAILED, UNKNOWN)


class SmsDelivery(Base):
    __tablename__ = "sms_deliveries"

    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[UserIdStr]
    challenge_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times a worker claimed it
    error_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[UtcDateTime | None]
    # set just before the provider call of the current claim: without it a claim whose
    # worker died certainly sent nothing
    send_started_at: Mapped[UtcDateTime | None]
    created_at: Mapped[UtcDateTime]
    updated_at: Mapped[UtcDateTime]
