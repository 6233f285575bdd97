"""What a user is told, per event type. Plain text, no code, no secret, no full number:
only what happened, to which kind of factor, when, and what to do if it was not them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

FACTOR_NAMES = {"totp": "authenticator app", "sms": "SMS number", "push": "push app"}
NOT_YOU = (
    "If this was not you, someone may have access to your account: reset your "
    "password and contact support."
)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str

    @property
    def sms_text(self) -> str:
        return f"{self.subject}. {NOT_YOU}"


def _factor(data: dict[str, Any]) -> str:
    return FACTOR_NAMES.get(str(data.get("token_type")), "sign-in factor")


def _render(event_type: str, data: dict[str, Any]) -> str | None:
    """The subject line for an event a user is told about, or None for any other."""
    if event_type == "enrollment.confirmed":
        return f"A new sign-in factor ({_factor(data)}) was added to your account"
    if event_type == "token.deleted" and data.get("reason") == "user":
        return f"A sign-in factor ({_factor(data)}) was removed from your account"
    if event_type == "token.locked":
        return f"Your {_factor(data)} was locked after too many wrong codes"
    if event_type == "recovery.used":
        return "Your recovery token was used: your sign-in factors were reset"
    if event_type == "push.fraud_reported":
        return "You reported a sign-in request you did not start; push requests are paused"
    return None


def render(
    event_type: str, data: dict[str, Any], occurred_at: datetime, issuer: str
) -> Message | None:
    subject = _render(event_type, data)
    if subject is None:
        return None
    when = occurred_at.strftime("%Y-%m-%d %H:%M UTC")
    body = f"{subject} on {when}.\n\n{NOT_YOU}\n\n-- {issuer}\n"
    return Message(f"{issuer}: {subject}", body)
