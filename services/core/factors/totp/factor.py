"""TOTP as a factor: any authenticator app, verified by ``tokens.totp``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import or_, update

from services.core.models import Challenge, Token, TokenState
from services.core.plumbing.qr import qr_data_uris
from services.core.factors.totp import otp
from services.core.factors.base import EnrollRequest, SelectResult, register_factor

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork


# The remembered clock offset never recentres the window further than this (5 min).
MAX_DRIFT_STEPS = 10


def params_from(ctx: Context) -> otp.TotpParams:
    return otp.TotpParams(digits=ctx.settings.totp_digits, period=ctx.settings.totp_period)


class TotpFactor:
    type: ClassVar[str] = "totp"
    initial_state: ClassVar[str] = TokenState.PENDING
    has_scan_step: ClassVar[bool] = True
    needs_confirmation: ClassVar[bool] = True

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        token.secret_enc = ctx.keyring.encrypt(otp.generate_secret())

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        secret = ctx.keyring.decrypt(token.secret_enc or "")
        uri = otp.provisioning_uri(
            secret, issuer=ctx.settings.issuer, account=token.user_id, params=params_from(ctx)
        )
        return {"provisioning_uri": uri, "secret": otp.group_secret(secret), **qr_data_uris(uri)}

    def check_code(self, ctx: Context, uow: UnitOfWork, token: Token, code: str) -> bool:
        secret = ctx.keyring.decrypt(token.secret_enc or "")
        now = ctx.clock.now()
        step = otp.match_step(
            secret,
            code,
            unix_time=now.timestamp(),
            params=params_from(ctx),
            window=ctx.settings.totp_window,
            drift=max(-MAX_DRIFT_STEPS, min(MAX_DRIFT_STEPS, token.drift)),
            after_step=token.last_step,
        )
        if step is None:
            return False
        current = otp.time_step(now.timestamp(), ctx.settings.totp_period)
        # Compare-and-set: of two concurrent requests with the same code, one wins.
        won = uow.session.execute(
            update(Token)
            .where(Token.id == token.id, or_(Token.last_step.is_(None), Token.last_step < step))
            .values(last_step=step, drift=step - current)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            return False
        token.last_step, token.drift = step, step - current
        return True

    def select(
        self, ctx: Context, uow: UnitOfWork, token: Token, challenge: Challenge
    ) -> SelectResult:
        return SelectResult()  # the app already shows the code


register_factor(TotpFactor())
