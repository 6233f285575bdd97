"""Encryption at rest, keyed hashes and constant-time comparison.

Secrets (TOTP seeds, phone numbers, push server keys) are encrypted with a
MultiFernet built from ``TWOFA_ENCRYPTION_KEYS``: the first key encrypts, every
key decrypts, so keys rotate by prepending a new one and running
``twofa keys rotate``. Short codes are never stored, only keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core.plumbing.settings import Settings


class KeyringError(ValueError):
    pass


class Keyring:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise KeyringError("at least one encryption key is required")
        try:
            self._fernets = [Fernet(k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise KeyringError(
                "TWOFA_ENCRYPTION_KEYS holds a key that is not a Fernet key"
            ) from exc
        self._multi = MultiFernet(self._fernets)
        # One MAC key per encryption key, derived so that the raw key never doubles as a MAC key.
        self._mac_keys = [_derive_mac_key(k) for k in keys]

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise KeyringError("ciphertext does not decrypt under any configured key") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key (a no-op in meaning)."""
        return self._multi.rotate(token.encode()).decode()

    def mac(self, value: str) -> str:
        """Keyed hash under the newest key, hex."""
        return hmac.new(self._mac_keys[0], value.encode(), hashlib.sha256).hexdigest()

    def mac_matches(self, value: str, stored: str) -> bool:
        """True if ``stored`` is the keyed hash of ``value`` under any key (rotation-safe)."""
        found = False
        for key in self._mac_keys:
            candidate = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
            found |= hmac.compare_digest(candidate, stored)
        return found


def _derive_mac_key(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"twofa-mac-v1").derive(key)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keyring_from_settings(settings: Settings) -> Keyring:
    if settings.encryption_keys is not None:
        raw = [k.strip().encode() for k in settings.encryption_keys.get_secret_value().split(",")]
        return Keyring([k for k in raw if k])
    if not settings.is_dev:  # Settings already refuses this; kept as a second guard
        raise KeyringError("TWOFA_ENCRYPTION_KEYS is required outside dev")
    return Keyring([_dev_key(settings.var_dir / "dev-encryption.key")])


def _dev_key(path: Path) -> bytes:
    """A development key kept under var/ so restarts can still decrypt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key
