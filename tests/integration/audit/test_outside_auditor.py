"""An auditor outside the service's folder verifies with the public key alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlalchemy import delete

from services.api.app import create_app
from services.cli.main import main
from services.core.audit.service import verifier_for
from services.core.audit.signing import DEV_KEY_FILE
from services.core.models import AuditCheckpoint
from tests.unit.audit import tamper


@pytest.fixture
def elsewhere(monkeypatch, settings, tmp_path):
    """The auditor's shell: the database URL, and a folder where the service never ran."""
    folder = tmp_path / "auditor"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("TWOFA_VAR_DIR", "TWOFA_ENCRYPTION_KEYS", "TWOFA_AUDIT_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    return folder


@pytest.fixture
def published(ctx) -> Iterator[str]:
    """The API on a real port, publishing its public key."""
    config = uvicorn.Config(create_app(ctx=ctx), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_verify_never_creates_a_signing_key(elsewhere, ctx, chain12, capsys):
    assert main(["audit", "verify", "--public-key-url", "http://127.0.0.1:9/none"]) == 2
    err = capsys.readouterr().err
    assert "cannot fetch the published public key" in err and "--public-key FILE" in err
    assert not (elsewhere / "var" / DEV_KEY_FILE).exists()
    assert list(elsewhere.iterdir()) == []


def test_verify_with_the_key_file_from_elsewhere(elsewhere, ctx, chain12, capsys, tmp_path):
    key = tmp_path / "audit.pub"
    key.write_text(verifier_for(ctx).public_pem())
    assert main(["audit", "verify", "--public-key", str(key)]) == 0
    out = capsys.readouterr().out
    assert "audit chain ok: 12 rows, signed checkpoint at 11" in out
    assert f"public key {verifier_for(ctx).key_id}" in out
    assert list(elsewhere.iterdir()) == []


def test_verify_with_the_published_key(elsewhere, ctx, chain12, published, capsys, monkeypatch):
    monkeypatch.setenv("TWOFA_PUBLIC_URL", published)
    assert main(["audit", "verify"]) == 0
    assert "audit chain ok: 12 rows" in capsys.readouterr().out


def test_a_key_that_did_not_sign_the_checkpoints_reports_tampering(elsewhere, ctx, chain12, capsys, tmp_path):
    assert main(["keys", "new-audit-key"]) == 0
    from services.core.audit.signing import CheckpointSigner, parse_private_key

    other = CheckpointSigner(parse_private_key(capsys.readouterr().out))
    key = tmp_path / "other.pub"
    key.write_text(other.verifier.public_pem())
    assert main(["audit", "verify", "--public-key", str(key)]) == 1
    assert "signature does not verify" in capsys.readouterr().out


def test_operator_commands_refuse_to_invent_a_key(elsewhere, ctx, chain12, capsys):
    assert main(["keys", "audit-public-key"]) == 2
    assert main(["audit", "checkpoint"]) == 2
    assert "no audit signing key" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_checkpoints_kept_outside_catch_a_cut_tail(elsewhere, ctx, chain12, capsys, tmp_path):
    key, kept = tmp_path / "audit.pub", tmp_path / "kept.jsonl"
    key.write_text(verifier_for(ctx).public_pem())
    assert main(["audit", "checkpoints", "--output", str(kept)]) == 0
    tamper.cut_tail(ctx.sessions, 8)
    with ctx.sessions.begin() as session:
        session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.position > 8))
    assert main(["audit", "verify", "--public-key", str(key)]) == 0  # looks intact from inside
    capsys.readouterr()
    assert main(["audit", "verify", "--public-key", str(key), "--checkpoints", str(kept)]) == 1
    assert "first_bad_position=9" in capsys.readouterr().out


def test_a_forged_checkpoint_file_is_refused(elsewhere, ctx, chain12, capsys, tmp_path):
    key, kept = tmp_path / "audit.pub", tmp_path / "kept.jsonl"
    key.write_text(verifier_for(ctx).public_pem())
    assert main(["audit", "checkpoints", "--output", str(kept)]) == 0
    kept.write_text(kept.read_text().replace('"position": 6', '"position": 7'))
    assert main(["audit", "verify", "--public-key", str(key), "--checkpoints", str(kept)]) == 2
    assert "not signed by key" in capsys.readouterr().err
