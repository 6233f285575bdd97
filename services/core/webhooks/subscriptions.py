"""Managing subscriptions (admin API): create, list, disable, enable, delete, replay.

The secret is made here, returned once by ``create`` and stored only encrypted with the
service's keyring (so ``twofa keys rotate`` re-encrypts it with the others). A new
subscription starts at the chain's head: it receives what happens from now on, and
``from_position`` (or a later ``replay``) moves it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.core.errors import NotFound, Unprocessable
from services.core.models import AuditCheckpoint, AuditEntry, SubscriptionState, WebhookSubscription
from services.core.plumbing.crypto import Keyring
from services.core.webhooks import signing
from services.core.webhooks.targets import check_url
from shared.registry import EVENT_TYPES


def create(
    session: Session,
    keyring: Keyring,
    now: datetime,
    *,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    from_position: int | None = None,
    allow_private: bool,
) -> tuple[WebhookSubscription, str]:
    """The new subscription and its secret (shown this once)."""
    check_url(url, allow_private=allow_private)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise Unprocessable(f"unknown event types: {', '.join(unknown)}", code="unknown_event_type")
    secret = signing.new_secret()
    sub = WebhookSubscription(
        id=uuid.uuid4(),
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        secret_enc=keyring.encrypt(secret),
        state=SubscriptionState.ACTIVE,
        created_at=now,
        failures=0,
        delivered=0,
        cursor=0,
        checkpoint_cursor=0,
    )
    _move_cursor(session, sub, from_position)
    session.add(sub)
    session.flush()
    return sub, secret


def list_all(session: Session) -> list[WebhookSubscription]:
    return list(
        session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at))
    )


def get(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound("no such webhook subscription")
    return sub


def disable(
    session: Session, subscription_id: uuid.UUID, now: datetime, reason: str
) -> WebhookSubscription:
    sub = get(session, subscription_id)
    if sub.state != SubscriptionState.DISABLED:
        sub.state, sub.disabled_at, sub.disabled_reason = (
            SubscriptionState.DISABLED,
            now,
            reason[:200],
        )
    return sub


def enable(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    """Active again, from where it stopped, with a fresh retry window."""
    sub = get(session, subscription_id)
    sub.state, sub.disabled_at, sub.disabled_reason = SubscriptionState.ACTIVE, None, None
    _reset_failures(sub)
    return sub


def delete(session: Session, subscription_id: uuid.UUID) -> None:
    session.delete(get(session, subscription_id))


def replay(session: Session, subscription_id: uuid.UUID, from_position: int) -> WebhookSubscription:
    """Deliver again from ``from_position`` on (rows and the checkpoints that cover them)."""
    sub = get(session, subscription_id)
    _move_cursor(session, sub, from_position)
    _reset_failures(sub)
    return sub


def _move_cursor(session: Session, sub: WebhookSubscription, from_position: int | None) -> None:
    if from_position is None:  # from now on
        sub.cursor = int(session.scalar(select(func.max(AuditEntry.position))) or 0)
        sub.checkpoint_cursor = int(session.scalar(select(func.max(AuditCheckpoint.id))) or 0)
        return
    sub.cursor = from_position - 1
    sub.checkpoint_cursor = int(
        session.scalar(
            select(func.max(AuditCheckpoint.id)).where(AuditCheckpoint.position < from_position)
        )
        or 0
    )


def _reset_failures(sub: WebhookSubscription) -> None:
    sub.failures, sub.failing_since, sub.next_attempt_at, sub.last_error = 0, None, None, None
