"""The ``twofa import`` command: a line per record, a summary, exit status by outcome; and
no seed, number, key or Firebase token in what it prints or logs, dry run and errors included."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from services.cli.main import main
from services.core.models import Token
from services.core.plumbing.context import Context
from services.core.plumbing.settings import Settings
from tests.integration.imports.conftest import FBTOKEN, FIXTURES, PHONE, SEED_HEX, pem_private, sms, totp
from tests.leakcheck import Sensitive, assert_no_leaks


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TWOFA_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TWOFA_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())  # type: ignore[union-attr]
    monkeypatch.setenv("TWOFA_PI_REALMS", "bench=sso")


def twofa(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
        print(exc.code, file=__import__("sys").stderr)
    out, err = capsys.readouterr()
    return status, out, err


def count(ctx: Context) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(Token)) or 0


def test_report_and_summary(ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any],
                            capsys: pytest.CaptureFixture[str]) -> None:
    path, key = pi_file([totp("TOTP0001"), sms("PISM0001"), push("PIPU0001ABCD"),
                         sms("PISM0002", phone="0151 1234567")])

    status, out, _ = twofa("import", "privacyidea", str(path), "--key", key, "--dry-run", capsys=capsys)
    assert status == 1 and count(ctx) == 0
    assert out.splitlines()[-1] == ("dry run, nothing written: would import 3 (push 1, sms 1, totp 1); "
                                    "skipped 0; refused 1 (sms 1)")

    status, out, _ = twofa("import", "privacyidea", str(path), "--key", key, capsys=capsys)
    header, *rows, summary = out.splitlines()
    assert header.split() == ["AT", "SERIAL", "TYPE", "RESULT", "USER", "WHY"]
    assert [r.split()[:5] for r in rows] == [
        ["entry-1", "TOTP0001", "totp", "imported", "alice"],
        ["entry-2", "PISM0001", "sms", "imported", "bob"],
        ["entry-3", "PIPU0001ABCD", "push", "imported", "carol"],
        ["entry-4", "PISM0002", "sms", "refused", "-"]]
    assert "phone number refused" in rows[3]
    assert summary == "imported 3 (push 1, sms 1, totp 1); skipped 0; refused 1 (sms 1)"
    assert status == 1 and count(ctx) == 3

    status, out, _ = twofa("import", "privacyidea", str(path), "--key", key, capsys=capsys)
    assert out.splitlines()[-1] == "imported 0; skipped 3 (push 1, sms 1, totp 1); refused 1 (sms 1)"


def test_a_clean_import_exits_0(ctx: Context, pi_file: Callable[..., Any],
                                capsys: pytest.CaptureFixture[str]) -> None:
    path, key = pi_file([totp("TOTP0001")])
    assert twofa("import", "privacyidea", str(path), "--key", key, capsys=capsys)[0] == 0


def test_an_unreadable_file_exits_2_and_writes_nothing(
    ctx: Context, pi_file: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    path, key = pi_file([totp("TOTP0001")])
    path.write_bytes(path.read_bytes()[:-20])
    status, _, err = twofa("import", "privacyidea", str(path), "--key", key, capsys=capsys)
    assert status == 2 and "truncated" in err and "nothing imported" in err and count(ctx) == 0
    status, _, err = twofa("import", "privacyidea", str(tmp_path / "missing"), "--key", key, capsys=capsys)
    assert status == 2 and "cannot read" in err


def test_pskc_with_assignments(ctx: Context, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assign = tmp_path / "owners.csv"
    assign.write_text("serial,user\nTOTP0001,alice@bench\n")
    status, out, _ = twofa("import", "pskc", str(FIXTURES / "privacyidea-lowercase.pskcxml"), "--psk",
                           "c457104623762a75c5ba3ca967d80af9", "--assign", str(assign), capsys=capsys)
    assert status == 0, out
    assert out.splitlines()[1].split()[:5] == ["key-1", "TOTP0001", "totp", "imported", "alice"]


def test_nothing_secret_is_printed_or_logged(
    ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any], push_keys: Any,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    odd_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # refused: too short
    path, key = pi_file([
        totp("TOTP0001"), totp("TOTP0002", otplen=8), totp("TOTP0003", otpkey=SEED_HEX[:-1] + "z"),
        sms("PISM0001"), sms("PISM0002", phone="+49 151 1234567890123"),
        push("PIPU0001ABCD"), push("PIPU0002ABCD", info_list={"public_key_smartphone": "AAAA" + SEED_HEX,
                                                               "private_key_server": pem_private(odd_key)}),
        totp("TOTP0001", otpkey=SEED_HEX),
    ])
    outputs = []
    for extra in (["--dry-run"], [], []):
        outputs += twofa("import", "privacyidea", str(path), "--key", key, *extra, capsys=capsys)[1:]
    wrong = pi_file([totp("TOTP0009")], name="other.pi")[1]
    outputs += twofa("import", "privacyidea", str(path), "--key", wrong, capsys=capsys)[1:]
    assign = tmp_path / "owners.csv"
    assign.write_text("TOTP0001,alice\n")
    for psk in ("c457104623762a75c5ba3ca967d80af9", "00" * 16):
        outputs += twofa("import", "pskc", str(FIXTURES / "privacyidea-lowercase.pskcxml"), "--psk", psk,
                         "--assign", str(assign), "--dry-run", capsys=capsys)[1:]

    phone, server = push_keys
    pem_body = re.sub(r"-----[^-]+-----|\s", "", pem_private(server))
    sensitive = Sensitive(
        # the seed in hex, base32 and as its bytes (RFC 4226's are ASCII); the number as written
        secrets={SEED_HEX, base64.b32encode(bytes.fromhex(SEED_HEX)).decode().rstrip("="), FBTOKEN,
                 bytes.fromhex(SEED_HEX).decode(), PHONE,
                 key, pem_body[100:160], pem_private(odd_key).splitlines()[3], "c457104623762a75c5ba3ca967d80af9"},
        phones={PHONE.replace(" ", ""), "+491511234567890123"},
    )
    assert_no_leaks(sensitive, logs=caplog.text, others={"cli output": outputs})
    assert any("imported" in o for o in outputs)  # the runs did report


@pytest.mark.parametrize("form", ["separate", "attached"])
def test_a_key_that_begins_with_a_dash_is_a_key(ctx: Context, pi_file: Callable[..., Any], form: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Fernet keys are URL-safe base64: one in 64 begins with "-"."""
    from cryptography.fernet import Fernet

    path, key = pi_file([totp("TOTP0001")])
    dashed = "-" + key[1:]
    path.write_bytes(Fernet(dashed).encrypt(Fernet(key).decrypt(path.read_bytes())))
    argv = ["--key", dashed] if form == "separate" else [f"--key={dashed}"]
    assert twofa("import", "privacyidea", str(path), *argv, capsys=capsys)[0] == 0
    assert count(ctx) == 1
