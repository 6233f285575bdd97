"""``twofa audit verify`` and ``twofa audit export`` on the same database as the API."""

from __future__ import annotations

import json

import pytest

from services.cli.main import main
from services.core.audit.chain import canonical_row, row_hash
from tests.integration.audit.conftest import TAMPERINGS


@pytest.fixture
def cli_env(monkeypatch, settings):
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TWOFA_VAR_DIR", str(settings.var_dir))  # the same dev signing key
    monkeypatch.setenv("TWOFA_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())


@pytest.fixture
def public_key_file(cli_env, chain12, tmp_path, capsys):
    """What the operator of the running service hands the auditor (``twofa keys audit-public-key``)."""
    assert main(["keys", "audit-public-key"]) == 0
    path = tmp_path / "audit.pub"
    path.write_text(capsys.readouterr().out)
    assert path.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    return str(path)


def test_verify_exits_0_on_an_intact_chain(public_key_file, chain12, capsys):
    assert main(["audit", "verify", "--public-key", public_key_file]) == 0
    assert "audit chain ok: 12 rows, signed checkpoint at 11" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_verify_exits_1_and_prints_the_first_bad_position(public_key_file, ctx, chain12, capsys, kind):
    action, first_bad = TAMPERINGS[kind]
    action(ctx.sessions)
    assert main(["audit", "verify", "--public-key", public_key_file]) == 1
    out = capsys.readouterr().out
    assert f"TAMPERED at position {first_bad}:" in out
    assert f"first_bad_position={first_bad}" in out


def test_export_writes_json_lines_an_auditor_can_rehash(cli_env, chain12, tmp_path, capsys):
    target = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--format", "jsonl", "--output", str(target)]) == 0
    err = capsys.readouterr().err
    assert "exported 12 rows" in err
    assert "[" not in err  # stderr is not a terminal here: no progress bar
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["position"] for r in rows] == list(range(1, 13))
    prev = "0" * 64
    from datetime import datetime

    for r in rows:
        canonical = canonical_row(r["position"], r["prev_hash"], r["envelope"], datetime.fromisoformat(r["recorded_at"]))
        assert r["prev_hash"] == prev and row_hash(prev, canonical) == r["hash"]
        prev = r["hash"]


def test_export_to_stdout(cli_env, chain12, capsys):
    assert main(["audit", "export"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 12


def test_progress_bar_draws_on_a_terminal():
    import io

    from services.cli.audit_cmd import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(1000, buf)
    bar.update(500)
    bar.close()
    assert buf.getvalue() == "\r[" + "#" * 15 + " " * 15 + "] 500/1000\n"


def test_checkpoint_command_signs_the_head(public_key_file, ctx, chain12, capsys):
    assert main(["audit", "checkpoint"]) == 0
    assert "signed checkpoint at 12" in capsys.readouterr().out
    assert main(["audit", "checkpoint"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert main(["audit", "verify", "--public-key", public_key_file]) == 0


def test_export_shows_the_bar_only_when_stderr_is_a_terminal(cli_env, chain12, tmp_path, monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    assert main(["audit", "export", "--output", str(tmp_path / "a.jsonl")]) == 0
    assert "] 12/12" in fake.getvalue()
