"""The Ed25519 key that signs audit checkpoints.

``TWOFA_AUDIT_SIGNING_KEY`` holds the private key, either as base64 of the raw
32-byte seed or as a PEM (PKCS#8) block. In dev a key is generated once and kept
under ``var/`` (like the dev encryption key), so checkpoints still verify after a
restart; outside dev Settings refuses to start without one.

What is signed is the JCS canonical JSON of ``{position, hash, signed_at}``, so a
checkpoint can be re-checked by anyone holding the public key, with any JSON library.
The public key is published as PEM (``twofa keys audit-public-key``,
``GET /v1/audit/public-key``); verifying needs nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.core.plumbing import canonical_json
from services.core.plumbing.clock import as_utc
from services.core.plumbing.settings import Settings

DEV_KEY_FILE = "dev-audit-signing.key"


class SigningKeyError(ValueError):
    pass


def checkpoint_message(position: int, hash_: str, signed_at: datetime) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return canonical_json.canonicalize(
        {"position": position, "hash": hash_, "signed_at": as_utc(signed_at).isoformat()}
    )


@dataclass(frozen=True)
class CheckpointVerifier:
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return hashlib.sha256(raw).hexdigest()[:16]

    def public_pem(self) -> str:
        """The key as a SubjectPublicKeyInfo PEM block: what auditors are given."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verify(self, position: int, hash_: str, signed_at: datetime, signature: str) -> bool:
        try:
            sig = base64.b64decode(signature, validate=True)
            self.public_key.verify(sig, checkpoint_message(position, hash_, signed_at))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@dataclass(frozen=True)
class CheckpointSigner:
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> CheckpointVerifier:
        return CheckpointVerifier(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    def sign(self, position: int, hash_: str, signed_at: datetime) -> str:
        sig = self.private_key.sign(checkpoint_message(position, hash_, signed_at))
        return base64.b64encode(sig).decode()

    def __repr__(self) -> str:  # never print the key
        return f"CheckpointSigner(key_id={self.key_id})"


def parse_private_key(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError("TWOFA_AUDIT_SIGNING_KEY is not a readable PEM key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError("TWOFA_AUDIT_SIGNING_KEY must be an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SigningKeyError("TWOFA_AUDIT_SIGNING_KEY is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise SigningKeyError("TWOFA_AUDIT_SIGNING_KEY must decode to 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def parse_public_key(text: str) -> CheckpointVerifier:
    """A published public key: a PEM block, or base64 of the raw 32 bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError) as exc:
            raise SigningKeyError("not a readable PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError("the audit public key must be an Ed25519 key")
        return CheckpointVerifier(key)
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SigningKeyError("the audit public key is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise SigningKeyError("the audit public key must decode to 32 bytes")
    return CheckpointVerifier(Ed25519PublicKey.from_public_bytes(raw))


def generate_key_b64() -> str:
    """A fresh key in the base64 form ``TWOFA_AUDIT_SIGNING_KEY`` accepts."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def signer_from_settings(settings: Settings, *, create: bool = True) -> CheckpointSigner:
    """The service's signer. In dev the key is generated under ``var/`` on first use;
    ``create=False`` (the operator's commands) refuses instead, so a command run from
    another folder never signs with, or publishes, a key the service does not have."""
    if settings.audit_signing_key is not None:
        return CheckpointSigner(parse_private_key(settings.audit_signing_key.get_secret_value()))
    if not settings.is_dev:  # Settings already refuses this; kept as a second guard
        raise SigningKeyError("TWOFA_AUDIT_SIGNING_KEY is required outside dev")
    path = settings.var_dir / DEV_KEY_FILE
    if not create and not path.is_file():
        raise SigningKeyError(
            f"no audit signing key: TWOFA_AUDIT_SIGNING_KEY is not set and {path} does not exist"
        )
    return CheckpointSigner(parse_private_key(_dev_key(path)))


def _dev_key(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may have created it and not written it yet
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.02)
        raise SigningKeyError(f"{path} is empty") from None
    key = generate_key_b64()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
