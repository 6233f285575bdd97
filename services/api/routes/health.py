"""Liveness, readiness (DB and broker) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select, text

from services.api.deps import Ctx
from services.core.models import OutboxEvent

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: Ctx) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, do not crash
        checks["database"] = type(exc).__name__
    if ctx.broker_probe is not None:
        checks["broker"] = "ok" if ctx.broker_probe() else "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(ctx: Ctx) -> str:
    with ctx.sessions() as session:
        backlog = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    return (
        "# HELP twofa_outbox_unpublished Events written but not yet on the broker.\n"
        "# TYPE twofa_outbox_unpublished gauge\n"
        f"twofa_outbox_unpublished {backlog}\n"
    )
