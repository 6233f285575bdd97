"""PUSH as a factor: the privacyIDEA Authenticator app (push-protocol.md).

Enrollment step 1 shows the ``otpauth://pipush/…`` QR code; the token waits in
``clientwait`` until the app's step 2 on the public push endpoint activates it (no scan
or code step here). At login, selecting the factor sends a signed push; the phone's
answer, not a typed code, completes the challenge, so ``check_code`` is always False.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import Connection

from services.core.factors.base import (
    ChallengeRef,
    EnrollRequest,
    SelectResult,
    TokenSnapshot,
    register_factor,
)
from services.core.factors.push import crypto, login
from services.core.factors.push.enrollment import enrollment_url
from services.core.models import PushToken, Token, TokenState
from services.core.plumbing.qr import qr_data_uris
from shared.types import TokenType

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

SERIAL_PREFIX = "PIPU"


def ttl_minutes(ctx: Context) -> int:
    return max(1, ctx.settings.enrollment_ttl_seconds // 60)


class PushFactor:
    type: ClassVar[TokenType] = "push"
    initial_state: ClassVar[str] = TokenState.CLIENTWAIT
    has_scan_step: ClassVar[bool] = False
    needs_confirmation: ClassVar[bool] = False
    takes_codes: ClassVar[bool] = False  # answered on the phone, never by a typed code
    code_ready: ClassVar[bool] = False

    def prepare(self, ctx: Context, uow: UnitOfWork, token: Token, req: EnrollRequest) -> None:
        token.serial = SERIAL_PREFIX + secrets.token_hex(4).upper()
        # The server deadline is the QR ttl in whole minutes, so app and server agree.
        token.enrollment_expires_at = token.created_at + timedelta(minutes=ttl_minutes(ctx))

    def enrollment_details(self, ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
        credential = crypto.new_enrollment_credential()
        uow.session.add(
            PushToken(
                token_id=token.id,
                credential_hash=ctx.keyring.mac(credential),
                poll_only=ctx.settings.push_is_poll_only,
                fcm_unregistered=False,
            )
        )
        url = enrollment_url(
            serial=token.serial or "",
            push_url=crypto.push_endpoint_url(ctx.settings.public_url),
            ttl_minutes=ttl_minutes(ctx),
            issuer=ctx.settings.issuer,
            credential=credential,
            sslverify=ctx.settings.push_sslverify,
            poll_only=ctx.settings.push_is_poll_only,
        )
        return {
            "enrollment_url": url,
            **qr_data_uris(url),
            "serial": token.serial,
            "ttl_minutes": ttl_minutes(ctx),
        }

    def check_code(self, ctx: Context, conn: Connection, token: TokenSnapshot, code: str,
                   now: datetime) -> bool:
        return False  # never asked: ``takes_codes`` is False

    def select(self, ctx: Context, uow: UnitOfWork, token: TokenSnapshot,
               challenge: ChallengeRef) -> SelectResult:
        return login.start_push(ctx, uow, token, challenge)


register_factor(PushFactor())
