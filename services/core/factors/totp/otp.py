"""TOTP (RFC 6238) as pure functions: secret, provisioning URI, step-aware verification.

Verification returns the matched time step rather than a bool, so the caller can
refuse every step at or before the last accepted one (single use) and remember the
clock offset it saw (drift).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

import pyotp

SECRET_BYTES = 20  # 160 bits, RFC 4226 recommendation


class _TOTP(pyotp.TOTP):
    # pyotp 2.12 refuses seeds under 112 bits; ours are 160, but RFC test seeds are not.
    min_secret_length_bits = 80

    _decoded: bytes | None = None

    def byte_secret(self) -> bytes:
        # pyotp decodes the base32 seed anew for every code, and a check computes one per
        # step of its window: decoded once (and checked once) per instance instead.
        if self._decoded is None:
            self._decoded = super().byte_secret()
        return self._decoded


ALGORITHMS = ("SHA1", "SHA256", "SHA512")


@dataclass(frozen=True)
class TotpParams:
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def __post_init__(self) -> None:
        if not 6 <= self.digits <= 8 or not 10 <= self.period <= 120:
            raise ValueError(f"unsupported TOTP: {self.digits} digits, {self.period} s")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported TOTP algorithm {self.algorithm!r}")

    def stored(self) -> str:
        """The form kept in ``tokens.totp_params``."""
        return f"{self.digits}/{self.period}/{self.algorithm}"

    @classmethod
    def parse(cls, stored: str) -> TotpParams:
        digits, period, algorithm = stored.split("/")
        return cls(int(digits), int(period), algorithm)


def generate_secret() -> str:
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def group_secret(secret: str, size: int = 4) -> str:
    """The seed in groups of four for manual entry: ``ABCD EFGH …``."""
    return " ".join(secret[i : i + size] for i in range(0, len(secret), size))


def provisioning_uri(secret: str, *, issuer: str, account: str, params: TotpParams) -> str:
    """Key Uri Format: ``otpauth://totp/Issuer:account?secret=…&issuer=…``."""
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    query = (
        f"secret={secret}&issuer={quote(issuer, safe='')}&algorithm={params.algorithm}"
        f"&digits={params.digits}&period={params.period}"
    )
    return f"otpauth://totp/{label}?{query}"


def code_at_step(secret: str, step: int, params: TotpParams) -> str:
    return _totp(secret, params).generate_otp(step)


def _totp(secret: str, params: TotpParams) -> _TOTP:
    return _TOTP(secret, digits=params.digits, interval=params.period, digest=_digest(params))


def time_step(unix_time: float, period: int) -> int:
    return int(unix_time // period)


def match_step(
    secret: str,
    code: str,
    *,
    unix_time: float,
    params: TotpParams,
    window: int,
    drift: int = 0,
    after_step: int | None = None,
) -> int | None:
    """The step in ``now+drift±window`` whose code equals ``code``, else None.

    Steps at or before ``after_step`` never match (replay). Every candidate is
    compared in constant time and the loop does not stop early, so timing tells
    nothing about which step matched.
    """
    # isascii first: "١٢٣٤٥٦".isdigit() is True, and compare_digest refuses non-ASCII str.
    if len(code) != params.digits or not (code.isascii() and code.isdigit()):
        return None
    centre = time_step(unix_time, params.period) + drift
    totp = _totp(secret, params)
    found: int | None = None
    for step in range(centre - window, centre + window + 1):
        if after_step is not None and step <= after_step:
            continue
        if (
            hmac.compare_digest(totp.generate_otp(step).encode(), code.encode())
            and found is None
        ):
            found = step
    return found


def _digest(params: TotpParams):  # type: ignore[no-untyped-def]
    import hashlib

    return {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[
        params.algorithm
    ]
