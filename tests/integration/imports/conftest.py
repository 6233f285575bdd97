"""An import's world: realm ``bench`` mapped to ``sso``, and privacyIDEA export files built
as ``pi-tokenjanitor … export --format pi`` writes them (a Fernet token around the JSON list)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.core.plumbing.settings import Settings
from tests.conftest import make_settings

FIXTURES = Path(__file__).parent / "fixtures"
SEED_HEX = "3132333435363738393031323334353637383930"  # RFC 4226's
PHONE = "+49 151 12345678"
FBTOKEN = "fcm-registration-token-of-the-phone"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, pi_realms="bench=sso")


def entry(serial: str, type_: str, login: str | None = "alice", **fields: Any) -> dict[str, Any]:
    """One token as privacyIDEA 3.14's ``TokenClass.export_token`` gives it."""
    info = fields.pop("info_list", {})
    out: dict[str, Any] = {
        "serial": serial, "type": type_, "otpkey": SEED_HEX, "description": f"{type_} of {login}",
        "otplen": 6, "maxfail": 10, "failcount": 0, "counter": 0, "window": 10, "active": True,
        "revoked": False, "locked": False, "rollout_state": "enrolled", "_hashed_pin": "",
        "info_list": {"tokenkind": "software", "hashlib": "sha1", **info}, "issuer": "privacyIDEA",
    }
    if login is not None:
        out["user"] = {"login": login, "realm": "bench", "resolver": "benchusers", "uid": "1000",
                       "custom_attributes": {}}
    out.update(fields)
    return out


def totp(serial: str, login: str | None = "alice", counter: int = 0, **fields: Any) -> dict[str, Any]:
    info = {"timeStep": "30", "timeShift": "0.0", "timeWindow": "180", **fields.pop("info_list", {})}
    return entry(serial, "totp", login, counter=counter, info_list=info, **fields)


def sms(serial: str, login: str = "bob", phone: str = PHONE, **fields: Any) -> dict[str, Any]:
    return entry(serial, "sms", login, info_list={"phone": phone, **fields.pop("info_list", {})}, **fields)


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def spki(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(der).decode()


@pytest.fixture(scope="session")
def push_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """(the phone's key, the server's key), 2048 bits: quick, and what the app may use."""
    return (rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def push(push_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> Callable[..., dict[str, Any]]:
    phone, server = push_keys

    def make(serial: str, login: str = "carol", fbtoken: str | None = FBTOKEN, **fields: Any) -> dict[str, Any]:
        info = {"public_key_smartphone": spki(phone.public_key()), "private_key_server": pem_private(server),
                "public_key_server": "-----BEGIN PUBLIC KEY-----…",
                "push_firebase_configuration": "fcm" if fbtoken else "poll only"}
        if fbtoken:
            info["firebase_token"] = fbtoken
        if "info_list" in fields:
            info = fields.pop("info_list")
        return entry(serial, "push", login, info_list=info, **fields)

    return make


@pytest.fixture
def pi_file(tmp_path: Path) -> Callable[[list[Any]], tuple[Path, str]]:
    """Write ``entries`` as an encrypted export; returns (path, key)."""

    def write(entries: list[Any], name: str = "tokens.pi") -> tuple[Path, str]:
        key = Fernet.generate_key().decode()
        path = tmp_path / name
        path.write_bytes(Fernet(key).encrypt(json.dumps(entries, indent=2).encode()))
        return path, key

    return write
