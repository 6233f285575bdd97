"""API keys: only a SHA-256 of the secret part is stored."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UtcDateTime


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public key id, in the key
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(128))  # comma-separated
    created_at: Mapped[UtcDateTime]
    revoked_at: Mapped[UtcDateTime | None]
    last_used_at: Mapped[UtcDateTime | None]

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)
