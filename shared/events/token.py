"""Life of an enrolled token: imported, deleted, locked, or a failed verification."""

from typing import Literal
from uuid import UUID

from pydantic import Field, NonNegativeInt

from shared.envelope import EventData
from shared.registry import event
from shared.types import TokenType

__all__ = [
    "TokenDeleted",
    "TokenImported",
    "TokenLocked",
    "TokenUnlocked",
    "TokenVerificationFailed",
]


@event
class TokenImported(EventData):
    """A token moved from another server (``twofa import``), usable at once: no enrollment.

    ``serial`` is the token's serial on the server it came from, kept by twofa; ``state``
    is ``locked`` when it was locked there. The seed, number or keys are never part of it.
    """

    TYPE = "token.imported"
    VERSION = 1

    token_id: UUID
    token_type: TokenType
    serial: str = Field(min_length=1, max_length=32)
    source: Literal["privacyidea", "pskc"]
    state: Literal["active", "locked"]


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
