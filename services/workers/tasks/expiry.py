"""Queue ``expiry``: a bounded, idempotent sweep that expires what is past its time."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from services.core.challenges import service as challenges
from services.core.plumbing.messaging.routes import EXPIRY_SWEEP
from services.workers.app import TASK_OPTIONS, app, context


@app.task(name=EXPIRY_SWEEP.task, autoretry_for=(DBAPIError,), max_retries=3, **TASK_OPTIONS)
def sweep() -> int:
    return challenges.expire_due(context())
