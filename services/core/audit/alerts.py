"""Security alerts: the events a security team must hear about at once, and how many
there were. They reach the team as webhooks (subscribe to ``ALERT_TYPES``); the counts
come from the audit log, so they are the same whichever process saw the event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.core.models import AuditEntry

ALERT_TYPES = (
    "push.fraud_reported",  # "I did not trigger this" on a push
    "recovery.used",  # every factor of a user removed
    "token.locked",  # a factor guessed into lockout
    "sms.send_refused",  # an SMS-pumping limit said no (country, service or user cap)
)


def counts(session: Session, since: datetime | None = None) -> dict[str, int]:
    """Alerts per type in the audit log (occurred at or after ``since``), zeros included."""
    query = select(AuditEntry.type, func.count()).where(AuditEntry.type.in_(ALERT_TYPES))
    if since is not None:
        query = query.where(AuditEntry.occurred_at >= since)
    found = {type_: n for type_, n in session.execute(query.group_by(AuditEntry.type))}
    return {type_: int(found.get(type_, 0)) for type_ in ALERT_TYPES}
