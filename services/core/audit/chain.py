"""The audit log's hash chain: ``hash = SHA-256(prev_hash ‖ canonical JSON of the row)``.

Rows are appended by one consumer at a time (a DB-level lock), each at the next
position, so an edited, removed or reordered row breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import jcs
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.core.clock import as_utc
from services.core.models import AuditEntry

GENESIS = "0" * 64

# The outcome an authentication event records, by event type.
OUTCOMES = {
    "challenge.verified": "success",
    "challenge.approved": "success",
    "challenge.failed": "failure",
    "challenge.declined": "declined",
    "challenge.expired": "expired",
    "challenge.not_required": "not_required",
    "challenge.created": "pending",
    "challenge.factor_selected": "pending",
    "enrollment.failed": "failure",
    "token.verification_failed": "failure",
    "recovery.used": "success",
    "recovery.failed": "failure",
}


def canonical_row(
    position: int, prev_hash: str, envelope: dict[str, Any], recorded_at: datetime
) -> bytes:
    data = envelope.get("data", {})
    row = {
        "position": position,
        "prev_hash": prev_hash,
        "recorded_at": as_utc(recorded_at).isoformat(),
        "factor": data.get("token_type"),
        "outcome": OUTCOMES.get(envelope["type"]),
        "event": envelope,
    }
    return jcs.canonicalize(row)


def row_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def lock_chain(session: Session) -> None:
    """Serialise appends (and checkpoints) to the chain head for this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    # SQLite: every write transaction already starts with BEGIN IMMEDIATE (see db.py).


def append(session: Session, envelope: dict[str, Any], recorded_at: datetime) -> AuditEntry | None:
    """Append one event at the chain's head; None if this event_id is already there."""
    lock_chain(session)
    event_id = uuid.UUID(envelope["event_id"])
    if session.scalar(select(AuditEntry.position).where(AuditEntry.event_id == event_id)):
        return None
    head = session.execute(
        select(AuditEntry.position, AuditEntry.hash).order_by(AuditEntry.position.desc()).limit(1)
    ).first()
    position, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    canonical = canonical_row(position, prev, envelope, recorded_at)
    data = envelope.get("data", {})
    entry = AuditEntry(
        position=position,
        event_id=event_id,
        type=envelope["type"],
        user_id=envelope.get("user_id"),
        occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
        recorded_at=recorded_at,
        factor=data.get("token_type"),
        outcome=OUTCOMES.get(envelope["type"]),
        envelope=envelope,
        prev_hash=prev,
        hash=row_hash(prev, canonical),
    )
    session.add(entry)
    return entry
