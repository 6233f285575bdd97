"""Service accounts for ``POST /auth``: the login a plugin uses before it may call
``/validate/triggerchallenge``.

The password is generated (256 bits) and shown once; only its SHA-256 is stored, which is
enough for a secret of that strength, as for API keys. privacyIDEA answers such a login
with role ``admin``; that is the only role here.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.models import PiServiceAccount
from services.core.plumbing.crypto import constant_time_equal, sha256_hex

__all__ = [
    "PiServiceAccount",
    "CreatedAccount",
    "InvalidUsername",
    "authenticate",
    "create",
    "is_live",
    "list_accounts",
    "revoke",
]

# ASCII only, and no character that could turn a JWT payload's base64 into the
# URL-safe alphabet the Java plugins cannot decode.
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.]{0,63}$")


class InvalidUsername(ValueError):
    pass


@dataclass(frozen=True)
class CreatedAccount:
    username: str
    password: str  # shown once, never stored


def create(session: Session, username: str, now: datetime) -> CreatedAccount:
    if not USERNAME.match(username):
        raise InvalidUsername("a service account name is 1-64 letters, digits or dots")
    existing = session.get(PiServiceAccount, username)
    if existing is not None and existing.revoked_at is None:
        raise InvalidUsername(f"service account {username!r} exists; revoke it first")
    password = secrets.token_urlsafe(32)
    if existing is not None:
        existing.password_hash, existing.created_at, existing.revoked_at = (
            sha256_hex(password),
            now,
            None,
        )
    else:
        session.add(
            PiServiceAccount(username=username, password_hash=sha256_hex(password), created_at=now)
        )
    return CreatedAccount(username, password)


def authenticate(session: Session, username: str, password: str) -> bool:
    """True for a live account and its password; the same work for every wrong guess."""
    account = session.get(PiServiceAccount, username) if USERNAME.match(username) else None
    expected = account.password_hash if account is not None else "0" * 64
    matches = constant_time_equal(sha256_hex(password), expected)
    return account is not None and account.revoked_at is None and matches


def is_live(session: Session, username: str) -> bool:
    account = session.get(PiServiceAccount, username) if USERNAME.match(username) else None
    return account is not None and account.revoked_at is None


def list_accounts(session: Session) -> list[PiServiceAccount]:
    return list(session.scalars(select(PiServiceAccount).order_by(PiServiceAccount.created_at)))


def revoke(session: Session, username: str, now: datetime) -> bool:
    account = session.get(PiServiceAccount, username)
    if account is None or account.revoked_at is not None:
        return False
    account.revoked_at = now
    return True
