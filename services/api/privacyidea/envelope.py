"""privacyIDEA 3.14's response envelope (pi-validate.md §4).

Success: ``jsonrpc``, ``id`` (2 for ``/validate/*``, 1 otherwise), ``version``,
``versionnumber`` (the Credential Provider gates features on it), ``time``, ``result``
(``status``, ``value`` and, for ``/validate/*``, ``authentication``) and ``detail``.
Errors carry ``result.error`` with an integer code and no ``value``/``versionnumber``.
No response signature: no plugin verifies one.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

VERSION = "privacyIDEA 3.14"
VERSION_NUMBER = "3.14"

# error code -> HTTP status, as privacyIDEA answers them
STATUS = {
    905: 400,
    904: 400,
    4031: 401,
    4032: 401,
    4033: 401,
    4304: 401,
    303: 403,
    405: 405,
    404: 404,
    413: 413,
}


class PiError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail
        self.status = status or STATUS.get(code, 400)


def authentication(value: Any, detail: dict[str, Any]) -> str:
    """privacyIDEA's rule (3.12+): CHALLENGE whenever there are challenges, ACCEPT for a
    truthy value without them, DECLINED for a declined push, else REJECT."""
    if detail.get("multi_challenge") or detail.get("passkey"):
        return "CHALLENGE"
    if value:
        return "ACCEPT"
    if detail.get("challenge_status") in ("declined", "cancelled"):
        return "DECLINED"
    return "REJECT"


def success(
    value: Any,
    detail: dict[str, Any] | None = None,
    *,
    validate: bool = True,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    result: dict[str, Any] = {"status": True, "value": value}
    if validate:
        result["authentication"] = authentication(value, detail or {})
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 2 if validate else 1,
        "version": VERSION,
        "versionnumber": VERSION_NUMBER,
        "time": time.time(),
        "result": result,
    }
    if detail:
        body["detail"] = detail
    return JSONResponse(body, headers=headers)


def error_body(code: int, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """``detail`` is ``null``, except ``{}`` for authentication errors (as privacyIDEA has it)."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "version": VERSION,
        "time": time.time(),
        "detail": detail,
        "result": {"status": False, "error": {"code": code, "message": message}},
    }


def error(exc: PiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.detail), status_code=exc.status, headers=headers
    )


def owns(path: str) -> bool:
    """Whether ``path`` is one of this API's, whose errors must keep privacyIDEA's shape."""
    return path == "/auth" or path.startswith("/validate/")
