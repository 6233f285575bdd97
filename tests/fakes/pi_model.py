"""Data model of the privacyIDEA Authenticator emulation (push-protocol.md §1, §2, §4, §5).

Tokens, verified requests, the errors the app raises, and the challenge sign string.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from .pi_crypto import dart_uri_to_string

NO_FIREBASE_TOKEN = "no_firebase_token"  # §2: poll-only tokens (app ≥ 4.5)
APP_CAPABILITIES = ["decline_reason"]  # §2, §6, §7: app 4.8, sent unsigned as RFC 8785 JSON
DECLINE_REASONS = ("unknown_trigger", "cancelled")  # §5
REQUEST_LIFETIME_S = 120.0  # §4: the app drops a request 2 minutes after it arrives


class AppRejected(Exception):
    """The real app would refuse this (bad QR code, failed rollout, unverifiable challenge...)."""

    def __init__(self, reason: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.body = reason, status, body


class PollError(Exception):
    """A poll answered with a non-200 status (§6: 400/error 10, 403/error 303)."""

    def __init__(self, status: int, code: int | None, message: str | None) -> None:
        super().__init__(f"HTTP {status}, error {code}: {message}")
        self.status, self.code, self.message = status, code, message


class HttpLike(Protocol):
    def post(self, url: str, *, data: dict[str, str]) -> Any: ...
    def get(self, url: str, *, params: dict[str, str]) -> Any: ...


@dataclass
class AppToken:
    """A scanned PUSH token (§1); ``PiAuthenticatorApp.register`` fills in the key material."""

    serial: str
    label: str
    issuer: str
    url: str
    ttl_minutes: int
    enrollment_credential: str | None
    sslverify: bool
    poll_only: bool
    pin: bool = False
    image: str | None = None
    force_unlock: str | None = None
    scanned_at: float = field(default_factory=time.time)
    private_key: rsa.RSAPrivateKey | None = None
    server_public_key: rsa.RSAPublicKey | None = None
    fbtoken: str | None = None
    send_capabilities: bool = True

    @property
    def rolled_out(self) -> bool:
        return self.server_public_key is not None

    @property
    def deadline(self) -> float:
        """§1/§2: the app drops the token if step 2 has not happened within ``ttl`` minutes."""
        return self.scanned_at + 60 * self.ttl_minutes


@dataclass
class PushRequest:
    """A verified challenge (§4). ``options`` is set for presence ("choice") requests."""

    nonce: str
    serial: str
    question: str
    title: str
    url: str
    sslverify: bool
    options: list[str] | None
    display_code: str | None
    capabilities: dict[str, Any] | None
    decline_reason_supported: bool
    received_at: float
    token: AppToken = field(repr=False)

    @property
    def expires_at(self) -> float:
        return self.received_at + REQUEST_LIFETIME_S


def challenge_sign_string(data: Mapping[str, Any]) -> str:
    """§0/§4: ``nonce|uri|serial|question|title|sslverify`` (+ ``|options`` or ``|display_code``)
    with ``uri`` = Dart's ``Uri.parse(url).toString()``, exactly as the app rebuilds it."""
    s = "|".join([data["nonce"], dart_uri_to_string(data["url"]), data["serial"],
                  data["question"], data["title"], data["sslverify"]])
    if isinstance(data.get("require_presence"), str):
        s += "|" + data["require_presence"]  # the app joins split(",") with "," again
    elif isinstance(data.get("display_code"), str):
        s += "|" + data["display_code"]
    return s


def parse_bool(value: str | None, default: bool, name: str) -> bool:
    """QR booleans (§1): ``1``/``0``/``true``/``false`` in any case; AppRejected otherwise."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise AppRejected(f"{name}={value!r} is not a boolean")
