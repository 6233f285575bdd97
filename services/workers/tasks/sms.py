"""Queue ``sms``: send one ``sms.requested`` through the configured SMS provider.

Retries are explicit rather than ``autoretry_for``: the back-off cap must stay below the
broker's visibility timeout (a Redis message whose countdown outlives it is delivered
twice), and both come from Settings, which ``autoretry_for`` would freeze at import time.
The wait is ``retry_countdown``'s, shared with the push worker; the last attempt records
``sms.failed`` instead of raising (``deliver(last_attempt=True)``).
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Task

from services.core.factors.sms.delivery import deliver
from services.core.factors.sms.failover import build_sender
from services.core.factors.sms.ledger import BatchingLedger
from services.core.factors.sms.sender import SmsSender
from services.core.plumbing.messaging.routes import SMS_SEND
from services.core.plumbing.providers.errors import TransientProviderError
from services.core.plumbing.providers.retry import retry_countdown
from services.core.plumbing.settings import Settings
from services.workers.app import TASK_OPTIONS, app, context, visibility_timeout
from shared.events.sms import SmsRequested
from shared.registry import ContractError, parse_event

_sender: dict[str, Any] = {}
_lock = threading.Lock()


def sender() -> SmsSender:
    """One sender per process (its HTTP pool is shared by the pool's threads)."""
    with _lock:
        if "s" not in _sender:
            _sender["s"] = build_sender(context().settings)
        return _sender["s"]  # type: ignore[no-any-return]


def ledger() -> BatchingLedger:
    """One per process: the pool's threads share its claim and record transactions."""
    with _lock:
        if "ledger" not in _sender:
            _sender["ledger"] = BatchingLedger(context())
        return _sender["ledger"]  # type: ignore[no-any-return]


def reset() -> None:
    """Drop this process's sender and ledger (tests that swap the Context between runs)."""
    with _lock:
        closing = _sender.pop("s", None)
        _sender.clear()
    close = getattr(closing, "close", None)
    if close is not None:
        close()


def backoff(settings: Settings, retries: int, hint: int | None = None) -> float:
    return retry_countdown(retries, base=1.0, cap=settings.sms_retry_backoff_max_seconds,
                           visibility_timeout=visibility_timeout(settings), hint=hint)


@app.task(bind=True, name=SMS_SEND.task, max_retries=None, **TASK_OPTIONS)
def send(self: Task[Any, Any], envelope: dict[str, Any]) -> str:
    env, cmd = parse_event(envelope)
    if not isinstance(cmd, SmsRequested) or env.user_id is None:
        raise ContractError(f"{env.type} is not an SMS command")
    ctx, retries = context(), self.request.retries or 0
    last = retries >= ctx.settings.sms_max_retries
    try:
        return deliver(ctx, sender(), cmd, env.user_id, last_attempt=last, ledger=ledger())
    except TransientProviderError as exc:
        raise self.retry(
            exc=exc, countdown=backoff(ctx.settings, retries, exc.retry_after)
        ) from None
