"""Verification of the audit chain: every hash recomputed, every link and checkpoint checked.

What each kind of tampering looks like here:

- an edited row: its recomputed hash differs from the stored one (or a searchable
  column — type, user, factor, outcome, time — disagrees with the hashed envelope);
- a deleted row: a gap in positions, or (if the rows after it were renumbered) a
  ``prev_hash`` that is not the hash of the row before;
- two swapped rows: the position is part of the hashed row, so both recompute wrong;
- a cut tail: no hash breaks, but the latest signed checkpoint names a position the
  chain no longer has, or a hash the chain no longer has there.

The first bad position is reported: the earliest position from which the log can no
longer be trusted. Rows are read in batches in position order, so memory stays flat.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.audit.chain import GENESIS, OUTCOMES, canonical_row, row_hash
from services.core.audit.signing import CheckpointVerifier
from services.core.models import AuditCheckpoint, AuditEntry
from services.core.plumbing.clock import as_utc

BATCH = 1000


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # rows whose hash was recomputed
    first_bad_position: int | None = None
    problem: str | None = None
    head_position: int | None = None
    checkpoint_position: int | None = None  # the latest signed checkpoint, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_problem(entry: AuditEntry) -> str | None:
    """Why ``entry`` does not match its own hash or envelope, or None."""
    canonical = canonical_row(entry.position, entry.prev_hash, entry.envelope, entry.recorded_at)
    if row_hash(entry.prev_hash, canonical) != entry.hash:
        return "row content does not match its hash (edited or moved)"
    env = entry.envelope
    data = env.get("data") or {}
    try:
        same = (
            entry.event_id == uuid.UUID(str(env.get("event_id")))
            and entry.type == env.get("type")
            and entry.user_id == env.get("user_id")
            and entry.factor == data.get("token_type")
            and entry.outcome == OUTCOMES.get(str(env.get("type")))
            and as_utc(entry.occurred_at) == datetime.fromisoformat(str(env.get("occurred_at")))
        )
    except ValueError:
        same = False
    return None if same else "an indexed column disagrees with the hashed event (edited)"


def verify_chain(session: Session, verifier: CheckpointVerifier | None = None) -> VerifyResult:
    """Check the whole chain; ``verifier`` (the checkpoint public key) enables tail checks."""
    expected_position, prev_hash, checked = 1, GENESIS, 0
    after = 0
    while True:
        batch = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.position > after)
                .order_by(AuditEntry.position)
                .limit(BATCH)
            )
        )
        for entry in batch:
            if entry.position != expected_position:
                return VerifyResult(
                    False, checked, expected_position,
                    f"row {expected_position} is missing (next is {entry.position})",
                )
            if entry.prev_hash != prev_hash:
                return VerifyResult(
                    False, checked, entry.position,
                    "prev_hash does not link to the row before (row removed or reordered)",
                )
            problem = _row_problem(entry)
            checked += 1
            if problem:
                return VerifyResult(False, checked, entry.position, problem)
            expected_position, prev_hash = entry.position + 1, entry.hash
        session.expunge_all()  # keep memory flat on long chains
        if len(batch) < BATCH:
            break
        after = batch[-1].position
    head = expected_position - 1
    return _check_checkpoint(session, verifier, checked, head)


def _check_checkpoint(
    session: Session, verifier: CheckpointVerifier | None, checked: int, head: int
) -> VerifyResult:
    cp = session.scalar(
        select(AuditCheckpoint)
        .order_by(AuditCheckpoint.position.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    )
    head_or_none = head or None
    if cp is None:
        return VerifyResult(True, checked, head_position=head_or_none)
    if verifier is not None and (
        cp.key_id != verifier.key_id
        or not verifier.verify(cp.position, cp.hash, cp.signed_at, cp.signature)
    ):
        return VerifyResult(False, checked, min(cp.position, head + 1),
                            "the latest checkpoint's signature does not verify",
                            head_or_none, cp.position)
    if cp.position > head:
        return VerifyResult(
            False, checked, head + 1,
            f"the chain ends at {head} but a signed checkpoint covers {cp.position} (tail cut)",
            head_or_none, cp.position,
        )
    stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.position == cp.position))
    if stored != cp.hash:
        return VerifyResult(False, checked, cp.position,
                            "the row at the signed checkpoint has another hash (chain rewritten)",
                            head_or_none, cp.position)
    return VerifyResult(True, checked, head_position=head_or_none, checkpoint_position=cp.position)
