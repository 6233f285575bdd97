"""The checkpoint signing key: accepted forms, the dev key, refusal outside dev."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.audit.signing import (
    CheckpointSigner,
    SigningKeyError,
    generate_key_b64,
    parse_private_key,
    signer_from_settings,
)
from services.core.plumbing.settings import Settings
from tests.conftest import T0, make_settings


def test_base64_and_pem_forms_give_the_same_key():
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    a = CheckpointSigner(parse_private_key(base64.b64encode(raw).decode()))
    b = CheckpointSigner(parse_private_key(pem.decode()))
    assert a.key_id == b.key_id


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode(), "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"])
def test_malformed_keys_are_refused(bad):
    with pytest.raises(SigningKeyError):
        parse_private_key(bad)


def test_a_signature_covers_position_hash_and_time():
    signer = CheckpointSigner(parse_private_key(generate_key_b64()))
    sig = signer.sign(7, "a" * 64, T0)
    v = signer.verifier
    assert v.verify(7, "a" * 64, T0, sig)
    assert not v.verify(8, "a" * 64, T0, sig)
    assert not v.verify(7, "b" * 64, T0, sig)
    assert not v.verify(7, "a" * 64, T0.replace(second=1), sig)
    assert not v.verify(7, "a" * 64, T0, "garbage")
    assert "key_id" in repr(signer) and generate_key_b64()[:8] not in repr(signer)


def test_the_dev_key_is_generated_once_and_kept(tmp_path):
    s = make_settings(tmp_path, "sqlite://")
    first, again = signer_from_settings(s), signer_from_settings(s)
    assert first.key_id == again.key_id
    assert (tmp_path / "var" / "dev-audit-signing.key").stat().st_mode & 0o077 == 0


def test_outside_dev_the_key_is_required():
    with pytest.raises(ValueError, match="TWOFA_AUDIT_SIGNING_KEY"):
        Settings(env="production", encryption_keys="x", sms_provider="twilio", push_provider="fcm", broker_url="redis://h")
