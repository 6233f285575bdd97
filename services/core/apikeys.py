"""API keys: ``tfa_<id>_<secret>``; the id finds the row, the secret is checked against
its SHA-256 in constant time. Scopes: challenge, enroll, audit:read, admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.crypto import constant_time_equal, sha256_hex
from services.core.models import ApiKey

SCOPES = ("challenge", "enroll", "audit:read", "admin")
PREFIX = "tfa"


class InvalidScopes(ValueError):
    pass


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    plaintext: str  # shown once, never stored


def parse_scopes(raw: str | list[str]) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    scopes = tuple(sorted({s.strip() for s in items if s.strip()}))
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise InvalidScopes(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
    return scopes


def create_key(session: Session, name: str, scopes: tuple[str, ...], now: datetime) -> CreatedKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=key_id,
            name=name,
            secret_hash=sha256_hex(secret),
            scopes=",".join(scopes),
            created_at=now,
        )
    )
    return CreatedKey(key_id, name, scopes, f"{PREFIX}_{key_id}_{secret}")


def authenticate(session: Session, presented: str) -> ApiKey | None:
    """The live key matching ``presented``, or None. Same work for every wrong key shape."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        constant_time_equal(sha256_hex(presented), "0" * 64)
        return None
    _, key_id, secret = parts
    key = session.get(ApiKey, key_id)
    expected = key.secret_hash if key is not None else "0" * 64
    matches = constant_time_equal(sha256_hex(secret), expected)
    if key is None or not matches or key.revoked_at is not None:
        return None
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id: str, now: datetime) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = now
    return True
