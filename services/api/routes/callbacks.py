"""Provider callbacks (public, no API key): Twilio delivery status.

Authenticity comes from ``X-Twilio-Signature`` (HMAC-SHA1 of the URL Twilio called and the
form fields, keyed with our auth token), checked with twilio's ``RequestValidator`` against
``TWOFA_PUBLIC_URL`` + path + query - the URL Twilio was given, not the one a proxy
forwarded. A bad or missing signature gets 403 and changes nothing; a valid callback for a
message we do not know gets 200 (otherwise Twilio retries it for hours).
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from services.api.deps import Ctx
from services.api.errors import error_response
from services.core.factors.sms.status import apply_status
from services.core.plumbing.context import Context

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _apply(ctx: Context, params: dict[str, str], message_id: uuid.UUID | None) -> str:
    return apply_status(ctx, params.get("MessageSid", ""), params.get("MessageStatus", ""),
                        _int_or_none(params.get("ErrorCode")), message_id)


@router.post("/twilio", status_code=204)
async def twilio_status(request: Request, ctx: Ctx) -> Response:
    token = ctx.settings.twilio_auth_token
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    url = ctx.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None or not signature or not RequestValidator(
        token.get_secret_value()
    ).validate(url, params, signature):
        return error_response(403, "bad_signature", "the request is not signed by Twilio")
    if not params.get("MessageSid"):
        return error_response(422, "invalid_input", "MessageSid is missing")
    outcome = await run_in_threadpool(
        _apply, ctx, params, _uuid_or_none(request.query_params.get("message_id"))
    )
    log.info("twilio status callback: %s", outcome)
    return Response(status_code=204)
