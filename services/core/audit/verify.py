"""Verification of the audit chain: every hash recomputed, every link and checkpoint checked.

What each kind of tampering looks like here:

- an edited row: its recomputed hash differs from the stored one, or a searchable
  column (event id, type, user, factor, outcome, time) disagrees with the hashed
  envelope, or a column holds something that is not even of its type;
- a deleted row: a gap in positions, or (if the rows after it were renumbered) a
  ``prev_hash`` that is not the hash of the row before;
- two swapped rows: the position is part of the hashed row, so both recompute wrong;
- a cut tail: no hash breaks, but a signed checkpoint names a position the chain no
  longer has, or a hash the chain no longer has there. The latest checkpoint in the
  database catches a cut that left the checkpoints alone; checkpoints kept outside
  the database (``external``) catch one that removed them too.

The first bad position is reported: the earliest position from which the log can no
longer be trusted. Rows are read in batches in position order, so memory stays flat.
Verification needs the public key only; it never reads the signing key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
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
# What loading a row raises when a column was edited to a value its type cannot read
# (SQLite stores whatever it is given: a UUID column can be made to hold "x").
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the chain had ``hash`` at ``position``", wherever it was kept."""

    position: int
    hash: str
    signed_at: datetime
    key_id: str
    signature: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(row.position, row.hash, as_utc(row.signed_at), row.key_id, row.signature)

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "hash": self.hash,
            "signed_at": as_utc(self.signed_at).isoformat(),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Checkpoint:
        """Raises ValueError unless ``raw`` is a checkpoint as ``as_dict`` writes it."""
        if not isinstance(raw, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            position, signed_at = raw["position"], datetime.fromisoformat(raw["signed_at"])
            values = (raw["hash"], raw["key_id"], raw["signature"])
        except (KeyError, TypeError) as exc:
            raise ValueError(
                "a checkpoint needs position, hash, signed_at, key_id and signature"
            ) from exc
        if not isinstance(position, int) or isinstance(position, bool) or position < 1:
            raise ValueError("a checkpoint's position is a positive integer")
        if not all(isinstance(v, str) for v in values) or signed_at.tzinfo is None:
            raise ValueError(
                "a checkpoint's hash, key_id and signature are strings, signed_at has a zone"
            )
        return cls(position, values[0], signed_at, values[1], values[2])

    def verifies_with(self, verifier: CheckpointVerifier) -> bool:
        return self.key_id == verifier.key_id and verifier.verify(
            self.position, self.hash, self.signed_at, self.signature
        )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # rows whose hash was recomputed
    first_bad_position: int | None = None
    problem: str | None = None
    head_position: int | None = None
    checkpoint_position: int | None = None  # the latest signed checkpoint, if any
    checkpoints_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_problem(entry: AuditEntry) -> str | None:
    """Why ``entry`` does not match its own hash or envelope, or None."""
    try:
        canonical = canonical_row(
            entry.position, entry.prev_hash, entry.envelope, entry.recorded_at
        )
        if row_hash(entry.prev_hash, canonical) != entry.hash:
            return "row content does not match its hash (edited or moved)"
        env = entry.envelope
        data = env.get("data") or {}
        same = (
            entry.event_id == uuid.UUID(str(env.get("event_id")))
            and entry.type == env.get("type")
            and entry.user_id == env.get("user_id")
            and entry.factor == data.get("token_type")
            and entry.outcome == OUTCOMES.get(str(env.get("type")))
            and as_utc(entry.occurred_at) == datetime.fromisoformat(str(env.get("occurred_at")))
        )
    except _UNREADABLE:
        return "the row is malformed (edited)"
    return None if same else "an indexed column disagrees with the hashed event (edited)"


def _rows(session: Session) -> Iterator[tuple[int, AuditEntry | None]]:
    """(position, row) in position order; the row is None when its columns cannot be read."""
    after = 0
    while True:
        positions = list(
            session.scalars(
                select(AuditEntry.position)
                .where(AuditEntry.position > after)
                .order_by(AuditEntry.position)
                .limit(BATCH)
            )
        )
        if not positions:
            return
        try:
            batch: list[AuditEntry | None] = list(
                session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.position.in_(positions))
                    .order_by(AuditEntry.position)
                )
            )
        except _UNREADABLE:
            session.expunge_all()
            batch = [_one(session, p) for p in positions]
        if len(batch) != len(positions):  # a row went between the two reads: one by one
            batch = [_one(session, p) for p in positions]
        yield from zip(positions, batch, strict=True)
        session.expunge_all()  # keep memory flat on long chains
        after = positions[-1]


def _one(session: Session, position: int) -> AuditEntry | None:
    try:
        query = select(AuditEntry).where(AuditEntry.position == position)
        return session.scalars(query).one_or_none()
    except _UNREADABLE:
        session.expunge_all()
        return None


def verify_chain(
    session: Session,
    verifier: CheckpointVerifier | None = None,
    external: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Check the whole chain. ``verifier`` (the public key) checks checkpoint signatures;
    ``external`` are checkpoints kept outside the database (already verified by the caller)."""
    wanted = {cp.position for cp in external}
    seen: dict[int, str] = {}  # position -> stored hash, for the external checkpoints
    expected_position, prev_hash, checked = 1, GENESIS, 0
    broken: tuple[int, str] | None = None
    for position, entry in _rows(session):
        if position != expected_position:
            broken = (expected_position, f"row {expected_position} is missing (next is {position})")
            break
        if entry is None:
            checked += 1
            broken = (position, "a column holds a value its type cannot read (edited)")
            break
        if entry.prev_hash != prev_hash:
            broken = (
                position,
                "prev_hash does not link to the row before (row removed or reordered)",
            )
            break
        problem = _row_problem(entry)
        checked += 1
        if problem:
            broken = (position, problem)
            break
        if position in wanted:
            seen[position] = entry.hash
        expected_position, prev_hash = position + 1, entry.hash
    head = expected_position - 1
    problems = [broken] if broken else []
    latest, latest_problem = _latest_checkpoint(session, verifier, head)
    if latest_problem:
        problems.append(latest_problem)
    for cp in external:
        if broken and cp.position >= broken[0]:
            continue  # the chain is already untrusted from before it
        found = _against_chain(cp, head, seen.get(cp.position), "a checkpoint kept outside")
        if found:
            problems.append(found)
    head_or_none = head or None
    cp_position = latest.position if latest else None
    n_checkpoints = len(external) + (1 if latest else 0)
    if problems:
        first = min(problems, key=lambda p: p[0])
        return VerifyResult(
            False, checked, first[0], first[1], head_or_none, cp_position, n_checkpoints
        )
    return VerifyResult(
        True,
        checked,
        head_position=head_or_none,
        checkpoint_position=cp_position,
        checkpoints_checked=n_checkpoints,
    )


def _against_chain(
    cp: Checkpoint, head: int, stored: str | None, what: str
) -> tuple[int, str] | None:
    if cp.position > head:
        return (head + 1, f"the chain ends at {head} but {what} covers {cp.position} (tail cut)")
    if stored is not None and stored != cp.hash:
        return (cp.position, f"the row at {what} has another hash (chain rewritten)")
    return None


def _latest_checkpoint(
    session: Session, verifier: CheckpointVerifier | None, head: int
) -> tuple[Checkpoint | None, tuple[int, str] | None]:
    """The database's latest checkpoint, and what is wrong with it (if anything)."""
    order = (AuditCheckpoint.position.desc(), AuditCheckpoint.id.desc())
    try:
        row = session.scalar(select(AuditCheckpoint).order_by(*order).limit(1))
    except _UNREADABLE:
        session.expunge_all()
        position = session.scalar(select(AuditCheckpoint.position).order_by(*order).limit(1)) or 1
        return None, (min(position, head + 1), "the latest checkpoint is malformed (edited)")
    if row is None:
        return None, None
    cp = Checkpoint.of(row)
    if verifier is not None and not cp.verifies_with(verifier):
        return cp, (min(cp.position, head + 1), "the latest checkpoint's signature does not verify")
    if cp.position > head:
        return cp, (
            head + 1,
            f"the chain ends at {head} but a signed checkpoint covers {cp.position} (tail cut)",
        )
    stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.position == cp.position))
    if stored != cp.hash:
        return cp, (
            cp.position,
            "the row at the signed checkpoint has another hash (chain rewritten)",
        )
    return cp, None
