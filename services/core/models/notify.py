"""Where a user is told about changes to their account, and what they were told.

``user_contacts``: the e-mail address a portal or login service set (encrypted: it is
personal data). ``notifications``: one row per event a user was (or could not be) told
about; the event id as primary key makes a redelivered event a no-op, and the rows of
the last hour are what the per-user throttle counts.
"""

from __future__ import annotations

import uuid

from sqlalchemy import String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UserIdStr, UtcDateTime


class UserContact(Base):
    __tablename__ = "user_contacts"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email_enc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[UtcDateTime]


class Notification(Base):
    __tablename__ = "notifications"

    source_event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[UserIdStr]
    source_type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16))  # sent | failed | throttled | no_channel
    created_at: Mapped[UtcDateTime] = mapped_column(index=True)
