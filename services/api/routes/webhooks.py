"""Webhook subscriptions (scope ``admin``): create, list, read, disable, enable, delete, replay.

The secret (``whsec_…``) is in the answer to ``POST /v1/webhooks`` and nowhere else:
it is stored encrypted and never shown again (delete and create to change it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from services.api.deps import Correlation, Ctx, require
from services.api.errors import ERROR_RESPONSES
from services.api.schemas import Strict
from services.core.models import WebhookSubscription
from services.core.plumbing.clock import as_utc
from services.core.plumbing.uow import UnitOfWork
from services.core.webhooks import subscriptions


def _uow(ctx: Ctx, correlation: Correlation) -> Iterator[UnitOfWork]:
    """One unit of work per admin request (each is one small change); committed by the route."""
    with ctx.uow(correlation) as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(_uow)]

router = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], dependencies=[Depends(require("admin"))],
    responses=ERROR_RESPONSES,
)

EventTypeName = Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64)]


class SubscriptionIn(Strict):
    url: Annotated[str, Field(min_length=8, max_length=2048)]
    event_types: Annotated[list[EventTypeName], Field(max_length=100)] = []
    description: Annotated[str, Field(max_length=200)] = ""
    from_position: Annotated[int | None, Field(ge=1, le=2**62)] = None


class ReplayIn(Strict):
    from_position: Annotated[int, Field(ge=1, le=2**62)]


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]  # empty: every event type
    state: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    next_position: int  # the first audit position not yet delivered
    delivered: int
    failures: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None


class CreatedOut(SubscriptionOut):
    secret: str  # shown once


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _out(sub: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        url=sub.url,
        description=sub.description,
        event_types=list(sub.event_types or []),
        state=sub.state,
        created_at=as_utc(sub.created_at),
        disabled_at=_utc(sub.disabled_at),
        disabled_reason=sub.disabled_reason,
        next_position=sub.cursor + 1,
        delivered=sub.delivered,
        failures=sub.failures,
        failing_since=_utc(sub.failing_since),
        next_attempt_at=_utc(sub.next_attempt_at),
        last_error=sub.last_error,
    )


@router.post("", status_code=201, response_model=CreatedOut)
def create(body: SubscriptionIn, ctx: Ctx, uow: Uow) -> CreatedOut:
    """422 ``webhook_target_refused`` for a URL that is not http(s), carries credentials or
    names a private or loopback address (unless ``TWOFA_WEBHOOK_ALLOW_PRIVATE``); 422
    ``unknown_event_type`` for a filter naming a type that does not exist."""
    sub, secret = subscriptions.create(
        uow.session,
        ctx.keyring,
        ctx.clock.now(),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        from_position=body.from_position,
        allow_private=ctx.settings.webhook_allow_private,
    )
    out = _out(sub)
    uow.commit()
    return CreatedOut(**out.model_dump(), secret=secret)


@router.get("", response_model=SubscriptionsOut)
def list_all(uow: Uow) -> SubscriptionsOut:
    return SubscriptionsOut(subscriptions=[_out(s) for s in subscriptions.list_all(uow.session)])


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def read(subscription_id: uuid.UUID, uow: Uow) -> SubscriptionOut:
    return _out(subscriptions.get(uow.session, subscription_id))


@router.post("/{subscription_id}/disable", response_model=SubscriptionOut)
def disable(subscription_id: uuid.UUID, ctx: Ctx, uow: Uow) -> SubscriptionOut:
    out = _out(
        subscriptions.disable(
            uow.session, subscription_id, ctx.clock.now(), "disabled by an administrator"
        )
    )
    uow.commit()
    return out


@router.post("/{subscription_id}/enable", response_model=SubscriptionOut)
def enable(subscription_id: uuid.UUID, uow: Uow) -> SubscriptionOut:
    out = _out(subscriptions.enable(uow.session, subscription_id))
    uow.commit()
    return out


@router.post("/{subscription_id}/replay", response_model=SubscriptionOut)
def replay(subscription_id: uuid.UUID, body: ReplayIn, uow: Uow) -> SubscriptionOut:
    """Deliver again from ``from_position`` (audit rows and the checkpoints covering them)."""
    out = _out(subscriptions.replay(uow.session, subscription_id, body.from_position))
    uow.commit()
    return out


@router.delete("/{subscription_id}", status_code=204)
def delete(subscription_id: uuid.UUID, uow: Uow) -> Response:
    subscriptions.delete(uow.session, subscription_id)
    uow.commit()
    return Response(status_code=204)
