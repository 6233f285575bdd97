"""Life of an enrolled token: deleted, locked, or a failed verification."""

from typing import Literal
from uuid import UUID

from pydantic import NonNegativeInt

from shared.envelope import EventData
from shared.registry import event
from shared.types import TokenType

__all__ = ["TokenDeleted", "TokenLocked", "TokenUnlocked", "TokenVerificationFailed"]


@event
class TokenDeleted(EventData):
    """A token was removed by its user, by a recovery, or because enrollment expired."""

    TYPE = "token.deleted"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    reason: Literal["user", "recovery", "enrollment_expired"]


@event
class TokenLocked(EventData):
    """Too many consecutive failures: the token refuses codes until unlocked."""

    TYPE = "token.locked"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    consecutive_failures: NonNegativeInt


@event
class TokenUnlocked(EventData):
    """An administrator cleared the token's failure count and back-off, and its lock if any."""

    TYPE = "token.unlocked"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    was_locked: bool


@event
class TokenVerificationFailed(EventData):
    """A code was refused; ``backoff_seconds`` is the wait before the next attempt counts."""

    TYPE = "token.verification_failed"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    purpose: Literal["delete", "step_up", "activate", "confirm", "login"]
    consecutive_failures: NonNegativeInt
    backoff_seconds: NonNegativeInt
