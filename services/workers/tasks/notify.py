"""Queue ``notify``: tell the user about a change to their factors, on another channel.

Transient provider errors retry with capped exponential back-off and jitter (well under
the broker's visibility timeout); the last attempt, or a permanent error, records
``notification.failed``.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from celery import Task
from sqlalchemy.exc import DBAPIError

from services.core.factors.sms.failover import build_sender
from services.core.factors.sms.sender import SmsSender
from services.core.notify import service
from services.core.notify.mailer import build_mailer
from services.core.plumbing.messaging.routes import NOTIFY_SEND
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.workers.app import TASK_OPTIONS, app, context
from services.workers.visibility import NOTIFY_MAX_COUNTDOWN

MAX_RETRIES = 8
MAX_COUNTDOWN = NOTIFY_MAX_COUNTDOWN  # the visibility timeout allows for it
_built: dict[str, Any] = {}
_lock = threading.Lock()


def channels() -> service.Channels:
    with _lock:
        if "c" not in _built:
            settings = context().settings

            def sms() -> SmsSender:
                with _lock:
                    if "sms" not in _built:
                        _built["sms"] = build_sender(settings, pool_size=8)
                    return _built["sms"]  # type: ignore[no-any-return]

            _built["c"] = service.Channels(mailer=build_mailer(settings), sms=sms)
        return _built["c"]  # type: ignore[no-any-return]


@app.task(
    bind=True,
    name=NOTIFY_SEND.task,
    autoretry_for=(DBAPIError,),
    max_retries=MAX_RETRIES,
    **TASK_OPTIONS,
)
def send(self: Task[Any, Any], envelope: dict[str, Any]) -> str:
    ctx, retries = context(), self.request.retries or 0
    try:
        return service.notify(ctx, envelope, channels())
    except PermanentProviderError as exc:
        service.record_failure(ctx, envelope, None, exc.message)
        return "failed"
    except TransientProviderError as exc:
        if retries >= MAX_RETRIES:
            service.record_failure(ctx, envelope, None, exc.message)
            return "failed"
        delay = min(MAX_COUNTDOWN, 2.0**retries) * random.uniform(0.5, 1.0)
        raise self.retry(exc=exc, countdown=delay) from None


def reset() -> None:
    """Forget this process's mailer and SMS sender (tests that swap the Context)."""
    with _lock:
        _built.clear()
