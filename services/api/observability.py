"""The outermost middleware: a correlation id for every request, and its metrics.

The id is the caller's ``X-Request-ID`` (or ``X-Correlation-ID``) when well-formed, else a new
one; it is returned as ``X-Request-ID``, set for every line logged while the request runs and
written into the events it commits. Metrics are labelled with the route template
(``/v1/users/{user_id}/tokens``), never the path itself: no user id reaches a label.
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.plumbing import logs, metrics

REQUEST_ID = b"x-request-id"
_INCOMING = (REQUEST_ID, b"x-correlation-id")
UNMATCHED = "unmatched"  # no route: 404s of any path count under one label


def request_id(scope: Scope) -> str:
    headers = dict(scope.get("headers") or [])
    for name in _INCOMING:
        value = headers.get(name)
        if value is not None:
            found = logs.well_formed(value.decode("latin-1"))
            if found:
                return found
    return uuid.uuid4().hex


class Observability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500  # what an exception that escapes every handler becomes

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, rid.encode())]
            await send(message)

        began = time.perf_counter()
        try:
            with logs.correlation(rid):
                await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, template).observe(time.perf_counter() - began)
