"""Transaction ids: the 20-digit name a plugin uses for a twofa challenge.

privacyIDEA's transaction ids are 20 decimal digits, and plugins store and compare them
as such. Each is drawn at random (about 66 bits), so one tells nothing about another
and cannot be guessed; the row maps it to exactly one challenge and back.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from services.core.models import PiTransaction
from services.core.plumbing.db import affected_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.core.plumbing.uow import UnitOfWork

FORMAT = re.compile(r"^[0-9]{20}$")


def well_formed(transaction_id: str) -> bool:
    return bool(FORMAT.match(transaction_id))


def new_id() -> str:
    return f"{secrets.randbelow(10**20):020d}"


def attach(uow: UnitOfWork, challenge_id: uuid.UUID) -> str:
    """A fresh transaction id for ``challenge_id``, written in the caller's unit of work.

    A clash among 10^20 values is not worth a retry loop around a failed INSERT: the
    primary key still refuses a duplicate, and the use case fails instead of mixing two
    logins.
    """
    transaction_id = new_id()
    uow.session.add(PiTransaction(transaction_id=transaction_id, challenge_id=challenge_id))
    return transaction_id


def challenge_id_of(session: Session, transaction_id: str) -> uuid.UUID | None:
    if not well_formed(transaction_id):
        return None
    return session.scalar(
        select(PiTransaction.challenge_id).where(PiTransaction.transaction_id == transaction_id)
    )


def transaction_of(session: Session, transaction_id: str) -> PiTransaction | None:
    return session.get(PiTransaction, transaction_id) if well_formed(transaction_id) else None


def finalize(uow: UnitOfWork, transaction_id: str, now: datetime) -> bool:
    """Compare-and-set: the first finalize of a transaction wins, every later one loses."""
    won = affected_rows(
        uow.session,
        update(PiTransaction)
        .where(PiTransaction.transaction_id == transaction_id, PiTransaction.finalized_at.is_(None))
        .values(finalized_at=now)
        .execution_options(synchronize_session=False),
    )
    return won == 1
