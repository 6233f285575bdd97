"""Enrollment of a new second factor: started, scanned, activated, confirmed or failed.

A TOTP token goes started -> scanned -> activated (first valid code) -> confirmed (second
code, now active); an SMS token is active once activated; a PUSH token is registered by the
app and confirmed.
"""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from shared.envelope import EventData
from shared.registry import event
from shared.types import MaskedPhone, TokenType

__all__ = [
    "EnrollmentActivated",
    "EnrollmentConfirmed",
    "EnrollmentFailed",
    "EnrollmentScanned",
    "EnrollmentStarted",
]


@event
class EnrollmentStarted(EventData):
    """A user began enrolling a token; no secret or full phone number is included."""

    TYPE = "enrollment.started"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    description: Annotated[str, Field(max_length=64)]
    phone: MaskedPhone | None = None
    serial: str | None = None


@event
class EnrollmentScanned(EventData):
    """The enrollment QR code (or link) was fetched by the authenticator."""

    TYPE = "enrollment.scanned"
    VERSION = 1

    token_id: UUID
    token_type: TokenType


@event
class EnrollmentActivated(EventData):
    """The first valid code was accepted.

    A TOTP token now waits for confirmation with a second code; an SMS token is active.
    """

    TYPE = "enrollment.activated"
    VERSION = 1

    token_id: UUID
    token_type: TokenType


@event
class EnrollmentConfirmed(EventData):
    """The token is now active."""

    TYPE = "enrollment.confirmed"
    VERSION = 1

    token_id: UUID
    token_type: TokenType


@event
class EnrollmentFailed(EventData):
    """A step of the enrollment was refused."""

    TYPE = "enrollment.failed"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    step: Literal["activate", "confirm", "register"]
    reason: Literal["invalid_code", "expired", "throttled", "invalid_credential"]
