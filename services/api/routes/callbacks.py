"""Provider callbacks (public, no API key): Twilio's and Vonage's delivery receipts.

Twilio: authenticity comes from ``X-Twilio-Signature`` (HMAC-SHA1 of the URL Twilio called and
the form fields, keyed with our auth token), checked with twilio's ``RequestValidator``
against ``TWOFA_PUBLIC_URL`` + path + query - the URL Twilio was given, not the one a proxy
forwarded.

Vonage: the SMS API signs a receipt with the ``sig`` field (an HMAC of the other fields,
keyed with the account's signature secret), checked with the SDK's ``Auth.check_signature``.
Vonage sends receipts as a GET query, a form POST or a JSON POST (a dashboard setting): all
three are read.

A bad or missing signature gets 403 and changes nothing; a valid receipt for a message we do
not know gets 2xx (otherwise the provider retries it for hours).
"""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from services.api.deps import Ctx
from services.api.errors import ERROR_RESPONSES, error_response
from services.core.factors.sms.status import apply_status
from services.core.factors.sms.vonage_receipts import RECEIPT_PATH, receipt_is_signed
from services.core.plumbing import metrics
from services.core.plumbing.context import Context

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"], responses=ERROR_RESPONSES)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _apply(ctx: Context, params: dict[str, str], message_id: uuid.UUID | None) -> str:
    return apply_status(ctx, "twilio", params.get("MessageSid", ""),
                        params.get("MessageStatus", ""), _int_or_none(params.get("ErrorCode")),
                        message_id)


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
        metrics.SMS_RECEIPTS.labels("twilio", "bad_signature").inc()
        return error_response(403, "bad_signature", "the request is not signed by Twilio")
    if not params.get("MessageSid"):
        return error_response(422, "invalid_input", "MessageSid is missing")
    outcome = await run_in_threadpool(
        _apply, ctx, params, _uuid_or_none(request.query_params.get("message_id"))
    )
    metrics.SMS_RECEIPTS.labels("twilio", outcome).inc()
    log.info("twilio status callback: %s", outcome)
    return Response(status_code=204)


async def _vonage_params(request: Request) -> dict[str, str] | None:
    """The receipt's fields, wherever Vonage put them; None if the body cannot be read."""
    if request.method == "GET":
        return dict(request.query_params)
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()
                if v is not None}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _apply_vonage(ctx: Context, params: dict[str, str]) -> str:
    return apply_status(ctx, "vonage", params["messageId"], params.get("status", ""),
                        _int_or_none(params.get("err-code")),
                        _uuid_or_none(params.get("client-ref")))


async def _vonage_receipt(request: Request, ctx: Context) -> Response:
    params = await _vonage_params(request)
    if params is None or not receipt_is_signed(ctx.settings, params):
        metrics.SMS_RECEIPTS.labels("vonage", "bad_signature").inc()
        return error_response(403, "bad_signature", "the request is not signed by Vonage")
    if not params.get("messageId"):
        return error_response(422, "invalid_input", "messageId is missing")
    outcome = await run_in_threadpool(_apply_vonage, ctx, params)
    metrics.SMS_RECEIPTS.labels("vonage", outcome).inc()
    log.info("vonage delivery receipt: %s", outcome)
    return Response(status_code=204)


_VONAGE = RECEIPT_PATH.removeprefix(router.prefix)


@router.get(_VONAGE, status_code=204)
async def vonage_receipt_query(request: Request, ctx: Ctx) -> Response:
    """A Vonage delivery receipt sent as a GET query."""
    return await _vonage_receipt(request, ctx)


@router.post(_VONAGE, status_code=204)
async def vonage_receipt_body(request: Request, ctx: Ctx) -> Response:
    """A Vonage delivery receipt sent as a form or JSON POST."""
    return await _vonage_receipt(request, ctx)
