"""What twofa writes under var/ is its owner's alone, whatever the caller's umask: the
databases (password hashes, encrypted secrets), the dev keys, the console outbox with its
codes. New directories 0700, new files 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.stack import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def twofa(cwd: Path, *args: str, stdin: str = "") -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOFA_")}
    env.update(TWOFA_ENV="dev", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=cwd, env=env, input=stdin,
                   text=True, check=True, capture_output=True, timeout=60,
                   preexec_fn=lambda: os.umask(0o022))  # a usual login shell's umask


def test_migrate_portal_accounts_and_keys_are_private(tmp_path: Path):
    twofa(tmp_path, "migrate")
    twofa(tmp_path, "portal", "adduser", "alice", stdin="long enough password\n")
    twofa(tmp_path, "apikey", "create", "--name", "t", "--scopes", "enroll")
    twofa(tmp_path, "keys", "rotate")  # builds the keyring: the dev encryption key
    var = tmp_path / "var"
    assert mode(var) == 0o700
    for name in ("twofa.db", "portal.db", "dev-encryption.key", "twofa.db.writer-lock"):
        assert mode(var / name) == 0o600, name
    for path in var.rglob("*"):
        assert mode(path) & 0o077 == 0, f"{path.relative_to(tmp_path)} is {oct(mode(path))}"


def test_files_an_older_twofa_left_readable_are_made_private_on_start(tmp_path: Path):
    var = tmp_path / "var"
    (var / "outbox").mkdir(parents=True)
    old = {var / "portal.db": "hashes", var / "outbox" / "sms.log": "codes"}
    for path, text in old.items():
        path.write_text(text)
        path.chmod(0o644)
    (var / "outbox").chmod(0o755)
    var.chmod(0o755)
    outside = tmp_path / "shared.txt"
    outside.write_text("not twofa's")
    outside.chmod(0o644)
    os.symlink(outside, var / "link")  # not followed: what it points to is not twofa's
    twofa(tmp_path, "migrate")
    assert mode(var) == 0o700 and mode(var / "outbox") == 0o700
    for path, text in old.items():
        assert mode(path) == 0o600 and path.read_text() == text
    assert mode(outside) == 0o644
