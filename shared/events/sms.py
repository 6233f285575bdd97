"""SMS delivery: the command to send a code, and what the provider reported.

No event carries a code: ``sms.requested`` names the message, and the SMS worker reads the
code (encrypted) from a row that is deleted once the code is used or expired, so the outbox
and the audit log never hold it. Version 1 carried it ``Sealed``; reading v1 forward drops
it. Every phone number is masked - the worker loads the full number itself.
"""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from shared.envelope import EventData
from shared.registry import event, upcaster
from shared.types import MaskedPhone, Sealed

__all__ = [
    "SmsDelivered",
    "SmsFailed",
    "SmsRequested",
    "SmsRequestedV1",
    "SmsSendRefused",
    "SmsSent",
]


@event
class SmsRequestedV1(EventData):
    """Version 1 of ``sms.requested``: carried the code, sealed for the SMS worker."""

    TYPE = "sms.requested"
    VERSION = 1

    message_id: UUID
    token_id: UUID
    challenge_id: UUID | None
    purpose: Literal["enrollment", "login"]
    phone: MaskedPhone
    code: Sealed


@event
class SmsRequested(EventData):
    """Command to the SMS worker: send the code of message ``message_id`` (an enrollment or a
    login). The code is not here: the worker reads it from the message's pending-code row."""

    TYPE = "sms.requested"
    VERSION = 2

    message_id: UUID
    token_id: UUID
    challenge_id: UUID | None
    purpose: Literal["enrollment", "login"]
    phone: MaskedPhone


@upcaster("sms.requested", 1)
def _drop_the_code(data: dict[str, object]) -> dict[str, object]:
    """v1 -> v2: the code is no longer part of the event (a v1 command still in flight when
    the service is upgraded finds no pending code and fails as ``code_unavailable``)."""
    return {name: value for name, value in data.items() if name != "code"}


@event
class SmsSent(EventData):
    """The provider accepted the message."""

    TYPE = "sms.sent"
    VERSION = 1

    message_id: UUID
    token_id: UUID
    provider: str
    provider_message_id: str
    phone: MaskedPhone


@event
class SmsDelivered(EventData):
    """The provider reported a delivery status for a sent message."""

    TYPE = "sms.delivered"
    VERSION = 1

    message_id: UUID
    provider_message_id: str
    status: str


@event
class SmsFailed(EventData):
    """Sending failed; ``permanent`` failures are not retried."""

    TYPE = "sms.failed"
    VERSION = 1

    message_id: UUID
    token_id: UUID | None
    provider: str
    reason: Annotated[str, Field(max_length=200)]
    error_code: int | None
    permanent: bool


@event
class SmsSendRefused(EventData):
    """An SMS was not sent because a limit against SMS pumping said no (an alert).

    ``country_not_allowed``: the destination is outside ``TWOFA_SMS_ALLOWED_COUNTRIES``;
    ``global_cap`` / ``country_cap``: the service-wide or per-country hourly cap is reached;
    ``user_quota``: the user's daily quota is reached.
    """

    TYPE = "sms.send_refused"
    VERSION = 1

    token_id: UUID
    reason: Literal["country_not_allowed", "global_cap", "country_cap", "user_quota"]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None
