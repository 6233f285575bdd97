"""Queue ``audit``: append every event to the hash-chained audit log (and sign checkpoints)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import DBAPIError

from services.core.audit import service
from services.core.plumbing.messaging.routes import AUDIT_APPEND, AUDIT_APPEND_MANY
from services.workers.app import TASK_OPTIONS, app, context
from services.workers.visibility import AUDIT_MAX_COUNTDOWN
from shared.registry import ContractError, parse_event

log = logging.getLogger(__name__)


def _audit_task(name: str) -> Callable[[Callable[..., Any]], Task[Any, Any]]:
    """A short database outage is waited out: the chain must not miss an event."""
    return app.task(
        name=name,
        autoretry_for=(DBAPIError,),
        retry_backoff=True,
        retry_backoff_max=AUDIT_MAX_COUNTDOWN,
        retry_jitter=True,
        max_retries=20,
        **TASK_OPTIONS,
    )


def _valid(envelope: Any) -> bool:
    try:
        parse_event(envelope)
    except ContractError as exc:
        log.error("audit: refusing an event that breaks its contract: %s", type(exc).__name__)
        return False
    return True


@_audit_task(AUDIT_APPEND.task)
def append(envelope: dict[str, Any]) -> None:
    if _valid(envelope):
        service.record_in(context(), envelope)


@_audit_task(AUDIT_APPEND_MANY.task)
def append_many(envelopes: list[dict[str, Any]]) -> None:
    """A publisher's batch, appended in one transaction; a broken event is refused alone."""
    if not isinstance(envelopes, list):
        log.error("audit: refusing a batch that is not a list")
        return
    valid = [e for e in envelopes if _valid(e)]
    if valid:
        service.record_many_in(context(), valid)
