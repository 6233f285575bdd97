"""The JWT ``POST /auth`` hands to a service account, and its check on the way back in.

Plugins treat it as opaque except for two things (pi-validate.md §3.3): they read the
integer ``exp`` to renew it in time, and the Java client decodes the payload with the
*standard* base64 alphabet, so the payload segment must never contain ``-`` or ``_``.
Claims are ASCII (the account name allows letters, digits and dots only), and the random
``nonce`` is drawn again until the segment is clean, which makes that a guarantee rather
than luck.

The signature is an HMAC under a key derived from ``TWOFA_ENCRYPTION_KEYS`` (the keyring's
MAC key with its own prefix), so rotation works as for every other keyed hash.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any

from services.core.plumbing.crypto import Keyring

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
_PURPOSE = "privacyidea-jwt\x00"
ROLE = "admin"


@dataclass(frozen=True)
class Claims:
    username: str
    realm: str
    role: str
    exp: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _sign(keyring: Keyring, signing_input: str) -> str:
    return _b64(bytes.fromhex(keyring.mac(_PURPOSE + signing_input)))


def issue(
    keyring: Keyring, username: str, realm: str, now: float, lifetime: int
) -> tuple[str, int]:
    """(the JWT, its ``exp``)."""
    exp = int(now) + lifetime
    while True:
        claims = {
            "username": username,
            "realm": realm,
            "nonce": secrets.token_hex(16),
            "role": ROLE,
            "authtype": "password",
            "exp": exp,
        }
        payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode())
        if "-" not in payload and "_" not in payload:
            break
    signing_input = f"{_HEADER}.{payload}"
    return f"{signing_input}.{_sign(keyring, signing_input)}", exp


def verify(keyring: Keyring, token: str, now: float) -> Claims | None:
    """The claims of a JWT this server issued and that has not expired, else None."""
    parts = token.strip().split(".")
    if len(parts) != 3 or len(token) > 2048:
        return None
    header, payload, signature = parts
    try:
        expected = _unb64(signature).hex()
        ok = keyring.mac_matches(_PURPOSE + f"{header}.{payload}", expected)
        claims: Any = json.loads(_unb64(payload)) if ok else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if header != _HEADER or not isinstance(claims, dict):
        return None
    exp, username = claims.get("exp"), claims.get("username")
    if not isinstance(exp, int) or exp <= now or not isinstance(username, str):
        return None
    return Claims(username, str(claims.get("realm", "")), str(claims.get("role", "")), exp)
