"""Refuse oversized request bodies before anything reads them."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.privacyidea import envelope as pi_envelope


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, scope)
            return
        # Read the body up front (it is at most max_bytes) and replay it: an error raised
        # from inside receive() would reach FastAPI's body parser and turn into a 400.
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _too_large(send, scope)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, scope: Scope) -> None:
    if pi_envelope.owns(scope.get("path", "")):  # privacyIDEA's plugins parse only its shape
        body: Any = json.dumps(pi_envelope.error_body(413, "ERR413: request body too large"))
    else:
        body = json.dumps({"error": {"code": "too_large", "message": "request body too large"}})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
