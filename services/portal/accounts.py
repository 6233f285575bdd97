"""The demo first factor: portal accounts with argon2id-hashed passwords.

This is the place where a real portal plugs in its own sign-in (LDAP, an IdP, its
customer database): the rest of the portal only needs ``AccountStore.verify`` to say
"this user name and password are right". The table lives in the portal's own
database (``TWOFA_PORTAL_DATABASE_URL``, default ``var/portal.db``), never in the
API's, so the portal stays a plain HTTP client of the API.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, String, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

# The API's user_id rule, so every portal account is a valid twofa user id.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$")
MIN_PASSWORD = 8


class PortalBase(DeclarativeBase):
    """Separate metadata: these tables are not the API's and have no Alembic history."""


class PortalAccount(PortalBase):
    __tablename__ = "portal_accounts"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountError(ValueError):
    """A name or password that cannot be used (message safe to show)."""


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


class AccountStore:
    def __init__(self, url: str, hasher: PasswordHasher | None = None) -> None:
        self.engine: Engine = create_engine(url)
        PortalBase.metadata.create_all(self.engine)  # one table, created on first use
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._hasher = hasher or PasswordHasher()
        # Verified against when the name is unknown, so both cases cost the same time.
        self._dummy = self._hasher.hash("not a password of anyone")

    def add(self, name: str, password: str) -> None:
        if not NAME_PATTERN.match(name):
            raise AccountError(
                "names are 1-128 letters, digits or . _ @ + - (starting with a letter or digit)"
            )
        _check_password(password)
        with self._sessions.begin() as s:
            if s.get(PortalAccount, name) is not None:
                raise AccountError(f"the account {name!r} exists already")
            s.add(
                PortalAccount(
                    name=name,
                    password_hash=self._hasher.hash(password),
                    created_at=datetime.now(UTC),
                )
            )

    def verify(self, name: str, password: str) -> bool:
        with self._sessions() as s:
            stored = s.scalar(select(PortalAccount.password_hash).where(PortalAccount.name == name))
        try:
            ok = self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(ok) and stored is not None

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self._sessions.begin() as s:
            account = s.get(PortalAccount, name)
            if account is None:
                raise AccountError(f"there is no account {name!r}")
            account.password_hash = self._hasher.hash(password)

    def remove(self, name: str) -> bool:
        with self._sessions.begin() as s:
            account = s.get(PortalAccount, name)
            if account is None:
                return False
            s.delete(account)
            return True

    def names(self) -> list[str]:
        with self._sessions() as s:
            return list(s.scalars(select(PortalAccount.name).order_by(PortalAccount.name)))

    def accounts(self) -> list[PortalAccount]:
        with self._sessions() as s:
            return list(s.scalars(select(PortalAccount).order_by(PortalAccount.name)))

    def close(self) -> None:
        self.engine.dispose()
