"""Reading the audit log: pages in position order, filtered by user, type and time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.core.models import AuditEntry
from services.core.plumbing.clock import as_utc

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditFilter:
    user_id: str | None = None
    type: str | None = None
    since: datetime | None = None  # occurred_at >= since
    until: datetime | None = None  # occurred_at < until


def row_dict(entry: AuditEntry) -> dict[str, Any]:
    """One row as auditors see it: chain fields, factor, outcome and the event itself."""
    return {
        "position": entry.position,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "recorded_at": as_utc(entry.recorded_at).isoformat(),
        "event_id": str(entry.event_id),
        "type": entry.type,
        "user_id": entry.user_id,
        "occurred_at": as_utc(entry.occurred_at).isoformat(),
        "factor": entry.factor,
        "outcome": entry.outcome,
        "envelope": entry.envelope,
    }


def page(
    session: Session, *, after: int = 0, limit: int = 100, where: AuditFilter | None = None
) -> list[AuditEntry]:
    """Rows with position > ``after``, oldest first, at most ``limit`` (≤ MAX_PAGE)."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = select(AuditEntry).where(AuditEntry.position > after)
    f = where or AuditFilter()
    if f.user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == f.user_id)
    if f.type is not None:
        stmt = stmt.where(AuditEntry.type == f.type)
    if f.since is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEntry.occurred_at < f.until)
    return list(session.scalars(stmt.order_by(AuditEntry.position).limit(limit)))


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def iterate(session: Session, batch: int = MAX_PAGE) -> Iterator[AuditEntry]:
    """Every row in position order, read in keyset-paged batches."""
    after = 0
    while True:
        rows = page(session, after=after, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].position
        session.expunge_all()
