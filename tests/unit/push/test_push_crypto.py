"""Protocol crypto and encodings (push-protocol.md §0) against the emulated app's own code."""

from __future__ import annotations

import base64

import pytest

from services.core.factors.push import crypto
from services.core.factors.push.enrollment import enrollment_url
from tests.fakes.pi_crypto import dart_uri_to_string, parse_pkcs1_b64, pooled_key, sign, spki_b64, verify


@pytest.mark.parametrize("raw", [
    "HTTPS://Auth.Example.COM:443/2fa", "http://Host:80", "http://host:8080/x/", "https://[::1]:443/p",
    "http://127.0.0.1:8000",
])
def test_canonical_url_matches_darts_uri_to_string(raw):
    url = crypto.push_endpoint_url(raw)
    assert dart_uri_to_string(url) == url
    assert url.endswith("/ttype/push") and "//ttype" not in url


def test_canonical_url_refuses_non_http():
    with pytest.raises(ValueError):
        crypto.canonical_url("ftp://host/")


def test_signatures_interoperate_both_ways():
    key = pooled_key(2048)
    sig = crypto.sign_b32(key, "n|s|x")
    assert sig.endswith("=") or len(sig) % 8 == 0
    assert sig == sig.upper() and verify(key.public_key(), "n|s|x", sig)
    assert crypto.verify_b32(key.public_key(), "a|b", sign(key, "a|b"))
    assert not crypto.verify_b32(key.public_key(), "a|c", sign(key, "a|b"))
    assert not crypto.verify_b32(key.public_key(), "a|b", "")
    assert not crypto.verify_b32(key.public_key(), "a|b", "!!!")


def test_server_key_export_is_pkcs1_that_the_app_parses():
    key = crypto.generate_server_key(2048)
    text = crypto.pkcs1_b64_lines(key.public_key())
    assert "BEGIN" not in text and all(len(x) == 64 for x in text.split("\n")[:-1])
    assert parse_pkcs1_b64(text).public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("mangle", [
    lambda s: s, lambda s: s.replace("+", " "), lambda s: s.replace("+", "-").replace("/", "_"),
    lambda s: s.rstrip("="),
])
def test_app_key_parsing_tolerates_url_safe_and_spaces(mangle):
    key = pooled_key(2048).public_key()
    parsed = crypto.parse_app_public_key(mangle(spki_b64(key)))
    assert parsed.public_numbers() == key.public_numbers()


def test_app_key_must_be_rsa_spki_of_at_least_2048_bits():
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives import serialization

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    ecdsa = ec.generate_private_key(ec.SECP256R1()).public_key()
    for k in (small, ecdsa):
        der = k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(crypto.BadKey):
            crypto.parse_app_public_key(base64.b64encode(der).decode())
    with pytest.raises(crypto.BadKey):
        crypto.parse_app_public_key("not base64 at all ***")


def test_nonce_and_credential_shapes():
    nonce = crypto.new_nonce()
    assert len(nonce) == 32 and "=" not in nonce and base64.b32decode(nonce)
    cred = crypto.new_enrollment_credential()
    assert len(cred) == 40 and int(cred, 16) >= 0


def test_capabilities_sign_string_is_jcs():
    assert crypto.capabilities_sign_string("N") == '{"capabilities":{"decline_reason":true},"nonce":"N"}'
    assert crypto.capabilities_json() == '{"decline_reason": true}'


def test_enrollment_url_matches_privacyidea_314_verbatim():
    url = enrollment_url(serial="PIPU0000C0B9", push_url="http://127.0.0.1:5002/ttype/push", ttl_minutes=10,
                         issuer="privacyIDEA", credential="ad3cb103648d9eb4b876419d9855b14d51129b5f",
                         sslverify=False, poll_only=True)
    assert url == ("otpauth://pipush/PIPU0000C0B9?url=http%3A//127.0.0.1%3A5002/ttype/push&ttl=10"
                   "&issuer=privacyIDEA&enrollment_credential=ad3cb103648d9eb4b876419d9855b14d51129b5f"
                   "&v=1&serial=PIPU0000C0B9&sslverify=0&poll_only=True")


@pytest.mark.parametrize("ts", ["2026-11-28T20:25:44.641474Z", "2026-11-28T22:25:44.641+02:00",
                                "2026-11-28T20:25:44.641"])
def test_app_timestamps_parse_to_the_same_instant(ts):
    parsed = crypto.parse_app_timestamp(ts)
    assert parsed.utcoffset() is not None
    from datetime import UTC

    assert parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") == "2026-11-28 20:25:44"
