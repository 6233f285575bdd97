"""OpenAPI declarations of the privacyIDEA-compatible routes.

The routes read their parameters themselves (privacyIDEA's rules for GET, forms, multipart,
JSON and the user agent do not fit FastAPI's validation), so the request shapes are declared
here by hand; the responses are models, so the schema says exactly what comes back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PiErrorBody(BaseModel):
    code: int
    message: str


class PiResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: bool
    value: bool | int | dict[str, Any] | None = None
    authentication: str | None = None
    error: PiErrorBody | None = None


class PiResponse(BaseModel):
    """privacyIDEA 3.14's envelope (pi-validate.md §4)."""

    jsonrpc: str
    id: int
    version: str
    versionnumber: str | None = None
    time: float
    result: PiResult
    detail: dict[str, Any] | None = None


def _string_properties(*names: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {n: {"type": "string", "maxLength": 2048} for n in names},
        "additionalProperties": True,
    }


def _body(*names: str) -> dict[str, Any]:
    schema = _string_properties(*names)
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


def _query(*names: str) -> dict[str, Any]:
    return {
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in names
        ]
    }


# By reference, not as a model (which FastAPI would build a serializer for per route and
# status, read only by the OpenAPI document): every route's response model puts PiResponse
# in the document's components.
_PI_RESPONSE = {"application/json": {"schema": {"$ref": "#/components/schemas/PiResponse"}}}

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": _PI_RESPONSE}
    for status, description in (
        (400, "privacyIDEA error 905 (parameter) or 904 (no such user or realm)"),
        (401, "privacyIDEA error 4031/4033/4304: missing or invalid credentials"),
        (403, "privacyIDEA error 303: not allowed"),
        (413, "request body too large"),
    )
}

_PARAMS = {
    "check": (
        "user",
        "realm",
        "pass",
        "transaction_id",
        "state",
        "cancel_enrollment",
        "client",
        "serial",
        "type",
    ),
    "trigger": ("user", "realm"),
    "poll": ("transaction_id",),
    "poll_path": (),
    "auth": ("username", "password", "realm"),
}


# What ``services.api.observability`` reads on every request; the native routes declare it
# through a dependency.
_CORRELATION_HEADER = {
    "name": "x-correlation-id",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The request's id in the logs and its events, if well-formed "
                   "(`X-Request-ID` is read too); otherwise a new one.",
}


def route(name: str, *, post: bool = False) -> dict[str, Any]:
    """``response_model``, ``responses`` and the hand-written request of one operation:
    a POST takes its parameters from a form, multipart or JSON body (or the query), a GET
    from the query only."""
    names = _PARAMS[name]
    extra = _body(*names) if post else _query(*names)
    extra["parameters"] = [_CORRELATION_HEADER, *extra.get("parameters", [])]
    return {"response_model": PiResponse, "responses": _ERRORS, "openapi_extra": extra}
