"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a 4xx."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.privacyidea import envelope as pi_envelope
from services.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    InvalidCode,
    NotFound,
    Throttled,
    Unprocessable,
)
from services.core.storable import REFUSED

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


# Each kind of domain error and its HTTP status; a subclass answers as its nearest listed base.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404, Conflict: 409, InvalidCode: 422, Unprocessable: 422, Throttled: 429, Gone: 410,
    Forbidden: 403, DomainError: 400,
}


def domain_status(exc: DomainError) -> int:
    return next(DOMAIN_STATUS[k] for k in type(exc).__mro__ if k in DOMAIN_STATUS)


# Domain error details a caller may act on; anything else a DomainError carries stays inside.
PUBLIC_DETAILS = ("attempts_left", "challenge_id")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **details: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **details}},
        status_code=status,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        details = {k: exc.extra[k] for k in PUBLIC_DETAILS if k in exc.extra}
        return error_response(domain_status(exc), exc.code, exc.message, headers, **details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", "the body is not valid JSON")
        if any(REFUSED in str(e.get("msg", "")) for e in errors):
            return error_response(422, "invalid_characters", REFUSED)
        # Name the fields, never echo the values (they may be codes or phone numbers).
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in errors})
        return error_response(422, "invalid_input", f"invalid or missing: {', '.join(fields)}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if pi_envelope.owns(request.url.path):  # privacyIDEA's plugins parse only its shape
            text = exc.detail if isinstance(exc.detail, str) else "error"
            status = exc.status_code
            refusal = pi_envelope.PiError(status, f"ERR{status}: {text}", status=status)
            return pi_envelope.error(refusal, getattr(exc, "headers", None))
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The database restarting or unreachable: nothing was changed, and the caller may
        # try again shortly. Only the driver's error class is logged, never the statement.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        headers = {"Retry-After": "1"}
        if pi_envelope.owns(request.url.path):
            refusal = pi_envelope.PiError(503, "ERR503: the service is unavailable", status=503)
            return pi_envelope.error(refusal, headers)
        return error_response(503, "unavailable", "the database is unavailable; try again",
                              headers)

    @app.exception_handler(json.JSONDecodeError)
    async def _json(_: Request, exc: json.JSONDecodeError) -> JSONResponse:
        return error_response(400, "invalid_json", "the body is not valid JSON")


class ErrorBody(BaseModel):
    code: str
    message: str
    # A wrong code for a login challenge: how many more codes the challenge accepts.
    attempts_left: int | None = None
    # A wrong code sent with the login itself: the challenge it created, to retry on.
    challenge_id: str | None = None


class ErrorOut(BaseModel):
    """The one error shape, declared on every route so clients (and schemathesis) can rely on it."""

    error: ErrorBody


# Routes name the error shape by reference, not as a model: FastAPI builds a serializer for
# every route and status a model is named for, held for the process's lifetime though only
# the OpenAPI document reads it. ``document_error_shape`` puts the schema it refers to there.
_REF_TEMPLATE = "#/components/schemas/{model}"
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": _REF_TEMPLATE.format(model="ErrorOut")}}}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": _ERROR_CONTENT}
    for status, description in (
        (400, "malformed request"),
        (401, "missing or invalid API key"),
        (403, "the API key lacks the scope, or a step-up code is required"),
        (404, "not found"),
        (405, "method not allowed"),
        (409, "wrong state"),
        (410, "expired"),
        (413, "request body too large"),
        (415, "unsupported media type"),
        (422, "invalid input or code"),
        (429, "throttled; see Retry-After"),
        (503, "the database is unavailable; see Retry-After"),
    )
}


def document_error_shape(app: FastAPI) -> None:
    """``ErrorOut`` and the models it uses in the app's OpenAPI components, where the
    ``ERROR_RESPONSES`` of every route refer to it."""
    schema = ErrorOut.model_json_schema(ref_template=_REF_TEMPLATE, mode="serialization")
    schemas = {"ErrorOut": schema, **schema.pop("$defs", {})}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, then kept by FastAPI
            build().setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
