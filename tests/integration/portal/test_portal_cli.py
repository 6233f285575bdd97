"""``twofa portal adduser``: the demo first factor's accounts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from services.cli.main import main
from services.portal.accounts import AccountStore


def test_adduser_reads_the_password_from_stdin_and_stores_an_argon2_hash(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    monkeypatch.setenv("TWOFA_PORTAL_DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-enough\n"))
    assert main(["portal", "adduser", "bob"]) == 0
    store = AccountStore(url)
    try:
        assert store.names() == ["bob"]
        assert store.verify("bob", "s3cret-enough") and not store.verify("bob", "s3cret-enougH")
        with store.engine.connect() as conn:
            (stored,) = conn.exec_driver_sql("SELECT password_hash FROM portal_accounts").one()
        assert stored.startswith("$argon2id$") and "s3cret" not in stored
    finally:
        store.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    with pytest.raises(SystemExit, match="exists already"):
        main(["portal", "adduser", "bob"])


@pytest.mark.parametrize("name, password, message", [
    ("bad name", "long enough", "names are"), ("carol", "short", "at least 8")])
def test_adduser_refuses_bad_names_and_short_passwords(tmp_path: Path, monkeypatch, name, password, message):
    monkeypatch.setenv("TWOFA_PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'portal.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    with pytest.raises(SystemExit, match=message):
        main(["portal", "adduser", name])


def test_users_passwd_and_deluser_manage_the_accounts(tmp_path: Path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    monkeypatch.setenv("TWOFA_PORTAL_DATABASE_URL", url)
    for name in ("carol", "bob"):
        monkeypatch.setattr("sys.stdin", io.StringIO("first-password\n"))
        assert main(["portal", "adduser", name]) == 0
    capsys.readouterr()
    assert main(["portal", "users"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "CREATED"] and [r.split()[0] for r in rows] == ["bob", "carol"]

    monkeypatch.setattr("sys.stdin", io.StringIO("second-password\n"))
    assert main(["portal", "passwd", "bob"]) == 0
    store = AccountStore(url)
    try:
        assert store.verify("bob", "second-password") and not store.verify("bob", "first-password")
        assert store.verify("carol", "first-password")
    finally:
        store.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit, match="at least 8"):
        main(["portal", "passwd", "bob"])
    with pytest.raises(SystemExit, match="no portal account 'dave'"):
        main(["portal", "passwd", "dave"])

    assert main(["portal", "deluser", "carol"]) == 0
    with pytest.raises(SystemExit, match="no portal account 'carol'"):
        main(["portal", "deluser", "carol"])
    store = AccountStore(url)
    try:
        assert store.names() == ["bob"] and not store.verify("carol", "first-password")
    finally:
        store.close()
