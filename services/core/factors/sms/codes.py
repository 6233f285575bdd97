"""SMS one-time codes: normalise the number, issue a code, check a code.

A code is 6 digits from ``secrets``; only its keyed hash (bound to the row id) is stored.
It is valid ``sms_code_ttl_seconds`` (≤ 10 min) and allows ``sms_code_attempts`` wrong
guesses. Only the newest code of a token counts, so a resend retires the previous one; a
resend never touches the token's failure count (``tokens.verification`` owns that), so
resending cannot be used to reset the back-off.

Issuing writes the code row, the pending code (encrypted for the SMS worker, deleted once
the code is used or expired) and ``sms.requested`` (no code, the number masked) in the
caller's unit of work; the SMS worker sends it after commit.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from services.core.errors import Conflict, Unprocessable
from services.core.factors.sms.destinations import ensure_destination_allowed
from services.core.factors.sms.send_limits import ensure_send_allowed
from services.core.models import SmsCode, SmsPendingCode, Token
from services.core.plumbing.db import finds_any
from shared.events.sms import SmsRequested

if TYPE_CHECKING:
    from services.core.factors.base import TokenSnapshot
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

CODE_DIGITS = 6


def normalise_phone(raw: str) -> str:
    """E.164 for an international number (``+`` and country code); 422 otherwise."""
    # Imported on the first number seen, as in ``destinations``: a process that handles no
    # phone number (a TOTP-only API, most workers) does not hold its parser and metadata.
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise Unprocessable("not a phone number in international format (+…)",
                            code="invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise Unprocessable("not a valid phone number", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_hash(ctx: Context, e164: str) -> str:
    return ctx.keyring.mac(f"sms-phone:{e164}")


def _code_hash(ctx: Context, message_id: uuid.UUID, code: str) -> str:
    return ctx.keyring.mac(f"sms-code:{message_id}:{code}")


def issue(
    ctx: Context,
    uow: UnitOfWork,
    token: Token | TokenSnapshot,
    purpose: Literal["enrollment", "login"],
    challenge_id: uuid.UUID | None = None,
) -> SmsCode:
    """Create a code for ``token`` and the command to send it, or raise ``Throttled``."""
    if token.type != "sms" or not token.phone_enc or not token.phone_masked:
        raise Conflict("this token does not receive SMS", code="not_an_sms_token")
    # Serialise issuing per token (Postgres); SQLite's BEGIN IMMEDIATE already serialises.
    uow.session.execute(select(Token.id).where(Token.id == token.id).with_for_update())
    e164 = ctx.keyring.decrypt(token.phone_enc)
    hashed_phone = phone_hash(ctx, e164)
    country = ensure_destination_allowed(ctx, uow, token, e164)
    ensure_send_allowed(ctx, uow, token, hashed_phone)
    now = ctx.clock.now()
    message_id = uuid.uuid4()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = SmsCode(
        id=message_id,
        token_id=token.id,
        user_id=token.user_id,
        phone_hash=hashed_phone,
        country=country,
        purpose=purpose,
        challenge_id=challenge_id,
        code_hash=_code_hash(ctx, message_id, code),
        attempts=0,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.sms_code_ttl_seconds),
    )
    uow.session.add(row)
    uow.session.add(SmsPendingCode(message_id=message_id, code_enc=ctx.keyring.encrypt(code),
                                   expires_at=row.expires_at))
    uow.emit(
        SmsRequested(
            message_id=message_id,
            token_id=token.id,
            challenge_id=challenge_id,
            purpose=purpose,
            phone=token.phone_masked,
        ),
        user_id=token.user_id,
    )
    return row


S = SmsCode.__table__.c
# The token's newest live code: only that one counts, so a resend retires the previous one.
_LATEST = (
    select(S.id, S.code_hash, S.attempts, S.used_at)
    .where(S.token_id == bindparam("b_token"), S.expires_at > bindparam("b_now"))
    .order_by(S.created_at.desc())
    .limit(1)
)
_COUNT_WRONG = (
    update(SmsCode.__table__).where(S.id == bindparam("b_code")).values(attempts=S.attempts + 1)
)
# Compare-and-set: of two requests with the same code, exactly one wins.
_USE = (
    update(SmsCode.__table__)
    .where(S.id == bindparam("b_code"), S.used_at.is_(None), S.attempts < bindparam("b_limit"))
    .values(used_at=bindparam("b_now"))
)


def check(ctx: Context, conn: Connection, token_id: uuid.UUID, code: str, now: datetime) -> bool:
    """True once for the right code of the token's newest live SMS; counts wrong guesses
    against that code's own attempts."""
    row = conn.execute(_LATEST, {"b_token": token_id, "b_now": now}).first()
    limit = ctx.settings.sms_code_attempts
    if row is None or row.used_at is not None or row.attempts >= limit:
        return False
    if not (code.isdigit() and ctx.keyring.mac_matches(f"sms-code:{row.id}:{code}", row.code_hash)):
        conn.execute(_COUNT_WRONG, {"b_code": row.id})
        return False
    won = conn.execute(_USE, {"b_code": row.id, "b_limit": limit, "b_now": now}).rowcount == 1
    if won:  # a used code is of no further use to anyone: it goes
        conn.execute(delete(SmsPendingCode).where(SmsPendingCode.message_id == row.id))
    return bool(won)


def purge_expired(ctx: Context, limit: int = 1000) -> int:
    """Delete pending codes past their expiry (the expiry sweep); returns how many. Reads
    first, so that a sweep with nothing to delete takes no write lock."""
    now = ctx.clock.now()
    expired = select(SmsPendingCode.message_id).where(SmsPendingCode.expires_at <= now)
    if not finds_any(ctx.engine, expired):
        return 0
    with ctx.sessions.begin() as session:
        ids = list(session.scalars(expired.limit(limit)))
        if ids:
            session.execute(delete(SmsPendingCode).where(SmsPendingCode.message_id.in_(ids)))
    return len(ids)
