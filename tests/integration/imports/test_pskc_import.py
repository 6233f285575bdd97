"""``twofa import pskc``: RFC 6030 files, in the clear, with a pre-shared key or a password
(PBKDF2), privacyIDEA's lower-case ones too; owners from ``--assign``."""

from __future__ import annotations

import base64
from pathlib import Path

import pskc
import pytest
from sqlalchemy import select

from services.core.factors.totp import otp
from services.core.imports import pskc_file
from services.core.imports.records import ImportFileError, ImportRecord, import_records
from services.core.models import Token
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from tests.integration.imports.conftest import FIXTURES

RFC_PSK = "12345678901234567890123456789012"
PI_PSK = "c457104623762a75c5ba3ca967d80af9"
RFC_SEED = bytes.fromhex("3132333435363738393031323334353637383930")


def read(name: str, owners: dict[str, str] | None = None, **secret: str) -> list[ImportRecord]:
    return pskc_file.read((FIXTURES / name).read_bytes(), owners=owners or {}, **secret)


def imported(ctx: Context) -> dict[str, Token]:
    with ctx.sessions() as session:
        found = {t.serial or "": t for t in session.scalars(select(Token))}
        session.expunge_all()
    return found


@pytest.mark.parametrize("name,secret", [
    ("figure6.pskcxml", {"psk": RFC_PSK}),
    ("figure7.pskcxml", {"password": "qwerty"}),
])
def test_rfc6030_encrypted_examples_decrypt(name: str, secret: dict[str, str]) -> None:
    [record] = read(name, **secret)
    assert (record.serial, record.type, record.digits, record.secret) == ("987654321", "hotp", 8, RFC_SEED)


def test_rfc6030_hotp_keys_are_refused_by_type(ctx: Context) -> None:
    summary = import_records(ctx, read("figure6.pskcxml", {"987654321": "alice"}, psk=RFC_PSK), "pskc")
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("refused", "unknown token type 'hotp' (twofa imports push, sms, totp)")]
    assert imported(ctx) == {}


def test_rfc6030_bulk_example_reports_its_duplicate_serial(ctx: Context) -> None:
    summary = import_records(ctx, read("figure10.pskcxml"), "pskc")
    assert [(o.serial, o.reason.split(" (")[0]) for o in summary.outcomes] == [
        ("654321", "unknown token type 'hotp'"), ("123456", "unknown token type 'hotp'"),
        ("9999999", "unknown token type 'hotp'"), ("9999999", "duplicate serial")]


@pytest.mark.parametrize("name,secret", [
    ("figure6.pskcxml", {}),
    ("figure6.pskcxml", {"psk": PI_PSK}),
    ("figure7.pskcxml", {"password": "azerty"}),
    ("privacyidea-lowercase.pskcxml", {"psk": RFC_PSK}),
])
def test_a_wrong_or_missing_key_imports_nothing(name: str, secret: dict[str, str]) -> None:
    with pytest.raises(ImportFileError, match="encrypted|do not decrypt"):
        read(name, **secret)


def test_privacyideas_lower_case_export_imports(ctx: Context, clock: FrozenClock) -> None:
    records = read("privacyidea-lowercase.pskcxml", {"TOTP0001": "alice"}, psk=PI_PSK)
    summary = import_records(ctx, records, "pskc")
    assert [(o.serial, o.status, o.user_id) for o in summary.outcomes] == [("TOTP0001", "imported", "alice")]
    token = imported(ctx)["TOTP0001"]
    assert (token.type, token.description, token.state) == ("totp", "Pixel", "active")
    assert ctx.keyring.decrypt(token.secret_enc or "") == base64.b32encode(RFC_SEED).decode()


@pytest.mark.parametrize("seconds,steps", [("-17.0", 0), ("-45.0", -1), ("61.0", 2)])
def test_privacyideas_drift_in_seconds_becomes_whole_steps(seconds: str, steps: int) -> None:
    data = (FIXTURES / "privacyidea-lowercase.pskcxml").read_bytes().replace(
        b"<plainvalue>0.0</plainvalue>", seconds.encode().join([b"<plainvalue>", b"</plainvalue>"]))
    [record] = pskc_file.read(data, owners={}, psk=PI_PSK)
    assert record.drift_seconds == steps * 30


def test_draft_profile_totp_keeps_its_drift(ctx: Context) -> None:
    [record] = read("draft-profiles-totp.pskcxml", {"987654323": "bob"})
    assert (record.type, record.digits, record.period, record.drift_seconds) == ("totp", 6, 30, 120.0)
    import_records(ctx, [record], "pskc")
    assert imported(ctx)["987654323"].drift == 4


def _pbkdf2_file(tmp_path: Path, password: str) -> bytes:
    """A TOTP key in a password-protected file, as a vendor's tool writes one."""
    container = pskc.PSKC()
    container.add_key(id="VND0001", serial="VND0001", secret=RFC_SEED, algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp",
                      response_length=6, time_interval=30, manufacturer="Vendor", friendly_name="Hard token")
    container.encryption.setup_pbkdf2(password, iterations=2000)
    path = tmp_path / "vendor.pskcxml"
    container.write(str(path))
    return path.read_bytes()


def test_a_password_protected_file_imports_with_its_password(
    ctx: Context, clock: FrozenClock, tmp_path: Path,
) -> None:
    data = _pbkdf2_file(tmp_path, "correct horse")
    assert RFC_SEED not in data and base64.b64encode(RFC_SEED) not in data
    with pytest.raises(ImportFileError, match="do not decrypt"):
        pskc_file.read(data, owners={}, password="wrong horse")

    records = pskc_file.read(data, owners={"VND0001": "carol"}, password="correct horse")
    summary = import_records(ctx, records, "pskc")

    assert [(o.serial, o.status, o.user_id) for o in summary.outcomes] == [("VND0001", "imported", "carol")]
    token = imported(ctx)["VND0001"]
    assert token.description == "Hard token"
    secret = ctx.keyring.decrypt(token.secret_enc or "")
    now = clock.now().timestamp()
    assert otp.match_step(secret, otp.code_at_step(base64.b32encode(RFC_SEED).decode(), otp.time_step(now, 30),
                                                   otp.TotpParams()),
                          unix_time=now, params=otp.TotpParams(), window=0) is not None


@pytest.mark.parametrize("data,why", [
    (b"<KeyContainer", "not XML"),
    (b"<html><body>hello</body></html>", "not a PSKC key container"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DTD"),
])
def test_malformed_files_are_refused_whole(data: bytes, why: str) -> None:
    with pytest.raises(ImportFileError, match=why):
        pskc_file.read(data, owners={})


def test_a_truncated_file_is_refused_whole() -> None:
    data = (FIXTURES / "privacyidea-lowercase.pskcxml").read_bytes()
    with pytest.raises(ImportFileError, match="truncated"):
        pskc_file.read(data[: len(data) // 2], owners={}, psk=PI_PSK)


def test_assignments() -> None:
    assert pskc_file.read_assignments("serial,user\nTOTP0001, alice\n# a comment\n\nTOTP0002,bob@bench\n") == {
        "TOTP0001": "alice", "TOTP0002": "bob@bench"}
    with pytest.raises(ImportFileError, match="line 2: serial 'A' is assigned on line 1"):
        pskc_file.read_assignments("A,alice\nA,bob\n")
    with pytest.raises(ImportFileError, match="line 1: expected serial,user"):
        pskc_file.read_assignments("A\n")


def test_keys_without_an_owner_are_refused(ctx: Context) -> None:
    summary = import_records(ctx, read("privacyidea-lowercase.pskcxml", psk=PI_PSK), "pskc")
    assert [(o.status, o.reason.split(" (")[0]) for o in summary.outcomes] == [("refused", "no owner in the file")]
