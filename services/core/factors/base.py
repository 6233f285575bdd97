"""The plug-in point for token types.

A factor knows how to start its enrollment and how to check a code for one of its
tokens. Everything around that — states, throttling, events, challenges — is generic
and lives in ``tokens.service`` and ``challenges``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.models import Challenge, Token
    from services.core.plumbing.uow import UnitOfWork


@dataclass(frozen=True)
class EnrollRequest:
    type: str
    description: str
    phone: str | None = None


@dataclass
class SelectResult:
    """What selecting a factor in a challenge tells the login service."""

    extras: dict[str, Any] = field(default_factory=dict)


class Factor(Protocol):
    type: ClassVar[str]
    initial_state: ClassVar[str]
    # Whether "QR code scanned" is a step of this type's enrollment.
    has_scan_step: ClassVar[bool]
    # Whether activation needs a second code of a later time step (TOTP) or is done at once.
    needs_confirmation: ClassVar[bool]

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        """Fill type-specific columns before the token row is first flushed."""

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        """What the user needs to set the token up (QR codes, …), after the row exists."""

    def check_code(self, ctx: Context, uow: UnitOfWork, token: Token, code: str) -> bool:
        """True if ``code`` is valid for ``token`` now; must make the code single use."""

    def select(
        self, ctx: Context, uow: UnitOfWork, token: Token, challenge: Challenge
    ) -> SelectResult:
        """The user picked this factor in a login challenge (send SMS, push, …)."""


_FACTORS: dict[str, Factor] = {}


def register_factor(factor: Factor) -> Factor:
    _FACTORS[factor.type] = factor
    return factor


def factor_for(token_type: str) -> Factor:
    return _FACTORS[token_type]


def factor_types() -> tuple[str, ...]:
    return tuple(sorted(_FACTORS))
