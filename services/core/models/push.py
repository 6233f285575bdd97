"""PUSH token state beside the generic token row, push challenges and fraud blocks.

The app's public key and the server key pair belong to one token; the nonce and the
rendered question/title belong to one login challenge (they are re-signed for polls,
so they are stored, as privacyIDEA 3.14 does). Rows go with their token or challenge
(ON DELETE CASCADE).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from services.core.plumbing.db import Base, UserIdStr, UtcDateTime


class PushToken(Base):
    __tablename__ = "push_tokens"

    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True
    )
    # Keyed hash of the one-time enrollment credential; NULL once used.
    credential_hash: Mapped[str | None] = mapped_column(String(64))
    app_public_key: Mapped[str | None] = mapped_column(Text)  # SPKI DER, base64
    server_key_enc: Mapped[str | None] = mapped_column(Text)  # PKCS#8 PEM, encrypted
    fbtoken_enc: Mapped[str | None] = mapped_column(Text)  # Firebase token, encrypted
    poll_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # FCM said UNREGISTERED: the app must send a new Firebase token; polling still works.
    fcm_unregistered: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[UtcDateTime | None]


class PushChallenge(Base):
    __tablename__ = "push_challenges"

    challenge_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True
    )
    token_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[UserIdStr]
    nonce: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(128))
    sslverify: Mapped[str] = mapped_column(String(1))
    options: Mapped[str | None] = mapped_column(String(64))  # presence options, comma-joined
    presence_answer: Mapped[str | None] = mapped_column(String(8))  # the option to show the user
    created_at: Mapped[UtcDateTime] = mapped_column(index=True)


class PushBlock(Base):
    """Pushes to this user are refused until ``blocked_until`` (a reported unknown trigger)."""

    __tablename__ = "push_blocks"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    blocked_until: Mapped[UtcDateTime]
    challenge_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reports: Mapped[int] = mapped_column(Integer, default=0)
