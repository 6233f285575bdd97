"""Webhook subscriptions: the one state change a subscriber must hear about."""

from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, Field

from shared.envelope import EventData
from shared.registry import event

__all__ = ["WebhookDisabled"]


@event
class WebhookDisabled(EventData):
    """Deliveries to a subscription failed for the whole retry window and were stopped.

    ``position`` is the first audit position it did not receive (replay from there).
    """

    TYPE = "webhook.disabled"
    VERSION = 1

    subscription_id: UUID
    failing_since: AwareDatetime
    position: Annotated[int, Field(ge=1)]
    reason: Annotated[str, Field(max_length=200)]
