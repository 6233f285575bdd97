"""privacyIDEA's words: the decisions of the compatible API, and the texts plugins show.

The HTTP edge renders an ``Outcome`` as privacyIDEA's envelope; the texts are privacyIDEA's
own, since plugins show them and some compare them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from services.core.privacyidea.users import PiUser

# privacyIDEA's own texts: plugins show them, and some compare them.
MATCHED_ONE = "matching 1 tokens"
WRONG_OTP = "wrong otp value"
FOUND_CHALLENGE = "Found matching challenge"
NO_MATCH = "Response did not match the challenge."
NO_TOKEN = "The user has no tokens assigned"
ACCEPTED_NO_TOKEN = "user has no token, accepted due to 'TWOFA_PI_NO_TOKEN'"
ENTER_TOTP = "please enter otp: "
ENTER_SMS = "Enter the OTP from the SMS:"
CONFIRM_PUSH = "Please confirm the authentication on your mobile device!"

ENROLL_TOTP = "Please scan the QR code and enter the OTP value!"
ENROLL_PUSH = "Please scan the QR code!"

# privacyIDEA's serial prefixes; twofa's PUSH tokens already carry a PIPU serial.
_SERIAL_PREFIX = {"totp": "TOTP", "sms": "PISM", "push": "PIPU"}


@dataclass(frozen=True)
class Entry:
    """One ``multi_challenge`` element."""

    transaction_id: str
    serial: str
    type: str
    client_mode: str
    message: str
    attributes: dict[str, Any] | None = None
    presence_answer: str | None = None
    image: str | None = None  # enrollment: the QR code, a PNG data URI
    link: str | None = None  # enrollment: what the QR code holds


@dataclass
class Outcome:
    """The decision; the HTTP edge renders it as privacyIDEA's envelope."""

    value: bool | int
    message: str | None = None
    transaction_id: str | None = None
    entries: list[Entry] = field(default_factory=list)
    serial: str | None = None
    type: str | None = None
    otplen: int | None = None
    user: PiUser | None = None  # on success, for detail.user
    challenge_status: str | None = None  # polltransaction only
    enroll: Literal["required", "optional"] | None = None  # enroll_via_multichallenge


def serial_of(token_id: uuid.UUID, token_type: str, serial: str | None = None) -> str:
    """A privacyIDEA-style serial: the token's own, or one derived from its id."""
    return serial or f"{_SERIAL_PREFIX.get(token_type, 'TWOFA')}{token_id.hex[:8].upper()}"
