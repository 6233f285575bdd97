"""Versions of challenge events that have been superseded; registered so that old messages
and audit entries still parse (and read forward through their upcasters).

The class keeps the name and docstring it was published under: the committed JSON Schema
of a released version never changes."""

from uuid import UUID

from shared.envelope import EventData
from shared.events.challenge import FactorRef
from shared.registry import event
from shared.types import AreaName

__all__ = ["ChallengeCreatedV1"]


@event
class ChallengeCreated(EventData):
    """A challenge was opened; ``factors`` are the tokens that may answer it."""

    TYPE = "challenge.created"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    factors: list[FactorRef]


ChallengeCreatedV1 = ChallengeCreated
