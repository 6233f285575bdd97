"""TOTP as a factor: any authenticator app, verified by ``factors.totp.otp``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import bindparam, or_, update
from sqlalchemy.engine import Connection

from services.core import lockout
from services.core.factors.base import (
    ChallengeRef,
    EnrollRequest,
    SelectResult,
    TokenSnapshot,
    register_factor,
)
from services.core.factors.totp import otp
from services.core.models import Token, TokenState
from services.core.plumbing.prepared import Prepared
from services.core.plumbing.qr import qr_data_uris
from shared.types import TokenType

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


# The remembered clock offset never recentres the window further than this (5 min).
MAX_DRIFT_STEPS = 10

T = Token.__table__.c
# One compare-and-set takes the step and records the success: of two concurrent requests
# with the same code one wins, and a step at or before the last accepted one is a replay.
_TAKE_STEP = Prepared(
    update(Token.__table__)
    .where(
        T.id == bindparam("b_token"),
        T.state == bindparam("b_state"),
        lockout.TOKEN_NOT_WAITING,
        or_(T.last_step.is_(None), T.last_step < bindparam("b_step")),
    )
    .values(last_step=bindparam("b_step"), drift=bindparam("b_drift"), **lockout.SUCCESS_VALUES)
)


def params_from(ctx: Context, stored: str | None = None) -> otp.TotpParams:
    """A token's own parameters when it was made elsewhere, else the service's."""
    if stored:
        return otp.TotpParams.parse(stored)
    return otp.TotpParams(digits=ctx.settings.totp_digits, period=ctx.settings.totp_period)


class TotpFactor:
    type: ClassVar[TokenType] = "totp"
    initial_state: ClassVar[str] = TokenState.PENDING
    has_scan_step: ClassVar[bool] = True
    needs_confirmation: ClassVar[bool] = True
    takes_codes: ClassVar[bool] = True
    code_ready: ClassVar[bool] = True

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        token.secret_enc = ctx.keyring.encrypt(otp.generate_secret())

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        secret = ctx.keyring.decrypt(token.secret_enc or "")
        uri = otp.provisioning_uri(
            secret, issuer=ctx.settings.issuer, account=token.user_id, params=params_from(ctx)
        )
        return {"provisioning_uri": uri, "secret": otp.group_secret(secret), **qr_data_uris(uri)}

    def check_code(
        self, ctx: Context, conn: Connection, token: TokenSnapshot, code: str, now: datetime
    ) -> bool:
        totp = params_from(ctx, token.totp_params)
        step = otp.match_step(
            ctx.keyring.decrypt(token.secret_enc or ""),
            code,
            unix_time=now.timestamp(),
            params=totp,
            window=ctx.settings.totp_window,
            drift=max(-MAX_DRIFT_STEPS, min(MAX_DRIFT_STEPS, token.drift)),
            after_step=token.last_step,
        )
        if step is None:
            return False
        current = otp.time_step(now.timestamp(), totp.period)
        params = {
            "b_token": token.id,
            "b_state": token.state,
            "b_step": step,
            "b_drift": step - current,
            "b_now": now,
        }
        return _TAKE_STEP.rowcount(conn, params) == 1

    def select(
        self, ctx: Context, uow: UnitOfWork, token: TokenSnapshot, challenge: ChallengeRef
    ) -> SelectResult:
        return SelectResult()  # the app already shows the code


register_factor(TotpFactor())
