"""Queue ``push``: send a push challenge to the phone (``push.requested``).

Transient provider errors retry after ``retry_countdown`` (shared with the SMS worker),
honouring a Retry-After hint; time limits bound a stuck FCM call.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from services.core import redispatch
from services.core.factors.push import delivery
from services.core.factors.push.sender import PushSender, sender_from_settings
from services.core.plumbing.messaging.routes import PUSH_SEND
from services.core.plumbing.providers.errors import TransientProviderError
from services.core.plumbing.providers.retry import retry_countdown
from services.core.plumbing.settings import Settings
from services.workers.app import TASK_OPTIONS, app, context, visibility_timeout
from services.workers.visibility import PUSH_MAX_COUNTDOWN, PUSH_TIME_LIMIT
from shared.events.push import PushRequested
from shared.registry import parse_event

MAX_RETRIES = 5
MAX_COUNTDOWN = PUSH_MAX_COUNTDOWN  # seconds; the visibility timeout allows for it
_sender: dict[str, PushSender] = {}


def sender() -> PushSender:
    if "s" not in _sender:  # lazily, in the worker process (after fork)
        _sender["s"] = sender_from_settings(context().settings)
    return _sender["s"]


def countdown(settings: Settings, retries: int, hint: int | None) -> float:
    return retry_countdown(retries, base=0.5, cap=MAX_COUNTDOWN,
                           visibility_timeout=visibility_timeout(settings), hint=hint)


@app.task(bind=True, name=PUSH_SEND.task, autoretry_for=(DBAPIError,), max_retries=MAX_RETRIES,
          retry_backoff=True, retry_jitter=True, soft_time_limit=PUSH_TIME_LIMIT - 10,
          time_limit=PUSH_TIME_LIMIT, **TASK_OPTIONS)
def send(self: Any, envelope: dict[str, Any]) -> str:
    env, cmd = parse_event(envelope)
    assert isinstance(cmd, PushRequested)
    try:
        return delivery.send_push(context(), env.event_id, cmd, sender())
    except TransientProviderError as exc:
        if self.request.retries >= MAX_RETRIES:
            delivery.give_up(context(), env.event_id, cmd, exc.reason)
            return "gave_up"
        wait = countdown(context().settings, self.request.retries, exc.retry_after)
        redispatch.defer(context(), env.event_id, wait)  # no copy while this retry waits
        raise self.retry(exc=exc, countdown=wait) from None
