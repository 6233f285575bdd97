"""Send throttles for SMS: per number and per user, plus a daily quota per user.

Counted from ``sms_codes`` (one row per code sent), so a throttled request, which writes
nothing, changes nothing. Defaults: 1 per 30 s and 5 per hour for each number and each
user, 10 per user per day (toll-fraud protection); all come from Settings. The 30 s
interval stops re-sends of a code still outstanding (not used yet): right after a code was
used, e.g. the enrollment code, the first login code goes out at once; the hourly and daily
caps count every code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from services.core.errors import Throttled
from services.core.factors.sms.destinations import alert
from services.core.models import SmsCode
from services.core.plumbing.clock import as_utc

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute

    from services.core.factors.base import TokenSnapshot
    from services.core.models import Token
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

DAY = 86400
HOUR = 3600


def _window(uow: UnitOfWork, column: InstrumentedAttribute[str], value: str, since: datetime,
            *, outstanding_only: bool = False) -> tuple[int, datetime | None]:
    query = select(func.count(), func.min(SmsCode.created_at)).where(
        column == value, SmsCode.created_at > since
    )
    if outstanding_only:
        query = query.where(SmsCode.used_at.is_(None))
    count, oldest = uow.session.execute(query).one()
    return int(count), (as_utc(oldest) if oldest is not None else None)


def _retry_after(oldest: datetime | None, seconds: int, now: datetime) -> int:
    if oldest is None:
        return 1
    return max(1, int((oldest + timedelta(seconds=seconds) - now).total_seconds() + 0.999))


def ensure_send_allowed(
    ctx: Context, uow: UnitOfWork, token: Token | TokenSnapshot, phone_hash: str
) -> None:
    """Raise ``Throttled`` (429 with Retry-After) if another SMS may not go out now; a
    reached daily quota (toll fraud, not impatience) is also an ``sms.send_refused`` alert."""
    s, now, user_id = ctx.settings, ctx.clock.now(), token.user_id
    count, oldest = _window(uow, SmsCode.user_id, user_id, now - timedelta(seconds=DAY))
    if count >= s.sms_daily_quota:
        alert(uow, token, "user_quota", None)
        raise Throttled("daily SMS quota reached", retry_after=_retry_after(oldest, DAY, now),
                        code="sms_quota_exceeded")
    for column, value in ((SmsCode.phone_hash, phone_hash), (SmsCode.user_id, user_id)):
        if s.sms_resend_interval_seconds:
            # A code already used is answered: the next one is a new code, not a re-send.
            recent, first = _window(
                uow,
                column,
                value,
                now - timedelta(seconds=s.sms_resend_interval_seconds),
                outstanding_only=True,
            )
            if recent:
                raise Throttled(
                    "an SMS was sent moments ago; wait before asking again",
                    retry_after=_retry_after(first, s.sms_resend_interval_seconds, now),
                    code="sms_throttled",
                )
        hourly, first = _window(uow, column, value, now - timedelta(seconds=HOUR))
        if hourly >= s.sms_max_per_hour:
            raise Throttled(
                "too many SMS in the last hour",
                retry_after=_retry_after(first, HOUR, now),
                code="sms_throttled",
            )
