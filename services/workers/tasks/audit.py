"""Queue ``audit``: append every event to the hash-chained audit log (and sign checkpoints)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DBAPIError

from services.core.audit import service
from services.core.messaging.routes import AUDIT_APPEND
from services.workers.app import TASK_OPTIONS, app, context
from shared.registry import ContractError, parse_event

log = logging.getLogger(__name__)


@app.task(
    name=AUDIT_APPEND.task,
    autoretry_for=(DBAPIError,),
    retry_backoff=0.5,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=20,
    **TASK_OPTIONS,
)
def append(envelope: dict[str, Any]) -> None:
    try:
        parse_event(envelope)
    except ContractError as exc:
        log.error("audit: refusing an event that breaks its contract: %s", type(exc).__name__)
        return
    service.record_in(context(), envelope)
