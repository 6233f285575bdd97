"""Queue ``webhooks``: find the subscriptions that are behind, deliver to each in turn.

``sweep`` runs every second from the scheduler; ``deliver`` is one walk for one
subscription (services.core.webhooks.delivery), which takes the subscription's lease,
so duplicates of it are harmless and cheap.
"""

from __future__ import annotations

import threading
import uuid

from sqlalchemy.exc import DBAPIError

from services.core.plumbing.messaging.routes import WEBHOOKS_DELIVER, WEBHOOKS_SWEEP
from services.core.webhooks import delivery
from services.core.webhooks.poster import HttpPoster
from services.workers.app import TASK_OPTIONS, app, context

DELIVER_EXPIRES = 10  # seconds: a deliver that waited longer is superseded by a later sweep
_poster: dict[str, HttpPoster] = {}
_lock = threading.Lock()


def poster() -> HttpPoster:
    """One HTTP client per worker process (created after fork)."""
    with _lock:
        if "p" not in _poster:
            s = context().settings
            _poster["p"] = HttpPoster(
                timeout=s.webhook_timeout_seconds, allow_private=s.webhook_allow_private
            )
        return _poster["p"]


@app.task(name=WEBHOOKS_SWEEP.task, autoretry_for=(DBAPIError,), max_retries=3, **TASK_OPTIONS)
def sweep() -> int:
    ctx = context()
    ids = delivery.due(ctx, ctx.clock.now())
    for subscription_id in ids:
        deliver.apply_async(
            args=[str(subscription_id)],
            queue=WEBHOOKS_DELIVER.queue,
            routing_key=WEBHOOKS_DELIVER.queue,
            expires=DELIVER_EXPIRES,
        )
    return len(ids)


@app.task(
    name=WEBHOOKS_DELIVER.task,
    autoretry_for=(DBAPIError,),
    max_retries=3,
    soft_time_limit=delivery.LEASE_SECONDS - 10,
    time_limit=delivery.LEASE_SECONDS,
    **TASK_OPTIONS,
)
def deliver(subscription_id: str) -> int:
    return delivery.deliver(context(), uuid.UUID(subscription_id), poster()).delivered
