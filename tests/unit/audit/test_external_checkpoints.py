"""Checkpoints kept outside the database find a cut tail whose checkpoints were removed too."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete

from services.core.audit.external import CheckpointFileError, read_checkpoints, write_checkpoints
from services.core.audit.signing import CheckpointSigner, generate_key_b64, parse_private_key
from services.core.audit.verify import Checkpoint, verify_chain
from services.core.models import AuditCheckpoint
from tests.unit.audit import tamper


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(parse_private_key(generate_key_b64()))


@pytest.fixture
def chain12(ctx, signer, clock):
    tamper.build_chain(ctx.sessions, signer, clock, 12, every_rows=5)  # checkpoints at 1, 6, 11
    return ctx.sessions


@pytest.fixture
def kept_outside(chain12, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    with chain12() as session, path.open("w") as out:
        assert write_checkpoints(session, out) == 3
    return path


def cut_tail_and_its_checkpoints(sessions, keep: int) -> None:
    tamper.cut_tail(sessions, keep)
    with sessions.begin() as session:
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.position > keep))


def test_a_cut_tail_without_its_checkpoints_looks_intact_from_inside(chain12, signer):
    cut_tail_and_its_checkpoints(chain12, 8)
    with chain12() as session:
        assert verify_chain(session, signer.verifier).ok


def test_checkpoints_kept_outside_find_it(chain12, signer, kept_outside):
    cut_tail_and_its_checkpoints(chain12, 8)
    external = read_checkpoints(str(kept_outside), signer.verifier)
    with chain12() as session:
        result = verify_chain(session, signer.verifier, external)
    assert (result.ok, result.first_bad_position) == (False, 9)
    assert "tail cut" in (result.problem or "")


def test_an_intact_chain_agrees_with_its_checkpoints_kept_outside(chain12, signer, kept_outside):
    external = read_checkpoints(str(kept_outside), signer.verifier)
    with chain12() as session:
        result = verify_chain(session, signer.verifier, external)
    assert result.ok and result.checkpoints_checked == 4  # the latest in the DB, and 3 outside


def test_a_chain_rewritten_under_a_kept_checkpoint_is_found_there(chain12, signer, kept_outside, ctx, clock):
    """Everything from row 4 on replaced by a consistent new chain, checkpoints included."""
    tamper.cut_tail(chain12, 3)
    with chain12.begin() as session:
        session.execute(delete(AuditCheckpoint))
    tamper.build_chain(chain12, signer, clock, 9, every_rows=100)  # rows 4..12, all hashes valid
    external = read_checkpoints(str(kept_outside), signer.verifier)
    with chain12() as session:
        inside = verify_chain(session, signer.verifier)
        outside = verify_chain(session, signer.verifier, external)
    assert inside.ok
    assert (outside.ok, outside.first_bad_position) == (False, 6)
    assert "rewritten" in (outside.problem or "")


def test_webhook_payloads_are_read_as_checkpoints(chain12, signer, tmp_path):
    with chain12() as session:
        rows = [Checkpoint.of(r) for r in session.query(AuditCheckpoint).order_by(AuditCheckpoint.id)]
    path = tmp_path / "received.jsonl"
    lines = [{"type": "token.locked", "timestamp": "x", "data": {}}]
    lines += [{"type": "audit.checkpoint_signed", "timestamp": "x", "data": cp.as_dict()} for cp in rows]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_checkpoints(str(path), signer.verifier) == rows


def test_a_checkpoint_not_signed_by_the_key_is_refused(chain12, signer, kept_outside):
    other = CheckpointSigner(parse_private_key(generate_key_b64()))
    with pytest.raises(CheckpointFileError, match="not signed by key"):
        read_checkpoints(str(kept_outside), other.verifier)
    forged = json.loads(kept_outside.read_text().splitlines()[0])
    forged["hash"] = "a" * 64
    kept_outside.write_text(json.dumps(forged) + "\n")
    with pytest.raises(CheckpointFileError, match=":1: the checkpoint at 1 is not signed"):
        read_checkpoints(str(kept_outside), signer.verifier)


@pytest.mark.parametrize("line", ["{not json", "[]", '{"position": 1}', '{"position": "1", "hash": "a", '
                                  '"signed_at": "2026-01-01T00:00:00+00:00", "key_id": "k", "signature": "s"}'])
def test_a_line_that_is_not_a_checkpoint_is_refused(tmp_path, signer, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(CheckpointFileError, match="bad.jsonl:1: not a checkpoint"):
        read_checkpoints(str(path), signer.verifier)
