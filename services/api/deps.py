"""Request-scoped dependencies: the process Context, a unit of work, the caller's key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from services.core import apikeys
from services.core.plumbing.context import Context
from services.core.plumbing.db import writer_queue
from services.core.plumbing.logs import current_correlation

T = TypeVar("T")

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$"


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in
# the thread pool, and such a hop costs more than the work.
def context_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def get_ctx(request: Request) -> Context:
    return context_of(request)


async def correlation_id(x_correlation_id: Annotated[str | None, Header()] = None) -> str | None:
    """The request's id (``services.api.observability``): the caller's ``X-Request-ID`` or
    ``X-Correlation-Id`` if well-formed, otherwise a new one. The header is declared here so
    that the API documents it."""
    return current_correlation()


async def run_db(ctx: Context, fn: Callable[..., T], *args: Any) -> T:
    """Run a short unit of work. On SQLite it runs in the event loop: a local file answers
    in microseconds, and a thread hop per request cost more than the work, while threads
    queueing for the GIL stretched every write transaction. The loop first holds the write
    slot, waiting for it without blocking (another process may be writing), so that the
    unit of work's transactions never wait on the loop. On a database across the network
    it runs in the thread pool, so that the loop never waits on a round trip."""
    slot = writer_queue(ctx.engine)
    if slot is None:
        return await run_in_threadpool(fn, *args)
    await slot.hold()
    try:
        return fn(*args)
    finally:
        slot.give_back()


def model_response(model: BaseModel) -> Response:
    """The model as JSON, serialised once by pydantic; the route keeps ``response_model``
    for the OpenAPI schema (FastAPI validated and serialised a returned model again)."""
    return Response(model.model_dump_json(), media_type="application/json")


# Declares the scheme in the OpenAPI document (Swagger UI's "Authorize"); the answers to a
# missing or wrong key stay ours (auto_error=False), with WWW-Authenticate: Bearer.
API_KEY = HTTPBearer(
    scheme_name="apiKey", bearerFormat="tfa_…", auto_error=False,
    description="An API key, sent as `Authorization: Bearer tfa_…`; "
                "made with `twofa apikey create`.",
)


def require(*scopes: str) -> Callable[..., Awaitable[apikeys.KeySnapshot]]:
    """The caller's API key, if it is live and holds one of ``scopes`` (or ``admin``)."""
    wanted = frozenset(scopes)
    label = " or ".join(repr(s) for s in scopes)

    # The context from the request itself, not from ``get_ctx``: each sub-dependency is a
    # resolution of its own on every authenticated request.
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY)],
    ) -> apikeys.KeySnapshot:
        ctx = context_of(request)
        if credentials is None:
            raise HTTPException(401, "an API key is required", {"WWW-Authenticate": "Bearer"})
        cache = ctx.api_key_cache
        if cache is None:
            cache = ctx.api_key_cache = apikeys.KeyCache(ctx.settings.api_key_cache_seconds)
        # A cache hit is a dict lookup and a constant-time compare; a miss reads one row.
        key = cache.authenticate(ctx.engine, credentials.credentials.strip())
        if key is None:
            raise HTTPException(401, "the API key is not valid", {"WWW-Authenticate": "Bearer"})
        if not (wanted & key.scope_set) and "admin" not in key.scope_set:
            raise HTTPException(403, f"this API key lacks the {label} scope")
        return key

    # The name lists the scopes (``require_enroll__challenge``): the authorization-matrix test
    # reads it.
    dependency.__name__ = "require_" + "__".join(s.replace(":", "_") for s in scopes)
    return dependency


Ctx = Annotated[Context, Depends(get_ctx)]
Correlation = Annotated[str | None, Depends(correlation_id)]
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, max_length=128)]
