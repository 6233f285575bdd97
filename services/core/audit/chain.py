"""The audit log's hash chain: ``hash = SHA-256(prev_hash ‖ canonical JSON of the row)``.

Rows are appended by one consumer at a time (a DB-level lock), each at the next
position, so an edited, removed or reordered row breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.core.models import AuditEntry
from services.core.plumbing import canonical_json
from services.core.plumbing.clock import as_utc
from services.core.plumbing.prepared import Prepared

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
    return canonical_json.canonicalize(row)


def row_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def lock_chain(session: Session) -> None:
    """Serialise appends (and checkpoints) to the chain head for this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    # SQLite: every write transaction already starts with BEGIN IMMEDIATE (see db.py).


class NewEntry(NamedTuple):
    """A row to append, as plain values: the consumer writes rows, it never reads them back,
    so ORM instances (attribute instrumentation for every column) were cost without use."""

    position: int
    event_id: uuid.UUID
    type: str
    user_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    factor: str | None
    outcome: str | None
    envelope: dict[str, Any]
    prev_hash: str
    hash: str


def append(session: Session, envelope: dict[str, Any], recorded_at: datetime) -> NewEntry | None:
    """Append one event at the chain's head; None if this event_id is already there."""
    lock_chain(session)
    entries = _insert(session, prepare(session, [envelope], recorded_at).entries)
    return entries[0] if entries else None


@dataclass
class Batch:
    """Rows computed against a head that was read without the chain lock."""

    head: tuple[int, str] | None
    entries: list[NewEntry]


_T = AuditEntry.__table__
_HEAD = Prepared(select(_T.c.position, _T.c.hash).order_by(_T.c.position.desc()).limit(1))


def read_head(conn: Session | Connection) -> tuple[int, str] | None:
    if isinstance(conn, Session):
        conn = conn.connection()
    row = _HEAD.first(conn, {})
    return (row.position, row.hash) if row else None


def prepare(
    conn: Session | Connection, envelopes: list[dict[str, Any]], recorded_at: datetime
) -> Batch:
    """The rows ``envelopes`` would add after the current head (hashing is the costly part)."""
    ids = [uuid.UUID(e["event_id"]) for e in envelopes]
    seen = set(
        conn.execute(select(AuditEntry.event_id).where(AuditEntry.event_id.in_(ids))).scalars()
    )
    head = read_head(conn)
    position, prev = head if head else (0, GENESIS)
    entries: list[NewEntry] = []
    for event_id, envelope in zip(ids, envelopes, strict=True):
        if event_id in seen:
            continue
        seen.add(event_id)
        position += 1
        entry = _entry(position, prev, event_id, envelope, recorded_at)
        entries.append(entry)
        prev = entry.hash
    return Batch(head, entries)


def append_prepared(session: Session, batch: Batch, envelopes: list[dict[str, Any]],
                    recorded_at: datetime) -> list[NewEntry]:
    """Append a batch prepared outside the lock if the head has not moved since (the
    usual case: one audit consumer); otherwise prepare it again under the lock."""
    lock_chain(session)
    if read_head(session) != batch.head:
        batch = prepare(session, envelopes, recorded_at)
    return _insert(session, batch.entries)


def _insert(session: Session, entries: list[NewEntry]) -> list[NewEntry]:
    """One INSERT for the rows."""
    if entries:
        session.execute(insert(_T), [e._asdict() for e in entries])
    return entries


def _entry(position: int, prev: str, event_id: uuid.UUID, envelope: dict[str, Any],
           recorded_at: datetime) -> NewEntry:
    canonical = canonical_row(position, prev, envelope, recorded_at)
    data = envelope.get("data", {})
    return NewEntry(
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
