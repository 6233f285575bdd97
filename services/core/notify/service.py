"""Telling a user about a change to their factors, on a channel other than the one changed.

The e-mail address set for the user if there is one, else another active SMS token
(never the token the event is about). One row per source event (``notifications``)
makes a redelivered event a no-op and is what the per-user hourly throttle counts.
The message is sent outside any transaction; what happened is recorded afterwards as
``notification.sent`` or ``notification.failed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import func, select

from services.core.factors.sms.sender import SmsSender
from services.core.models import Notification, Token, TokenState, UserContact
from services.core.notify import templates
from services.core.notify.mailer import Mailer
from services.core.plumbing.context import Context
from shared.events.notification import Channel, NotificationFailed, NotificationSent
from shared.registry import parse_event

# The events a user is told about; everything else is ignored here.
NOTIFIED = frozenset(
    {
        "enrollment.confirmed",
        "token.deleted",
        "token.locked",
        "recovery.used",
        "push.fraud_reported",
    }
)


@dataclass(frozen=True)
class Channels:
    mailer: Mailer
    sms: Callable[[], SmsSender]  # built on first use: most notifications are e-mails


@dataclass(frozen=True)
class _Route:
    channel: Channel
    provider: str
    send: Callable[[], None]


def notify(ctx: Context, envelope: dict[str, Any], channels: Channels) -> str:
    """Tell the user about ``envelope``; returns what happened (for logs and tests).

    Raises ``TransientProviderError`` for the caller to retry; ``record_failure`` is what
    the caller does once it gives up.
    """
    env, data = parse_event(envelope)
    payload = data.model_dump(mode="json")
    message = templates.render(env.type, payload, env.occurred_at, ctx.settings.issuer)
    if message is None or env.user_id is None:
        return "ignored"
    user_id, now = env.user_id, ctx.clock.now()
    with ctx.uow(env.correlation_id) as uow:
        if uow.session.get(Notification, env.event_id) is not None:
            return "duplicate"
        since = now - timedelta(hours=1)
        recent = (
            uow.session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.user_id == user_id,
                    Notification.created_at >= since,
                    Notification.outcome == "sent",
                )
            )
            or 0
        )
        route = (
            None
            if recent >= ctx.settings.notify_max_per_hour
            else _route(ctx, uow.session, user_id, payload, message, channels)
        )
        if route is None:
            reason: Literal["throttled", "no_channel"] = (
                "throttled" if recent >= ctx.settings.notify_max_per_hour else "no_channel"
            )
            _record(uow, env.event_id, env.type, user_id, None, reason, now)
            uow.emit(
                NotificationFailed(
                    source_event_id=env.event_id, source_type=env.type, channel=None, reason=reason
                ),
                user_id=user_id,
            )
            uow.commit()
            return reason
    route.send()  # raises TransientProviderError / PermanentProviderError
    with ctx.uow(env.correlation_id) as uow:
        _record(uow, env.event_id, env.type, user_id, route.channel, "sent", now)
        uow.emit(
            NotificationSent(
                source_event_id=env.event_id,
                source_type=env.type,
                channel=route.channel,
                provider=route.provider,
            ),
            user_id=user_id,
        )
        uow.commit()
    return f"sent:{route.channel}"


def record_failure(
    ctx: Context, envelope: dict[str, Any], channel: Channel | None, detail: str
) -> None:
    """The provider refused for good (or retries ran out): say so, once."""
    env, _ = parse_event(envelope)
    if env.user_id is None:
        return
    with ctx.uow(env.correlation_id) as uow:
        if uow.session.get(Notification, env.event_id) is not None:
            return
        _record(uow, env.event_id, env.type, env.user_id, channel, "failed", ctx.clock.now())
        uow.emit(
            NotificationFailed(
                source_event_id=env.event_id,
                source_type=env.type,
                channel=channel,
                reason="provider_error",
                detail=detail[:200],
            ),
            user_id=env.user_id,
        )
        uow.commit()


def _route(
    ctx: Context,
    session: Any,
    user_id: str,
    payload: dict[str, Any],
    message: templates.Message,
    channels: Channels,
) -> _Route | None:
    contact = session.get(UserContact, user_id)
    if contact is not None:
        address = ctx.keyring.decrypt(contact.email_enc)
        mailer = channels.mailer
        return _Route(
            "email", mailer.name, lambda: mailer.send(address, message.subject, message.body)
        )
    token = _other_sms_token(session, user_id, payload.get("token_id"))
    if token is None or not token.phone_enc:
        return None
    number = ctx.keyring.decrypt(token.phone_enc)
    sender = channels.sms()

    def send_sms() -> None:
        sender.send(number, message.sms_text)

    return _Route("sms", sender.name, send_sms)


def _other_sms_token(session: Any, user_id: str, changed_token: str | None) -> Token | None:
    query = select(Token).where(
        Token.user_id == user_id, Token.type == "sms", Token.state == TokenState.ACTIVE
    )
    if changed_token:
        query = query.where(Token.id != uuid.UUID(str(changed_token)))
    token: Token | None = session.scalars(query.order_by(Token.created_at).limit(1)).first()
    return token


def _record(
    uow: Any,
    event_id: uuid.UUID,
    event_type: str,
    user_id: str,
    channel: str | None,
    outcome: str,
    now: Any,
) -> None:
    uow.session.add(
        Notification(
            source_event_id=event_id,
            user_id=user_id,
            source_type=event_type,
            channel=channel,
            outcome=outcome,
            created_at=now,
        )
    )
