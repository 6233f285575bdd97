"""Liveness, readiness (database and broker, with short timeouts) and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from services.api.deps import Ctx
from services.api.errors import ERROR_RESPONSES
from services.core.plumbing import metrics
from services.core.plumbing.readiness import OK, database_check, run_checks

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. It checks nothing else, so that a database or broker
    outage never gets every API process restarted."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: Ctx) -> JSONResponse:
    """200 when the database and the broker answer within TWOFA_READINESS_TIMEOUT_SECONDS,
    else 503 naming what is down (``timeout`` or the error's class)."""
    checks = {"database": database_check(ctx.engine)}
    if ctx.broker_probe is not None:
        checks["broker"] = ctx.broker_probe
    results = run_checks(checks, ctx.settings.readiness_timeout_seconds)
    ready = all(v == OK for v in results.values())
    body: dict[str, object] = {"ready": ready, "checks": results}
    if not ready:
        down = sorted(name for name, v in results.items() if v != OK)
        body["down"] = down
        for name in down:
            metrics.READINESS_FAILURES.labels(name).inc()
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def prometheus(
    request: Request, ctx: Ctx, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus exposition of every API process (multiprocess mode under several workers).
    With TWOFA_METRICS_TOKEN set it needs ``Authorization: Bearer <that token>``."""
    token = ctx.settings.metrics_token
    if not metrics.authorized(token.get_secret_value() if token else None, authorization):
        return Response("a metrics token is required\n", status_code=401,
                        headers={"WWW-Authenticate": "Bearer"}, media_type="text/plain")
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = metrics.registry()
    return Response(metrics.exposition(registry), media_type=metrics.CONTENT_TYPE_LATEST)
