"""Signed checkpoints of the chain head, written by the audit consumer.

A checkpoint is due when ``every_rows`` rows were appended since the last one, or
when the last one is older than ``every_seconds`` and rows were appended since. It
is written in the same transaction as the row that made it due, under the chain
lock, so checkpoints never point past what has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.audit import chain
from services.core.audit.signing import CheckpointSigner
from services.core.models import AuditCheckpoint
from services.core.plumbing.clock import as_utc
from services.core.plumbing.prepared import Prepared


@dataclass(frozen=True)
class CheckpointPolicy:
    every_rows: int = 100
    every_seconds: float = 300.0


class Signed(Protocol):
    """What deciding whether a checkpoint is due needs of the last one."""

    @property
    def position(self) -> int: ...

    @property
    def signed_at(self) -> datetime: ...


_CP = AuditCheckpoint.__table__
# Every batch the consumer appends asks this: two columns on the cursor, not an ORM entity.
_LAST_SIGNED = Prepared(
    select(_CP.c.position, _CP.c.signed_at)
    .order_by(_CP.c.position.desc(), _CP.c.id.desc())
    .limit(1)
)


def is_due(
    last: Signed | None, head_position: int, now: datetime, policy: CheckpointPolicy
) -> bool:
    if head_position <= 0:
        return False
    if last is None:
        return True
    behind = head_position - last.position
    if behind <= 0:
        return False
    if behind >= policy.every_rows:
        return True
    return (now - as_utc(last.signed_at)).total_seconds() >= policy.every_seconds


def write(
    session: Session, signer: CheckpointSigner, position: int, hash_: str, now: datetime
) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint(
        position=position,
        hash=hash_,
        signed_at=now,
        key_id=signer.key_id,
        signature=signer.sign(position, hash_, now),
    )
    session.add(checkpoint)
    return checkpoint


def maybe_checkpoint(
    session: Session,
    signer: CheckpointSigner,
    now: datetime,
    policy: CheckpointPolicy,
    *,
    force: bool = False,
    head: tuple[int, str] | None = None,
) -> AuditCheckpoint | None:
    """Sign the current head if a checkpoint is due (or ``force``); the caller holds the chain
    lock. ``head``: the head the caller has just written, if it knows it."""
    if head is None:
        head = chain.read_head(session)
    if head is None:
        return None
    last: Signed | None = _LAST_SIGNED.first(session.connection(), {})
    if force:
        if last is not None and last.position == head[0]:
            return None
    elif not is_due(last, head[0], now, policy):
        return None
    return write(session, signer, head[0], head[1], now)
