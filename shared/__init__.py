"""Event contracts shared by the API and the workers.

Importing ``shared`` (or any module in it) registers every event model in
``shared.registry.default_registry``. Producers call ``new_event``; consumers call
``parse_event`` and receive the latest version of each event.
"""

from shared import events
from shared.envelope import ContractModel, Envelope, EventData
from shared.registry import (
    EVENT_TYPES,
    RETIRED_TYPES,
    ContractError,
    InvalidEvent,
    Registry,
    UnknownEvent,
    all_models,
    default_registry,
    event,
    latest,
    new_event,
    parse_event,
    upcaster,
)
from shared.types import AreaName, MaskedPhone, Sealed, SealedStr, TokenType, UserId, mask_phone

__all__ = [
    "EVENT_TYPES",
    "RETIRED_TYPES",
    "AreaName",
    "ContractError",
    "ContractModel",
    "Envelope",
    "EventData",
    "InvalidEvent",
    "MaskedPhone",
    "Registry",
    "Sealed",
    "SealedStr",
    "TokenType",
    "UnknownEvent",
    "UserId",
    "all_models",
    "default_registry",
    "event",
    "events",
    "latest",
    "mask_phone",
    "new_event",
    "parse_event",
    "upcaster",
]
