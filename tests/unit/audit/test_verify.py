"""verify_chain finds every kind of tampering and names the first bad position."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from services.core.audit import checkpoints, chain
from services.core.audit.signing import CheckpointSigner, parse_private_key, generate_key_b64
from services.core.audit.verify import verify_chain
from services.core.models import AuditCheckpoint, AuditEntry
from tests.unit.audit import tamper


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(parse_private_key(generate_key_b64()))


@pytest.fixture
def chain12(ctx, signer, clock):
    tamper.build_chain(ctx.sessions, signer, clock, 12, every_rows=5)
    return ctx.sessions


def verify(sessions, signer):
    with sessions() as session:
        return verify_chain(session, signer.verifier)


def test_an_untouched_chain_verifies_with_its_latest_checkpoint(chain12, signer):
    result = verify(chain12, signer)
    assert result.ok, result
    assert (result.checked, result.head_position, result.first_bad_position) == (12, 12, None)
    # checkpoints at 1 (the first row), then every 5 rows
    with chain12() as session:
        assert list(session.scalars(select(AuditCheckpoint.position).order_by(AuditCheckpoint.id))) == [1, 6, 11]
    assert result.checkpoint_position == 11


def test_an_empty_chain_is_ok(ctx, signer):
    result = verify(ctx.sessions, signer)
    assert result.ok and result.checked == 0 and result.head_position is None


def test_every_row_links_to_the_one_before(chain12):
    with chain12() as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.position)))
    assert [r.position for r in rows] == list(range(1, 13))
    assert rows[0].prev_hash == chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
    assert all(r.factor == "totp" and r.outcome == "success" for r in rows)


def test_an_edited_row_is_found_at_its_position(chain12, signer):
    tamper.edit_row(chain12, 7)
    result = verify(chain12, signer)
    assert not result.ok
    assert result.first_bad_position == 7
    assert "hash" in (result.problem or "")


def test_an_edited_search_column_is_found_even_though_the_envelope_is_intact(chain12, signer):
    tamper.edit_indexed_column(chain12, 4)
    result = verify(chain12, signer)
    assert (result.ok, result.first_bad_position) == (False, 4)


def test_a_deleted_row_is_found_as_a_gap(chain12, signer):
    tamper.delete_row(chain12, 5)
    result = verify(chain12, signer)
    assert (result.ok, result.first_bad_position) == (False, 5)
    assert "missing" in (result.problem or "")


def test_a_deleted_row_with_the_rest_renumbered_is_found(chain12, signer):
    tamper.delete_row(chain12, 5)
    with chain12.begin() as session:
        for pos in range(6, 13):
            session.execute(update(AuditEntry).where(AuditEntry.position == pos).values(position=pos - 1))
    result = verify(chain12, signer)
    assert (result.ok, result.first_bad_position) == (False, 5)


def test_two_swapped_rows_are_found_at_the_first(chain12, signer):
    tamper.swap_rows(chain12, 4, 9)
    result = verify(chain12, signer)
    assert (result.ok, result.first_bad_position) == (False, 4)


def test_a_cut_tail_is_found_through_the_signed_checkpoint(chain12, signer):
    tamper.cut_tail(chain12, 8)  # the checkpoint at 11 is gone from the chain
    result = verify(chain12, signer)
    assert not result.ok
    assert result.first_bad_position == 9
    assert "tail cut" in (result.problem or "")


def test_a_cut_tail_with_the_checkpoint_row_rewritten_is_found(chain12, signer):
    with chain12.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.position == 11).values(hash="f" * 64))
        session.execute(update(AuditEntry).where(AuditEntry.position == 12).values(prev_hash="f" * 64))
    result = verify(chain12, signer)
    assert (result.ok, result.first_bad_position) == (False, 11)


def test_a_checkpoint_re_signed_with_another_key_is_refused(chain12, signer):
    forger = CheckpointSigner(parse_private_key(generate_key_b64()))
    tamper.cut_tail(chain12, 8)
    with chain12.begin() as session:
        session.execute(delete(AuditCheckpoint))
        row = session.get(AuditEntry, 8)
        checkpoints.write(session, forger, 8, row.hash, row.recorded_at)
        session.flush()
        # even with the genuine key id copied over, the signature does not verify
        session.execute(update(AuditCheckpoint).values(key_id=signer.key_id))
    result = verify(chain12, signer)
    assert not result.ok
    assert "signature" in (result.problem or "")


def test_a_checkpoint_is_due_by_rows_or_by_time(signer, clock):
    policy = checkpoints.CheckpointPolicy(every_rows=100, every_seconds=60)
    last = AuditCheckpoint(position=10, hash="a" * 64, signed_at=clock.now(), key_id="k", signature="s")
    assert checkpoints.is_due(None, 1, clock.now(), policy)
    assert not checkpoints.is_due(last, 10, clock.now() + timedelta(hours=1), policy)
    assert not checkpoints.is_due(last, 11, clock.now(), policy)
    assert checkpoints.is_due(last, 110, clock.now(), policy)
    tamper.shift_time(clock, 60)
    assert checkpoints.is_due(last, 11, clock.now(), policy)


def test_a_redelivered_event_is_appended_once(ctx, signer, clock):
    envs = tamper.build_chain(ctx.sessions, signer, clock, 3)
    from services.core.audit import service

    with ctx.sessions.begin() as session:
        assert service.record(session, envs[1], clock.now(), signer, checkpoints.CheckpointPolicy()) is None
    assert verify(ctx.sessions, signer).checked == 3
