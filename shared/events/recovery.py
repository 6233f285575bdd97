"""Recovery codes: issued, used (removing tokens) or refused. The code itself never travels."""

from typing import Literal
from uuid import UUID

from pydantic import NonNegativeInt

from shared.envelope import EventData
from shared.registry import event

__all__ = ["RecoveryFailed", "RecoveryFailureReason", "RecoveryIssued", "RecoveryUsed"]

RecoveryFailureReason = Literal["invalid", "throttled", "none_issued"]


@event
class RecoveryIssued(EventData):
    """A new recovery code was issued (replacing any previous one)."""

    TYPE = "recovery.issued"
    VERSION = 1

    recovery_id: UUID


@event
class RecoveryUsed(EventData):
    """A recovery code was redeemed and ``tokens_removed`` tokens were deleted."""

    TYPE = "recovery.used"
    VERSION = 1

    recovery_id: UUID
    tokens_removed: NonNegativeInt


@event
class RecoveryFailed(EventData):
    """A recovery attempt was refused."""

    TYPE = "recovery.failed"
    VERSION = 1

    reason: RecoveryFailureReason
