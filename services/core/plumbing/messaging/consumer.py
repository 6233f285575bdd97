"""Consumer-side de-duplication: an event's effect and its (consumer, event_id) record
commit in one transaction, so a redelivered event is applied once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from services.core.models import ProcessedEvent


def first_delivery(session: Session, consumer: str, event_id: uuid.UUID, now: datetime) -> bool:
    """Record the event for ``consumer``; False if it was already applied.

    A concurrent duplicate that slips past the read fails on the primary key at
    commit, and its task is retried, then sees the record.
    """
    if session.get(ProcessedEvent, (consumer, event_id)) is not None:
        return False
    session.add(ProcessedEvent(consumer=consumer, event_id=event_id, processed_at=now))
    return True
