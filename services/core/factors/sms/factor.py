"""SMS as a factor: a code sent to a verified E.164 number.

Enrollment sends a first code; ``activate`` with it makes the token active (no second
confirmation step: the code proves the number). Changing a number means enrolling a new
token. In a login challenge, selecting the token sends a code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from services.core.errors import Unprocessable
from services.core.models import Challenge, Token, TokenState
from services.core.factors.sms import codes
from services.core.factors.base import EnrollRequest, SelectResult, register_factor
from shared.types import mask_phone

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


class SmsFactor:
    type: ClassVar[str] = "sms"
    initial_state: ClassVar[str] = TokenState.PENDING
    has_scan_step: ClassVar[bool] = False
    needs_confirmation: ClassVar[bool] = False

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        if not req.phone:
            raise Unprocessable("an SMS token needs a phone number", code="invalid_phone")
        e164 = codes.normalise_phone(req.phone)
        token.phone_enc = ctx.keyring.encrypt(e164)
        token.phone_masked = mask_phone(e164)

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        row = codes.issue(ctx, uow, token, "enrollment")
        return {"delivery": "sms", "phone": token.phone_masked, "message_id": str(row.id),
                "code_ttl_seconds": ctx.settings.sms_code_ttl_seconds}

    def check_code(self, ctx: Context, uow: UnitOfWork, token: Token, code: str) -> bool:
        return codes.check(ctx, uow, token, code)

    def select(
        self, ctx: Context, uow: UnitOfWork, token: Token, challenge: Challenge
    ) -> SelectResult:
        row = codes.issue(ctx, uow, token, "login", challenge.id)
        return SelectResult(extras={"delivery": "sms", "phone": token.phone_masked,
                                    "message_id": str(row.id)})


register_factor(SmsFactor())
