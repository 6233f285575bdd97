"""The FastAPI application factory: a thin intake in front of the domain services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from services.api import docs, errors
from services.api.limits import BodySizeLimit
from services.api.observability import Observability
from services.api.privacyidea import routes as privacyidea
from services.api.routes import (
    admin,
    areas,
    audit,
    callbacks,
    challenges,
    contact,
    health,
    recovery,
    sms,
    step_ups,
    tokens,
    ttype_push,
    webhooks,
)
from services.core.bootstrap import build_context
from services.core.plumbing.context import Context
from services.core.plumbing.gc_pauses import freeze_startup_heap
from services.core.plumbing.settings import Settings

# Each router declares its error responses (``errors.ERROR_RESPONSES``; the privacyIDEA
# routes their own envelope), so that the app serves the routes themselves: an included
# router is served through copies of its routes, built at the first request and kept beside
# the originals for the process's lifetime.
#
# A request is matched against the routes in this order until one fits, and each route
# tried costs a path match, so the routers a login goes through come first: the native
# challenges, the privacyIDEA-compatible API, the push app's calls and SMS resends. No
# two routes here match the same request, so the order changes nothing else (the OpenAPI
# document lists the paths in it).
ROUTERS: tuple[APIRouter, ...] = (
    challenges.router,
    privacyidea.router,  # the privacyIDEA-compatible relying-party API
    ttype_push.router, sms.challenge_router,
    health.router, tokens.router, audit.router, areas.router, recovery.router,
    callbacks.router, sms.enroll_router,
    admin.router, step_ups.router, audit.public_router, webhooks.router, contact.router,
)


def create_app(settings: Settings | None = None, ctx: Context | None = None) -> FastAPI:
    if ctx is None:
        ctx = build_context(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.settings.api_threads
        # What startup built (modules, routes, schemas, models) lives as long as the process:
        # frozen, it is left out of every garbage collection, which then traverses only what
        # requests allocated instead of the whole heap.
        freeze_startup_heap()
        yield
        close = getattr(ctx.dispatcher, "close", None)
        if callable(close):
            close()

    app = FastAPI(
        title="twofa",
        version=version("twofa"),
        description="Second factors (TOTP, SMS, privacyIDEA-compatible PUSH) as a service. "
                    "Callers authenticate with an API key (`Authorization: Bearer tfa_…`, "
                    "made with `twofa apikey create`); \"Authorize\" takes it.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        routes=[route for router in ROUTERS for route in router.routes],
    )
    docs.install(app)
    app.state.ctx = ctx
    errors.install(app)
    errors.document_error_shape(app)
    app.add_middleware(BodySizeLimit, max_bytes=ctx.settings.max_body_bytes)
    app.add_middleware(Observability)  # added last: outermost, so it sees every answer
    return app
