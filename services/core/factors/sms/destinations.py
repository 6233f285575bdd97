"""Limits against SMS pumping: where SMS may go, and how many the service sends an hour.

Per-user and per-number throttles (``send_limits``) do not stop a fraudster who makes many
accounts with premium-rate numbers: the bill has no ceiling. Here the destination's
country must be allowed (``TWOFA_SMS_ALLOWED_COUNTRIES``) and the whole service, and each
country, has an hourly cap, counted from ``sms_codes`` like the other throttles. A
refusal is a clear 4xx for the caller and an ``sms.send_refused`` alert that outlives the
refused request's rollback.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, true

from services.core.errors import Throttled, Unprocessable
from services.core.models import SmsCode
from services.core.plumbing.clock import as_utc
from shared.events.sms import SmsSendRefused

if TYPE_CHECKING:
    from services.core.factors.base import TokenSnapshot
    from services.core.models import Token
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

HOUR = 3600


def country_of(e164: str) -> str | None:
    import phonenumbers  # on the first number seen (see ``codes.normalise_phone``)

    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def alert(uow: UnitOfWork, token: Token | TokenSnapshot, reason: str, country: str | None) -> None:
    uow.emit(
        SmsSendRefused(token_id=token.id, reason=reason, country=country),  # type: ignore[arg-type]
        user_id=token.user_id,
        survive_rollback=True,
    )


def ensure_destination_allowed(
    ctx: Context, uow: UnitOfWork, token: Token | TokenSnapshot, e164: str
) -> str | None:
    """The number's country if an SMS may go there now; 422 or 429 (and an alert) if not."""
    s, now = ctx.settings, ctx.clock.now()
    country = country_of(e164)
    allowed = s.sms_country_set
    if allowed is not None and country not in allowed:
        alert(uow, token, "country_not_allowed", country)
        raise Unprocessable(
            f"SMS to {country or 'this destination'} are not enabled",
            code="sms_country_not_allowed",
        )
    since = now - timedelta(seconds=HOUR)
    for cap, reason, where in (
        (s.sms_global_max_per_hour, "global_cap", true()),
        (s.sms_country_max_per_hour, "country_cap", SmsCode.country == country),
    ):
        if not cap:
            continue
        count, oldest = uow.session.execute(
            select(func.count(), func.min(SmsCode.created_at)).where(
                SmsCode.created_at > since, where
            )
        ).one()
        if count >= cap:
            alert(uow, token, reason, country)
            wait = (
                HOUR - int((now - as_utc(oldest)).total_seconds()) if oldest is not None else HOUR
            )
            raise Throttled(
                "the service's hourly SMS limit is reached"
                if reason == "global_cap"
                else f"the hourly SMS limit for {country} is reached",
                retry_after=max(1, wait),
                code=f"sms_{reason}_reached",
            )
    return country
