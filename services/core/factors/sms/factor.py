"""SMS as a factor: a code sent to a verified E.164 number.

Enrollment sends a first code; ``activate`` with it makes the token active (no second
confirmation step: the code proves the number). Changing a number means enrolling a new
token. In a challenge, selecting the token sends a code.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import Connection

from services.core import lockout
from services.core.errors import Unprocessable
from services.core.factors.base import (
    ChallengeRef,
    EnrollRequest,
    SelectResult,
    TokenSnapshot,
    register_factor,
)
from services.core.factors.sms import codes
from services.core.models import Token, TokenState
from shared.types import TokenType, mask_phone

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


class SmsFactor:
    type: ClassVar[TokenType] = "sms"
    initial_state: ClassVar[str] = TokenState.PENDING
    has_scan_step: ClassVar[bool] = False
    needs_confirmation: ClassVar[bool] = False
    takes_codes: ClassVar[bool] = True
    code_ready: ClassVar[bool] = False  # selecting it is what sends the code

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        if not req.phone:
            raise Unprocessable("an SMS token needs a phone number", code="invalid_phone")
        e164 = codes.normalise_phone(req.phone)
        token.phone_enc = ctx.keyring.encrypt(e164)
        token.phone_masked = mask_phone(e164)

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        row = codes.issue(ctx, uow, token, "enrollment")
        return {
            "delivery": "sms",
            "phone": token.phone_masked,
            "message_id": str(row.id),
            "code_ttl_seconds": ctx.settings.sms_code_ttl_seconds,
        }

    def check_code(
        self, ctx: Context, conn: Connection, token: TokenSnapshot, code: str, now: datetime
    ) -> bool:
        return codes.check(ctx, conn, token.id, code, now) and lockout.token_succeeded(
            conn, token.id, token.state, now
        )

    def select(
        self, ctx: Context, uow: UnitOfWork, token: TokenSnapshot, challenge: ChallengeRef
    ) -> SelectResult:
        row = codes.issue(ctx, uow, token, "login", challenge.id)
        return SelectResult(
            extras={"delivery": "sms", "phone": token.phone_masked, "message_id": str(row.id)}
        )


register_factor(SmsFactor())
