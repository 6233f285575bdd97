"""PUSH enrollment: the ``otpauth://pipush/…`` URL (§1) and the app's step 2 (§2).

The enrollment credential is 40 hex characters shown once in the QR code and stored
only as a keyed hash; step 2 consumes it by compare-and-set, so it works once. The
QR ``ttl`` is enforced here too: after the deadline step 2 is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import select, update

from services.core.factors.push import crypto
from services.core.factors.push.protocol import ProtocolError
from services.core.models import PushToken, Token, TokenState
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import affected_rows
from services.core.tokens.service import make_active

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

NO_FIREBASE_TOKEN = "no_firebase_token"
MAX_FBTOKEN_CHARS = 4096
MAX_PUBKEY_CHARS = 4096


def enrollment_url(
    *, serial: str, push_url: str, ttl_minutes: int, issuer: str, credential: str,
    sslverify: bool, poll_only: bool,
) -> str:
    """Exactly privacyIDEA 3.14's shape and order (§1): label = serial, ``quote()`` values,
    booleans as ``True``/``False``, ``sslverify`` as ``1``/``0``."""
    return (
        f"otpauth://pipush/{quote(serial)}?url={quote(push_url)}&ttl={ttl_minutes}"
        f"&issuer={quote(issuer)}&enrollment_credential={quote(credential)}&v=1"
        f"&serial={quote(serial)}&sslverify={'1' if sslverify else '0'}&poll_only={poll_only}"
    )


NOT_IN_CLIENTWAIT = ProtocolError(
    404, 601, "No token with this serial number in the rollout state 'clientwait'.",
    "token_not_in_clientwait",
)
BAD_CREDENTIAL = ProtocolError(
    400, 905,
    "ERR905: Invalid enrollment credential. You are not authorized to finalize this token.",
    "invalid_enrollment_credential",
)


@dataclass
class Step2Result:
    serial: str
    public_key: str  # PKCS#1, base64 in 64-character lines


def finish_enrollment(ctx: Context, form: dict[str, str]) -> Step2Result:
    """Step 2: check the credential, store the app key and Firebase token, make the server
    key, activate the token (first-token hooks run; their output goes to the portal's
    reads, never to the phone)."""
    serial = form.get("serial", "")
    fbtoken = form.get("fbtoken", "")
    if len(fbtoken) > MAX_FBTOKEN_CHARS or len(form.get("pubkey", "")) > MAX_PUBKEY_CHARS:
        raise ProtocolError(400, 905, "ERR905: Parameter too long.", "invalid_input")
    try:
        app_key = crypto.parse_app_public_key(form.get("pubkey", ""))
    except crypto.BadKey as exc:
        raise ProtocolError(400, 905, f"ERR905: {exc}", "invalid_public_key") from exc
    with ctx.uow() as uow:
        now = ctx.clock.now()
        token = uow.session.scalar(
            select(Token).where(Token.serial == serial, Token.type == "push")
        )
        if token is None or token.state != TokenState.CLIENTWAIT:
            raise NOT_IN_CLIENTWAIT
        if token.enrollment_expires_at is not None and as_utc(token.enrollment_expires_at) <= now:
            raise NOT_IN_CLIENTWAIT  # the QR ttl is over: the app has dropped it too
        push_token = uow.session.get(PushToken, token.id)
        stored = push_token.credential_hash if push_token else None
        if push_token is None or stored is None:
            raise NOT_IN_CLIENTWAIT
        if not ctx.keyring.mac_matches(form.get("enrollment_credential", ""), stored):
            raise BAD_CREDENTIAL
        # Compare-and-set: of two concurrent step 2s with the right credential, one wins.
        won = affected_rows(
            uow.session,
            update(PushToken)
            .where(PushToken.token_id == token.id, PushToken.credential_hash == stored)
            .values(credential_hash=None)
            .execution_options(synchronize_session=False),
        )
        if won != 1:
            raise NOT_IN_CLIENTWAIT
        server_key = crypto.generate_server_key(ctx.settings.push_server_key_bits)
        poll_only = not fbtoken or fbtoken == NO_FIREBASE_TOKEN
        push_token.credential_hash = None
        push_token.app_public_key = crypto.spki_b64(app_key)
        push_token.server_key_enc = ctx.keyring.encrypt(crypto.private_key_pem(server_key))
        push_token.fbtoken_enc = None if poll_only else ctx.keyring.encrypt(fbtoken)
        push_token.poll_only = poll_only
        push_token.fcm_unregistered = False
        push_token.registered_at = now
        make_active(ctx, uow, token)
        uow.commit()
        return Step2Result(
            serial=serial, public_key=crypto.pkcs1_b64_lines(server_key.public_key())
        )
