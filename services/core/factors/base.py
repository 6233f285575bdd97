"""The plug-in point for token types.

A factor knows how to start its enrollment, what selecting it in a challenge does, and
how to check a code against a snapshot of one of its tokens. Everything around that —
states, lockout, events, challenges — is generic and lives in ``tokens.service``,
``lockout`` and ``challenges``. What a factor can do is said by its capability flags,
never by a list of type names elsewhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from shared.types import TokenType

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from services.core.models import Token
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


@dataclass(frozen=True)
class EnrollRequest:
    type: str
    description: str
    phone: str | None = None


@dataclass(frozen=True)
class TokenSnapshot:
    """A token as read before the write lock: what a code check and a selection need.

    Whatever is decided from it is written with a compare-and-set, since the row may have
    changed since it was read."""

    id: uuid.UUID
    user_id: str
    type: TokenType
    state: str
    description: str = ""
    secret_enc: str | None = None
    totp_params: str | None = None
    last_step: int | None = None
    drift: int = 0
    phone_enc: str | None = None
    phone_masked: str | None = None
    serial: str | None = None
    backoff_until: datetime | None = None

    @classmethod
    def of(cls, token: Token) -> TokenSnapshot:
        return cls(
            id=token.id,
            user_id=token.user_id,
            type=token.type,
            state=token.state,
            description=token.description,
            secret_enc=token.secret_enc,
            totp_params=token.totp_params,
            last_step=token.last_step,
            drift=token.drift or 0,
            phone_enc=token.phone_enc,
            phone_masked=token.phone_masked,
            serial=token.serial,
            backoff_until=token.backoff_until,
        )


@dataclass(frozen=True)
class ChallengeRef:
    """The challenge a factor is selected for."""

    id: uuid.UUID
    user_id: str
    area: str
    purpose: str = "login"


@dataclass
class SelectResult:
    """What selecting a factor in a challenge tells the login service; ``expires_at``
    shortens the challenge when the factor has its own answer window (a push)."""

    extras: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None


class Factor(Protocol):
    type: ClassVar[TokenType]
    initial_state: ClassVar[str]
    # Whether "QR code scanned" is a step of this type's enrollment.
    has_scan_step: ClassVar[bool]
    # Whether activation needs a second code of a later time step (TOTP) or is done at once.
    needs_confirmation: ClassVar[bool]
    # Whether the user answers with a typed code (TOTP, SMS) rather than on a device (PUSH).
    takes_codes: ClassVar[bool]
    # Whether the code exists before the factor is selected (the app shows it), so that
    # verifying with this factor may select it in the same request. Factors whose
    # selection sends the code (SMS) or the request (PUSH) must be selected first.
    code_ready: ClassVar[bool]

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        """Fill type-specific columns before the token row is first flushed."""

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        """What the user needs to set the token up (QR codes, …), after the row exists."""

    def check_code(
        self, ctx: Context, conn: Connection, token: TokenSnapshot, code: str, now: datetime
    ) -> bool:
        """True if ``code`` is valid for ``token`` now. The code is made single use and
        the success recorded on the token row (``lockout.SUCCESS_VALUES``, guarded by
        ``lockout.TOKEN_NOT_WAITING``) with compare-and-set writes on ``conn``; False
        when one of them loses. A wrong code may count against the code itself (an SMS
        code's own attempts); the token's and the user's counts are ``lockout``'s."""

    def select(
        self, ctx: Context, uow: UnitOfWork, token: TokenSnapshot, challenge: ChallengeRef
    ) -> SelectResult:
        """The user picked this factor in a challenge (send an SMS, a push, …)."""


_FACTORS: dict[str, Factor] = {}


def register_factor(factor: Factor) -> Factor:
    _FACTORS[factor.type] = factor
    return factor


def factor_for(token_type: str) -> Factor:
    return _FACTORS[token_type]


def factor_types() -> tuple[str, ...]:
    return tuple(sorted(_FACTORS))
