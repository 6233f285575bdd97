"""Versions of challenge events that have been superseded; registered so that old messages
and audit entries still parse (and read forward through their upcasters).

The class keeps the name and docstring it was published under: the committed JSON Schema
of a released version never changes."""

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.envelope import EventData
from shared.events.challenge import FactorRef
from shared.registry import event
from shared.types import AreaName

__all__ = ["ChallengeCreatedV1", "ChallengeCreatedV2"]


@event
class ChallengeCreated(EventData):
    """A challenge was opened; ``factors`` are the tokens that may answer it."""

    TYPE = "challenge.created"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    factors: list[FactorRef]


ChallengeCreatedV1 = ChallengeCreated


@event
class ChallengeCreated(EventData):  # type: ignore[no-redef]
    """A challenge was opened; ``factors`` are the tokens that may answer it.

    ``purpose`` is ``login`` for a login to ``area``; a step-up names the one action its
    success allows, with ``target`` the token id (``delete_token``) or the area name
    (``set_area``); a step-up's ``area`` is ``step_up``.
    """

    TYPE = "challenge.created"
    VERSION = 2

    challenge_id: UUID
    area: AreaName
    factors: list[FactorRef]
    purpose: Literal["login", "delete_token", "set_area"]
    target: str | None = Field(default=None, max_length=64)


ChallengeCreatedV2 = ChallengeCreated
