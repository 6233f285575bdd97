"""Second-factor challenges for a protected area, from creation to outcome."""

from typing import Any, Literal
from uuid import UUID

from pydantic import Field, NonNegativeInt

from shared.envelope import ContractModel, EventData
from shared.registry import event, upcaster
from shared.types import AreaName, TokenType

__all__ = [
    "ChallengeApproved",
    "ChallengeCovered",
    "ChallengeCreated",
    "ChallengeDeclined",
    "ChallengeExpired",
    "ChallengeFactorSelected",
    "ChallengeFailed",
    "ChallengeNotRequired",
    "ChallengeVerified",
    "FactorRef",
]


class FactorRef(ContractModel):
    """A token the user may answer a challenge with."""

    token_id: UUID
    token_type: TokenType


ChallengePurpose = Literal["login", "delete_token", "set_area", "set_contact"]
"""What a challenge's success allows: a login to ``area``, or one step-up action."""


@event
class ChallengeCreated(EventData):
    """A challenge was opened; ``factors`` are the tokens that may answer it.

    ``purpose`` is ``login`` for a login to ``area``; a step-up names the one action its
    success allows, with ``target`` the token id (``delete_token``), the area name
    (``set_area``) or the contact channel, ``email`` (``set_contact``); a step-up's ``area``
    is ``step_up``.
    """

    TYPE = "challenge.created"
    VERSION = 3

    challenge_id: UUID
    area: AreaName
    factors: list[FactorRef]
    purpose: ChallengePurpose
    target: str | None = Field(default=None, max_length=64)


@upcaster("challenge.created", 1)
def _created_v1_was_a_login(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "purpose": "login", "target": None}


@upcaster("challenge.created", 2)
def _created_v2_is_a_subset(data: dict[str, Any]) -> dict[str, Any]:
    return data


@event
class ChallengeNotRequired(EventData):
    """The area is not protected for this user: no challenge was needed."""

    TYPE = "challenge.not_required"
    VERSION = 1

    area: AreaName


@event
class ChallengeFactorSelected(EventData):
    """The user chose which token answers the challenge (an SMS or a push may follow)."""

    TYPE = "challenge.factor_selected"
    VERSION = 1

    challenge_id: UUID
    token_id: UUID
    token_type: TokenType


@event
class ChallengeVerified(EventData):
    """A valid code answered the challenge."""

    TYPE = "challenge.verified"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    token_id: UUID
    token_type: TokenType


@event
class ChallengeCovered(EventData):
    """The answer to another login challenge of the same user, for another area, counted
    for this one too: one factor answer covers the areas a sign-in needs at once.

    ``by_challenge_id`` is the challenge that was answered (its own ``challenge.verified``
    or ``challenge.approved`` names the code or the push); ``token_id`` answered it.
    """

    TYPE = "challenge.covered"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    token_id: UUID
    token_type: TokenType
    by_challenge_id: UUID


@event
class ChallengeFailed(EventData):
    """An answer was refused or the challenge could not proceed.

    ``token_id`` and ``token_type`` are null when no factor had been chosen yet.
    """

    TYPE = "challenge.failed"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    token_id: UUID | None
    token_type: TokenType | None
    reason: Literal["invalid_code", "exhausted", "expired", "throttled", "undeliverable"]
    attempts_left: NonNegativeInt


@event
class ChallengeApproved(EventData):
    """The user approved a push challenge on the device."""

    TYPE = "challenge.approved"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    token_id: UUID
    token_type: TokenType


@event
class ChallengeDeclined(EventData):
    """The user declined a push challenge, cancelled it, or did not recognise it."""

    TYPE = "challenge.declined"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
    token_id: UUID
    token_type: TokenType
    reason: Literal["declined", "cancelled", "unknown_trigger"]


@event
class ChallengeExpired(EventData):
    """The challenge was not answered in time."""

    TYPE = "challenge.expired"
    VERSION = 1

    challenge_id: UUID
    area: AreaName
