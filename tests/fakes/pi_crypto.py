"""Crypto and URI helpers of the privacyIDEA Authenticator emulation (push-protocol.md §0, §4).

* Every signature, both directions: RSASSA-PKCS1-v1_5 with SHA-256 over the UTF-8 sign string,
  encoded RFC 4648 base32, upper case, with ``=`` padding (§0).
* App key → server: SPKI DER, standard base64, no line breaks (§0, §2).
* Server key → app: PKCS#1 ``RSAPublicKey`` DER, base64 with ``\\n`` every 64 characters; the app
  deletes the ``\\n`` and parses PKCS#1 **only** — SPKI or PEM armour breaks it (§0).
* The challenge sign string uses Dart's ``Uri.parse(url).toString()`` (§4).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "b32_nonce",
    "dart_uri_to_string",
    "dart_utc_iso",
    "parse_pkcs1_b64",
    "pkcs1_b64",
    "pooled_key",
    "sign",
    "spki_b64",
    "verify",
]

_POOL_SIZE = 3
_pool: dict[int, list[rsa.RSAPrivateKey]] = {}
_next: dict[int, int] = {}
_pool_lock = threading.Lock()


def pooled_key(key_size: int = 4096) -> rsa.RSAPrivateKey:
    """An RSA key (e = 65537) from a per-process pool: at most 3 distinct keys per size.

    4096-bit generation takes 1-3 s, so the 4th token of a session reuses the 1st key, and so on.
    """
    with _pool_lock:
        keys = _pool.setdefault(key_size, [])
        if len(keys) < _POOL_SIZE:
            keys.append(rsa.generate_private_key(public_exponent=65537, key_size=key_size))
            return keys[-1]
        i = _next.get(key_size, 0)
        _next[key_size] = (i + 1) % _POOL_SIZE
        return keys[i]


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    """PKCS#1 v1.5 / SHA-256 over UTF-8, as padded upper-case base32 (§0)."""
    raw = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b32encode(raw).decode("ascii")


def verify(key: rsa.RSAPublicKey, message: str, signature_b32: str) -> bool:
    """True iff ``signature_b32`` (padded base32) is a valid signature of ``message``.

    Raises ``ValueError`` when the base32 itself is malformed, so callers can tell
    "malformed" (capabilities: treat as absent, §4) from "does not verify" (reject).
    """
    try:
        raw = base64.b32decode(signature_b32, casefold=False)
    except binascii.Error as exc:
        raise ValueError(f"bad base32 signature: {exc}") from exc
    try:
        key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def spki_b64(key: rsa.RSAPublicKey) -> str:
    """SPKI DER, standard base64, one line: the app's ``pubkey`` field (§2)."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def pkcs1_b64(key: rsa.RSAPublicKey) -> str:
    """PKCS#1 DER, base64 with ``\\n`` every 64 characters: the server's ``public_key`` (§0)."""
    b64 = base64.b64encode(key.public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.PKCS1)).decode()
    return "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))


def _der_tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER TLV at ``pos``; ValueError if truncated."""
    if pos + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("bad DER length")
        length, pos = int.from_bytes(buf[pos:pos + n], "big"), pos + n
    if pos + length > len(buf):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def parse_pkcs1_b64(text: str) -> rsa.RSAPublicKey:
    """Parse ``detail.public_key`` exactly like the app: delete ``\\n``, base64, PKCS#1 only.

    ``cryptography`` would also accept SPKI here, so the DER structure is checked by hand:
    ``SEQUENCE { INTEGER n, INTEGER e }`` and nothing else. Raises ``ValueError``.
    """
    try:
        der = base64.b64decode(text.replace("\n", ""), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"public_key is not base64: {exc}") from exc
    tag, start, end = _der_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("public_key is not a single DER SEQUENCE")
    ints: list[int] = []
    pos = start
    while pos < end:
        tag, s, e = _der_tlv(der, pos)
        if tag != 0x02:
            raise ValueError("public_key is not PKCS#1 RSAPublicKey (SPKI?)")
        ints.append(int.from_bytes(der[s:e], "big", signed=True))
        pos = e
    if len(ints) != 2 or ints[0] <= 0 or ints[1] <= 0:
        raise ValueError("public_key is not PKCS#1 RSAPublicKey {n, e}")
    return rsa.RSAPublicNumbers(e=ints[1], n=ints[0]).public_key()


_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):(?://(?P<auth>[^/?#]*))?(?P<rest>.*)$",
                  re.DOTALL)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def dart_uri_to_string(url: str) -> str:
    """Approximate Dart's ``Uri.parse(url).toString()`` (§4, open point in §11).

    Lower-cases scheme and host, drops the default port (80 for http, 443 for https) and an
    empty port; userinfo, path, query and fragment are kept as they are. A string without a
    scheme is returned unchanged. Raises ``ValueError`` for a non-numeric port (Dart throws).
    """
    m = _URI.match(url)
    if m is None:
        return url
    scheme, auth, rest = m["scheme"].lower(), m["auth"], m["rest"]
    if auth is None:
        return f"{scheme}:{rest}"
    userinfo, at, hostport = auth.rpartition("@")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise ValueError(f"bad IPv6 host in {url!r}")
        host, port = hostport[:close + 1], hostport[close + 1:]
    else:
        host, sep, port_only = hostport.partition(":")
        port = sep + port_only
    port = port.removeprefix(":")
    if port and not port.isdigit():
        raise ValueError(f"bad port in {url!r}")
    keep_port = bool(port) and int(port) != _DEFAULT_PORTS.get(scheme)
    return (f"{scheme}://{userinfo}{at}{host.lower()}"
            f"{':' + str(int(port)) if keep_port else ''}{rest}")


def dart_utc_iso(now: datetime | None = None) -> str:
    """Dart ``DateTime.now().toUtc().toIso8601String()``: ``2026-11-28T20:25:44.641474Z``.

    Dart writes milliseconds, plus microseconds only when they are not zero (§0, §6).
    """
    t = (now or datetime.now(UTC)).astimezone(UTC)
    ms, us = divmod(t.microsecond, 1000)
    frac = f"{ms:03d}{us:03d}" if us else f"{ms:03d}"
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


def b32_nonce(raw: bytes) -> str:
    """A nonce as the server makes it: base32 of 20 random bytes, 32 characters, no padding."""
    return base64.b32encode(raw).decode("ascii").rstrip("=")
