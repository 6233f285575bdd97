"""Cryptography and encodings of the PUSH protocol (push-protocol.md §0).

Every signature, both directions, is RSASSA-PKCS1-v1_5 with SHA-256 over the UTF-8
sign string, sent as RFC 4648 base32 with ``=`` padding. The app sends its key as SPKI
base64 (URL-safe and a space for ``+`` tolerated); the server answers its own key as
PKCS#1 base64 with a ``\\n`` every 64 characters, since the app parses PKCS#1 only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.core.plumbing import canonical_json

MIN_APP_KEY_BITS = 2048
MAX_SIGNATURE_CHARS = 2048  # base32 of a 8192-bit signature is 1640 characters


class BadKey(ValueError):
    """The app's public key is not a usable RSA SPKI key."""


def generate_server_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):  # we only ever store RSA keys
        raise BadKey("stored server key is not RSA")
    return key


def sign_b32(key: rsa.RSAPrivateKey, message: str) -> str:
    raw = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b32encode(raw).decode("ascii")


def verify_b32(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    """True iff ``signature`` (padded base32) signs ``message``; malformed input is False."""
    if not signature or len(signature) > MAX_SIGNATURE_CHARS:
        return False
    try:
        raw = base64.b32decode(signature.strip(), casefold=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def parse_app_public_key(text: str) -> rsa.RSAPublicKey:
    """The app's ``pubkey``: SPKI DER in base64; URL-safe base64 and ' ' for '+' tolerated (§0)."""
    cleaned = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    cleaned = re.sub(r"\s+", "", cleaned)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        der = base64.b64decode(cleaned, validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        raise BadKey("pubkey is not a base64 SPKI public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadKey("pubkey is not an RSA key")
    if key.key_size < MIN_APP_KEY_BITS:
        raise BadKey(f"pubkey is shorter than {MIN_APP_KEY_BITS} bits")
    return key


def spki_b64(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def pkcs1_b64_lines(key: rsa.RSAPublicKey) -> str:
    """PKCS#1 ``RSAPublicKey`` DER as base64 with ``\\n`` every 64 characters, no PEM armour."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    b64 = base64.b64encode(der).decode("ascii")
    return "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))


def new_nonce() -> str:
    """base32 of 20 random bytes: 32 characters, no padding needed (§0)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def new_enrollment_credential() -> str:
    """20 random bytes as hex: 40 characters (§0)."""
    return secrets.token_hex(20)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The form Dart's ``Uri.parse(url).toString()`` gives (§4): lower-case scheme and host,
    no default port. The app rebuilds the sign string from that form, so we sign it too."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("TWOFA_PUBLIC_URL must be an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path}{query}"


def push_endpoint_url(public_url: str) -> str:
    return canonical_url(public_url.rstrip("/") + "/ttype/push")


def push_endpoint_path(public_url: str) -> str:
    return urlsplit(push_endpoint_url(public_url)).path


CAPABILITIES: dict[str, Any] = {"decline_reason": True}


def capabilities_json() -> str:
    """As privacyIDEA 3.14 sends it: Python ``json.dumps`` (with a space) (§4)."""
    return json.dumps(CAPABILITIES)


def capabilities_sign_string(nonce: str) -> str:
    """RFC 8785 (JCS) of ``{"capabilities": ..., "nonce": ...}`` (§0)."""
    signed = {"capabilities": CAPABILITIES, "nonce": nonce}
    return canonical_json.canonicalize(signed).decode("utf-8")


def parse_app_timestamp(value: str) -> datetime:
    """ISO 8601 from the app (``...Z``, an offset, or naive = UTC). Raises ValueError."""
    if not value or len(value) > 64:
        raise ValueError("bad timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
