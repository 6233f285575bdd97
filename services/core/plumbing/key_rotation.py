"""``twofa keys rotate``: re-encrypt every secret column under the newest key.

Which columns are secret is a naming convention, not a list: every mapped column
whose name ends in ``_enc`` holds Fernet ciphertext from ``Keyring.encrypt``. A
column added later by another feature is therefore rotated without touching this
module (a test checks the convention holds for every model).

Rows are rotated in keyset-paged batches, one transaction per batch, and each
update is compare-and-set on the old ciphertext, so a value rewritten concurrently
(which is then already under the newest key) is left alone rather than clobbered.
After a rotation the old keys can be dropped from ``TWOFA_ENCRYPTION_KEYS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from sqlalchemy import Column, Table, and_, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from services.core.plumbing.crypto import Keyring
from services.core.plumbing.db import Base, affected_rows

SUFFIX = "_enc"


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" -> values re-encrypted
    failed: dict[str, int] = field(default_factory=dict)  # values no configured key decrypts
    skipped: int = 0  # changed concurrently; already under the newest key

    @property
    def total(self) -> int:
        return sum(self.rotated.values())


def secret_columns() -> Iterator[tuple[Table, list[Column[str]]]]:
    """Every mapped table with its ``*_enc`` columns."""
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        if not isinstance(table, Table):
            continue
        cols = [c for c in table.columns if c.name.endswith(SUFFIX)]
        if cols:
            yield table, cols


def rotate_all(
    sessions: sessionmaker[Session], keyring: Keyring, batch_size: int = 500
) -> RotationReport:
    report = RotationReport()
    for table, cols in sorted(secret_columns(), key=lambda tc: tc[0].name):
        for col in cols:
            report.rotated[f"{table.name}.{col.name}"] = 0
        _rotate_table(sessions, keyring, table, cols, batch_size, report)
    return report


def _rotate_table(
    sessions: sessionmaker[Session],
    keyring: Keyring,
    table: Table,
    cols: list[Column[str]],
    batch_size: int,
    report: RotationReport,
) -> None:
    pk = list(table.primary_key.columns)
    last: tuple[object, ...] | None = None
    while True:
        stmt = select(*pk, *cols).where(or_(*(c.isnot(None) for c in cols)))
        if last is not None:
            stmt = stmt.where(tuple_(*pk) > tuple_(*last))
        with sessions.begin() as session:
            rows = session.execute(stmt.order_by(*pk).limit(batch_size)).all()
            for row in rows:
                key = tuple(row[: len(pk)])
                for i, col in enumerate(cols):
                    old = row[len(pk) + i]
                    if old is not None:
                        _rotate_value(session, keyring, table, pk, key, col, old, report)
        if len(rows) < batch_size:
            return
        last = tuple(rows[-1][: len(pk)])


def _rotate_value(
    session: Session,
    keyring: Keyring,
    table: Table,
    pk: list[Column[object]],
    key: tuple[object, ...],
    col: Column[str],
    old: str,
    report: RotationReport,
) -> None:
    name = f"{table.name}.{col.name}"
    try:
        new = keyring.rotate(old)
    except InvalidToken:
        report.failed[name] = report.failed.get(name, 0) + 1
        return
    won = affected_rows(
        session,
        update(table)
        .where(and_(*(c == v for c, v in zip(pk, key, strict=True))), col == old)
        .values({col.name: new}),
    )
    if won == 1:
        report.rotated[name] += 1
    else:
        report.skipped += 1
