"""TOTP arithmetic: RFC 6238 vectors, the window, drift and replay, the URI format."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime

import pytest

from services.core.factors.totp import otp

# RFC 6238 appendix B: seeds are the ASCII strings, 20/32/64 bytes long.
SEED_SHA1 = base64.b32encode(b"12345678901234567890").decode()
SEED_SHA256 = base64.b32encode(b"12345678901234567890123456789012").decode()
SEED_SHA512 = base64.b32encode(b"1234567890" * 6 + b"1234").decode()
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b_vectors(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for seed, algorithm, expected in (
        (SEED_SHA1, "SHA1", sha1),
        (SEED_SHA256, "SHA256", sha256),
        (SEED_SHA512, "SHA512", sha512),
    ):
        params = otp.TotpParams(digits=8, period=30, algorithm=algorithm)
        assert otp.code_at_step(seed, otp.time_step(t, 30), params) == expected


def test_codes_agree_with_oathtool() -> None:
    secret = otp.generate_secret()
    when = datetime(2026, 11, 28, 20, 0, 7, tzinfo=UTC)
    out = subprocess.run(
        ["oathtool", "--totp", "-b", "--now", "2026-11-28 20:00:07 UTC", secret],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    step = otp.time_step(when.timestamp(), 30)
    assert otp.code_at_step(secret, step, otp.TotpParams()) == out


P = otp.TotpParams()
NOW = 1_800_000_000.0
STEP = otp.time_step(NOW, 30)


def code(secret: str, step: int) -> str:
    return otp.code_at_step(secret, step, P)


def test_window_accepts_one_step_either_side_and_nothing_further() -> None:
    s = otp.generate_secret()
    for offset in (-1, 0, 1):
        assert otp.match_step(s, code(s, STEP + offset), unix_time=NOW, params=P, window=1) == STEP + offset
    for offset in (-2, 2):
        assert otp.match_step(s, code(s, STEP + offset), unix_time=NOW, params=P, window=1) is None


def test_a_wider_window_is_configurable() -> None:
    s = otp.generate_secret()
    assert otp.match_step(s, code(s, STEP - 2), unix_time=NOW, params=P, window=2) == STEP - 2


def test_drift_recentres_the_window() -> None:
    s = otp.generate_secret()
    assert otp.match_step(s, code(s, STEP + 2), unix_time=NOW, params=P, window=1, drift=2) == STEP + 2
    assert otp.match_step(s, code(s, STEP - 1), unix_time=NOW, params=P, window=1, drift=2) is None


def test_steps_at_or_before_the_last_accepted_never_match() -> None:
    s = otp.generate_secret()
    assert otp.match_step(s, code(s, STEP), unix_time=NOW, params=P, window=1, after_step=STEP) is None
    assert otp.match_step(s, code(s, STEP - 1), unix_time=NOW, params=P, window=1, after_step=STEP - 1) is None
    assert otp.match_step(s, code(s, STEP + 1), unix_time=NOW, params=P, window=1, after_step=STEP) == STEP + 1


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12345a", "１２３４５６"])
def test_malformed_codes_never_match(bad: str) -> None:
    assert otp.match_step(otp.generate_secret(), bad, unix_time=NOW, params=P, window=1) is None


def test_secret_is_160_bits_and_grouped_for_manual_entry() -> None:
    s = otp.generate_secret()
    assert len(s) == 32
    grouped = otp.group_secret(s)
    assert grouped.replace(" ", "") == s
    assert all(len(g) == 4 for g in grouped.split(" "))


def test_provisioning_uri_is_key_uri_format() -> None:
    uri = otp.provisioning_uri("ABC", issuer="Example 2FA", account="alice@example.com", params=P)
    assert uri == (
        "otpauth://totp/Example%202FA:alice@example.com?secret=ABC&issuer=Example%202FA"
        "&algorithm=SHA1&digits=6&period=30"
    )


def test_a_check_decodes_the_seed_once_for_its_whole_window(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = base64.b32decode

    def counting(s: str | bytes, casefold: bool = False, map01: bytes | None = None) -> bytes:
        decoded.append(str(s))
        return real(s, casefold, map01)

    monkeypatch.setattr(base64, "b32decode", counting)
    params = otp.TotpParams(digits=8)
    code = otp.code_at_step(SEED_SHA1, 1111111111 // 30 + 1, params)
    decoded.clear()
    step = otp.match_step(SEED_SHA1, code, unix_time=1111111111, params=params, window=2)
    assert step == 1111111111 // 30 + 1
    assert len(decoded) == 1
