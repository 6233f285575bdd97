"""API keys: ``tfa_<id>_<secret>``; the id finds the row, the secret is checked against
its SHA-256 in constant time. Scopes: challenge, enroll, audit:read, admin."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.core.models import ApiKey
from services.core.plumbing.crypto import constant_time_equal, sha256_hex
from services.core.plumbing.db import read_only

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


@dataclass(frozen=True)
class KeySnapshot:
    """What a request needs of a verified key, detached from any session."""

    id: str
    name: str
    scope_set: frozenset[str]


class KeyCache:
    """Verified keys kept in process for ``ttl`` seconds, so a busy login service's requests
    do not each pay a database round trip. A lookup only reads (``read_only``): it runs on
    the API's event loop, which must never wait for SQLite's write lock.

    The secret is still checked against the stored SHA-256 on every request, in constant
    time; only the row is cached. A revoked key stops working within ``ttl`` seconds in
    every API process (the next lookup after expiry sees ``revoked_at``); unknown key ids
    are not cached, so a key created a moment ago works at once.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 1024) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._rows: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def authenticate(self, engine: Engine, presented: str) -> KeySnapshot | None:
        parts = presented.split("_", 2)
        key_id = parts[1] if len(parts) == 3 and parts[0] == PREFIX else None
        now = time.monotonic()
        cached = self._rows.get(key_id) if key_id else None
        if cached is None or now - cached[0] >= self.ttl:
            with read_only(engine) as conn, Session(conn) as session:
                key = authenticate(session, presented)
                if key is not None:
                    session.expunge(key)
            if key is None:
                with self._lock:
                    self._rows.pop(key_id or "", None)
                return None
            with self._lock:
                if len(self._rows) >= self.max_entries:
                    self._rows.clear()
                self._rows[key.id] = (now, key)
            return KeySnapshot(key.id, key.name, key.scope_set)
        key = cached[1]
        if (
            not constant_time_equal(sha256_hex(parts[2]), key.secret_hash)
            or key.revoked_at is not None
        ):
            return None
        return KeySnapshot(key.id, key.name, key.scope_set)
