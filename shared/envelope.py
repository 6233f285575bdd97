"""The one envelope every event travels in, and the base class of every event payload.

An event on the wire is ``{event_id, type, version, occurred_at, correlation_id, user_id,
data}``. The envelope is validated first; ``data`` is validated afterwards by the model the
registry maps ``(type, version)`` to (see ``shared.registry``), so the envelope alone stays
stable however many event types exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.types import UserId

__all__ = ["ContractModel", "CorrelationId", "Envelope", "EventData", "EventType"]

EventType = Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$")]
"""``<family>.<past_tense_verb>``, e.g. ``challenge.verified``."""

CorrelationId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
]
"""Ties together every event caused by one request or one job (a request id, a task id)."""


class ContractModel(BaseModel):
    """Base of every model in a contract: immutable, and unknown fields are refused.

    Refusing extra fields makes a producer that drifts from the contract fail loudly at the
    boundary instead of smuggling data (or a secret) past the schema.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventData(ContractModel):
    """Base class of every event payload (the envelope's ``data``).

    Each subclass sets ``TYPE`` and ``VERSION`` and is registered with ``@event``. A payload
    change that is not backwards compatible is a new ``VERSION`` plus an upcaster from the
    previous one; fields are never renamed in place.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class Envelope(ContractModel):
    """The wire format of an event; ``data`` is validated separately by the registry.

    ``occurred_at`` must carry a timezone and is normalised to UTC (serialised as ISO 8601),
    so that every producer writes the same form.
    """

    event_id: UUID
    type: EventType
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    correlation_id: CorrelationId
    user_id: UserId | None
    data: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)
