"""Per task run: the event's correlation id on every line the task logs, and the task's
duration, retries and failures as metrics.

Celery's signals fire in the thread that runs the task (any pool), so the correlation id is
a context variable set at ``task_prerun`` and reset at ``task_postrun``.
"""

from __future__ import annotations

import threading
import time
from contextvars import Token
from typing import Any

from celery.signals import task_failure, task_postrun, task_prerun, task_retry

from services.core.plumbing import logs, metrics

_started: dict[str, tuple[float, Token[str | None]]] = {}
_lock = threading.Lock()


def correlation_of(args: Any) -> str | None:
    """The correlation id of the event a task was given: its envelope, or a batch of
    envelopes that share one (an audit batch of one request's events)."""
    first = args[0] if isinstance(args, (list, tuple)) and args else None
    if isinstance(first, dict):
        return logs.well_formed(first.get("correlation_id"))
    if isinstance(first, list):
        ids = {e.get("correlation_id") for e in first if isinstance(e, dict)}
        if len(ids) == 1:
            return logs.well_formed(ids.pop())
    return None


def _prerun(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    token = logs.set_correlation(correlation_of(args))
    with _lock:
        _started[task_id] = (time.perf_counter(), token)


def _postrun(task_id: str | None = None, task: Any = None, state: str | None = None,
             **_: Any) -> None:
    with _lock:
        started = _started.pop(task_id or "", None)
    if started is None:
        return
    began, token = started
    metrics.TASK_SECONDS.labels(getattr(task, "name", "unknown"), (state or "unknown").lower()
                                ).observe(time.perf_counter() - began)
    logs.reset_correlation(token)


def _retry(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


def _failure(sender: Any = None, **_: Any) -> None:
    metrics.TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def install() -> None:
    """Idempotent (dispatch_uid): tests configure the worker app more than once."""
    task_prerun.connect(_prerun, weak=False, dispatch_uid="twofa-task-prerun")
    task_postrun.connect(_postrun, weak=False, dispatch_uid="twofa-task-postrun")
    task_retry.connect(_retry, weak=False, dispatch_uid="twofa-task-retry")
    task_failure.connect(_failure, weak=False, dispatch_uid="twofa-task-failure")
