"""The privacyIDEA answer envelope and its errors (push-protocol.md §2, §6, §8).

The app reads ``result.status`` and ``result.value`` or ``result.error {code, message}``
and ``detail``; it reads the server version from ``versionnumber``. Our own API error
shape (``error {code, message}``) is added beside it, so both kinds of client understand.
"""

from __future__ import annotations

import time
from typing import Any

VERSION_NUMBER = "3.14"  # the protocol level we speak; the app gates features on it


class ProtocolError(Exception):
    def __init__(self, status: int, code: int, message: str, slug: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.slug = status, code, message, slug


def envelope(value: Any, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "version": f"twofa {VERSION_NUMBER}",
        "versionnumber": VERSION_NUMBER,
        "time": time.time(),
        "result": {"status": True, "value": value},
    }
    if detail is not None:
        body["detail"] = detail
    return body


def error_envelope(err: ProtocolError) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "version": f"twofa {VERSION_NUMBER}",
        "versionnumber": VERSION_NUMBER,
        "time": time.time(),
        "result": {"status": False, "error": {"code": err.code, "message": err.message}},
        "detail": {"threadid": 0},
        "error": {"code": err.slug, "message": err.message},
    }


BAD_SIGNATURE = ProtocolError(400, 10, "ERR10: Could not verify signature!", "invalid_signature")
MISSING = ProtocolError(400, 905, "ERR905: Missing parameters!", "missing_parameters")


def bad_timestamp(raw: str) -> ProtocolError:
    shown = "".join(ch for ch in raw[:40] if ch.isprintable())
    return ProtocolError(
        400, 10, f"ERR10: Timestamp {shown} not in valid range.", "invalid_timestamp"
    )
