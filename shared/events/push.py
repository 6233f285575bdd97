"""PUSH delivery to the privacyIDEA-compatible authenticator app, and fraud reports."""

from uuid import UUID

from pydantic import AwareDatetime

from shared.envelope import EventData
from shared.registry import event

__all__ = ["PushFailed", "PushFraudReported", "PushRequested", "PushSent"]


@event
class PushRequested(EventData):
    """Command to the push worker for a challenge.

    It carries no nonce and no signature: the worker loads the challenge from the database,
    so nothing that answers a challenge ever travels through the broker.
    """

    TYPE = "push.requested"
    VERSION = 1

    challenge_id: UUID
    token_id: UUID
    serial: str


@event
class PushSent(EventData):
    """The push provider accepted the notification."""

    TYPE = "push.sent"
    VERSION = 1

    challenge_id: UUID
    token_id: UUID
    provider: str
    provider_message_id: str


@event
class PushFailed(EventData):
    """Sending failed; ``unregistered`` means the device token is gone for good."""

    TYPE = "push.failed"
    VERSION = 1

    challenge_id: UUID
    token_id: UUID
    reason: str
    unregistered: bool
    permanent: bool


@event
class PushFraudReported(EventData):
    """The user reported a push they did not trigger; pushes are blocked until ``blocked_until``."""

    TYPE = "push.fraud_reported"
    VERSION = 1

    challenge_id: UUID
    token_id: UUID
    blocked_until: AwareDatetime
