"""An edit to any column of any audit row is found at that row's position, never a crash."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from services.core.audit.signing import CheckpointSigner, generate_key_b64, parse_private_key
from services.core.audit.verify import verify_chain
from services.core.models import AuditEntry
from tests.unit.audit import tamper

ROW = 7


def plausible_edits(row: AuditEntry) -> dict[str, Any]:
    """For every column, a value of the right type that an attacker might write."""
    envelope = {**row.envelope, "data": {**row.envelope["data"], "area": "billing"}}
    return {
        "position": 99,
        "event_id": uuid.uuid4(),
        "type": "challenge.failed",
        "user_id": "mallory",
        "occurred_at": row.occurred_at + timedelta(seconds=1),
        "recorded_at": row.recorded_at + timedelta(seconds=1),
        "factor": "sms",
        "outcome": "failure",
        "envelope": envelope,
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(parse_private_key(generate_key_b64()))


@pytest.fixture
def chain12(ctx, signer, clock):
    tamper.build_chain(ctx.sessions, signer, clock, 12, every_rows=5)
    return ctx.sessions


def test_every_column_has_an_edit_in_this_test(chain12):
    with chain12() as session:
        row = session.get(AuditEntry, ROW)
        assert set(plausible_edits(row)) == {c.key for c in AuditEntry.__table__.columns}


@pytest.mark.parametrize("column", sorted(c.key for c in AuditEntry.__table__.columns))
def test_an_edit_to_any_column_is_found_at_its_row(chain12, signer, column):
    with chain12.begin() as session:
        value = plausible_edits(session.get(AuditEntry, ROW))[column]
        session.execute(update(AuditEntry).where(AuditEntry.position == ROW).values({column: value}))
    with chain12() as session:
        result = verify_chain(session, signer.verifier)
    assert (result.ok, result.first_bad_position) == (False, ROW), result


GARBAGE = {
    "event_id": "not-a-uuid",
    "occurred_at": "no-such-time",
    "recorded_at": "2026-13-45T99:99:99",
    "envelope": "{not json",
}


@pytest.mark.parametrize("column", sorted(GARBAGE))
def test_a_value_the_column_type_cannot_hold_is_found_or_refused(ctx, chain12, signer, column):
    """SQLite stores anything in any column; PostgreSQL refuses such a write outright."""
    sql = text(f"UPDATE audit_log SET {column} = :v WHERE position = :p")
    if ctx.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError):
            with ctx.engine.begin() as conn:
                conn.execute(sql, {"v": GARBAGE[column], "p": ROW})
        return
    with ctx.engine.begin() as conn:
        conn.execute(sql, {"v": GARBAGE[column], "p": ROW})
    with chain12() as session:
        result = verify_chain(session, signer.verifier)
    assert (result.ok, result.first_bad_position) == (False, ROW), result
    assert result.checked == ROW


@pytest.mark.parametrize("envelope", [[1, 2], {"event_id": "x"}, "text", None])
def test_an_envelope_that_is_not_an_event_is_found(chain12, signer, envelope):
    with chain12.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.position == ROW).values(envelope=envelope))
    with chain12() as session:
        result = verify_chain(session, signer.verifier)
    assert (result.ok, result.first_bad_position) == (False, ROW), result
