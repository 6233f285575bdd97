"""Field types shared by every event contract.

These types are how secrets are kept out of events and logs (house style §9):

* a one-time code may only travel inside an event as ``Sealed`` - a Fernet ciphertext whose
  ``repr`` and ``str`` are ``***``;
* a phone number may only travel as ``MaskedPhone`` - never the full E.164 number.

The secrets guard in ``tests/contract/test_secrets.py`` walks every registered model and fails
when a suspiciously named field is typed with anything else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import core_schema

__all__ = [
    "AreaName",
    "MaskedPhone",
    "Sealed",
    "SealedStr",
    "TokenType",
    "UserId",
    "mask_phone",
]

TokenType = Literal["totp", "sms", "push"]
"""The kinds of second factor the service knows."""

UserId = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$"
    ),
]
"""The identity provider's user id: 1-128 characters, starting with a letter or digit."""

AreaName = Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
"""A protected area of the relying application, e.g. ``login`` or ``payments``."""

_MASKED_PHONE_PATTERN = r"^\+\d{0,4}\*{3,}\d{2}$"
MaskedPhone = Annotated[str, StringConstraints(pattern=_MASKED_PHONE_PATTERN)]
"""A phone number with all but a few digits starred, e.g. ``+49**********78``.

Events never carry a full number; build values with ``mask_phone``.
"""

_E164 = re.compile(r"^\+([1-9]\d{6,14})$")
_SHOWN_HEAD = 2
_SHOWN_TAIL = 2


def mask_phone(e164: str) -> str:
    """Mask an E.164 number, keeping ``+``, the first two and the last two digits.

    At most four digits are ever shown and at least three stars are always present, so the
    result is a valid ``MaskedPhone``. Raises ``ValueError`` unless ``e164`` is E.164
    (``+`` then 7-15 digits, no separators): silently masking a malformed number would hide
    a bug upstream.
    """
    match = _E164.fullmatch(e164) if isinstance(e164, str) else None
    if match is None:
        raise ValueError("not an E.164 phone number")
    digits = match.group(1)
    stars = "*" * (len(digits) - _SHOWN_HEAD - _SHOWN_TAIL)  # >= 3 because len >= 7
    return f"+{digits[:_SHOWN_HEAD]}{stars}{digits[-_SHOWN_TAIL:]}"


_FERNET_TOKEN = r"^[A-Za-z0-9_-]+={0,2}$"


class SealedStr(str):
    """A ciphertext (a Fernet token) that never shows itself in ``repr`` or ``str``.

    It is the only way a code may travel in an event, and only encrypted, for the one worker
    holding the key (the SMS worker). ``repr()``/``str()``/``%s`` give ``***`` so that an
    event, a model or a log line never prints it; the value itself is intact for
    ``.encode()`` and for ``reveal()``, which returns it as a plain ``str``. Pydantic
    validates it from a plain urlsafe-base64 string of 40-4096 characters and serialises it
    back to that plain string.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "***"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """The ciphertext as a plain ``str``; call it only to decrypt."""
        return str.__str__(self)  # the base method copies the value into a plain str

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(min_length=40, max_length=4096, pattern=_FERNET_TOKEN),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls.reveal, return_schema=core_schema.str_schema()
            ),
        )


Sealed = Annotated[
    SealedStr, Field(description="Fernet ciphertext; the only form in which a code travels.")
]
"""A Fernet ciphertext (see ``SealedStr``): the only form in which a code may be in an event."""
