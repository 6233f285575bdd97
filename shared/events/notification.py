"""Telling the user, on another channel, that something happened to their account.

Neither event names the address or the number: which channel was used is enough for
an audit, and the contact details stay in the database, encrypted.
"""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from shared.envelope import EventData, EventType
from shared.registry import event

__all__ = ["NotificationFailed", "NotificationSent"]

Channel = Literal["email", "sms"]


@event
class NotificationSent(EventData):
    """The user was told about ``source_event_id`` (of type ``source_type``) by ``channel``."""

    TYPE = "notification.sent"
    VERSION = 1

    source_event_id: UUID
    source_type: EventType
    channel: Channel
    provider: Annotated[str, Field(max_length=32)]


@event
class NotificationFailed(EventData):
    """The user could not be told: no other channel, throttled, or the provider refused."""

    TYPE = "notification.failed"
    VERSION = 1

    source_event_id: UUID
    source_type: EventType
    channel: Channel | None
    reason: Literal["no_channel", "throttled", "provider_error"]
    detail: Annotated[str, Field(max_length=200)] = ""
