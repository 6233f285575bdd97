"""The public push endpoint the privacyIDEA Authenticator app talks to (push-protocol.md).

``POST`` (form-encoded): enrollment step 2, answers, Firebase-token updates; ``GET``:
polling. No API key: every request is checked by the one-time enrollment credential
or the app's signature. The path is the one advertised in the QR code: the path of
``TWOFA_PUBLIC_URL`` + ``/ttype/push`` (``/ttype/push`` itself is always served too,
for a proxy that strips a prefix).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.api.challenge_waiters import waiters
from services.api.deps import context_of
from services.api.errors import ERROR_RESPONSES
from services.core.factors.push import crypto, endpoint
from services.core.factors.push.protocol import ProtocolError, envelope, error_envelope
from services.core.plumbing.context import Context
from services.core.storable import storable

router = APIRouter(tags=["push app"], responses=ERROR_RESPONSES)

MAX_FIELDS = 16
NOT_HERE = ProtocolError(404, 404, "Not found.", "not_found")
UNSTORABLE = ProtocolError(
    400, 905, "ERR905: Invalid characters in parameters!", "invalid_parameters"
)


def _fields(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in list(items)[:MAX_FIELDS]:
        if isinstance(value, str):
            out[str(key)] = value
    return out


def _run(ctx: Context, method: str, fields: dict[str, str]) -> JSONResponse:
    try:
        reply = endpoint.poll(ctx, fields) if method == "GET" else endpoint.handle_post(ctx, fields)
    except ProtocolError as err:
        return JSONResponse(error_envelope(err), status_code=err.status)
    for challenge_id in reply.changed:
        waiters.notify(challenge_id)
    return JSONResponse(envelope(reply.value, reply.detail))


async def _handle(request: Request, prefix: str | None) -> JSONResponse:
    ctx = context_of(request)
    expected = crypto.push_endpoint_path(ctx.settings.public_url).removesuffix("/ttype/push")
    if prefix is not None and f"/{prefix.strip('/')}" != expected:
        return JSONResponse(error_envelope(NOT_HERE), status_code=404)
    if request.method == "GET":
        fields = _fields(request.query_params.multi_items())
    else:
        ctype = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" not in ctype and "multipart/form-data" not in ctype:
            fields = _fields(
                request.query_params.multi_items()
            )  # like privacyIDEA's request.values
        else:
            async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
                fields = _fields(form.multi_items())
    if not storable(fields):
        return JSONResponse(error_envelope(UNSTORABLE), status_code=UNSTORABLE.status)
    # RSA work and DB access run in the threadpool, never on the event loop.
    return await run_in_threadpool(_run, ctx, request.method, fields)


# One route per method: FastAPI derives the OpenAPI operation id from the first method only.
@router.get("/ttype/push")
async def push_poll(request: Request) -> JSONResponse:
    """The app's poll for open challenges (signed ``serial|timestamp``)."""
    return await _handle(request, None)


@router.post("/ttype/push")
async def push_endpoint(request: Request) -> JSONResponse:
    """Enrollment step 2, challenge answers and Firebase-token updates (form-encoded)."""
    return await _handle(request, None)


@router.api_route("/{prefix:path}/ttype/push", methods=["GET", "POST"], include_in_schema=False)
async def push_endpoint_prefixed(request: Request, prefix: str) -> JSONResponse:
    return await _handle(request, prefix)
