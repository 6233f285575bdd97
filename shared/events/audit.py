"""The audit log's own statements, for subscribers outside it."""

from typing import Annotated

from pydantic import AwareDatetime, Field, PositiveInt

from shared.envelope import EventData
from shared.registry import event

__all__ = ["AuditCheckpointSigned"]

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@event
class AuditCheckpointSigned(EventData):
    """The chain had ``hash`` at ``position``, signed with the Ed25519 key ``key_id``.

    Delivered to webhook subscribers, not appended to the chain it describes: a copy kept
    by a receiver is what later shows a cut tail (``twofa audit verify --checkpoints``).
    The signature covers the JCS form of ``{position, hash, signed_at}``.
    """

    TYPE = "audit.checkpoint_signed"
    VERSION = 1

    position: PositiveInt
    hash: Sha256Hex
    signed_at: AwareDatetime
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    signature: Annotated[str, Field(min_length=1, max_length=128)]
