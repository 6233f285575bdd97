"""On Redis: how long a message of each queue stays unacked before another worker gets it.

Redis has no acknowledgements: a consumer moves a message into an ``unacked`` hash, and
any consumer's periodic sweep puts back those older than *its* ``visibility_timeout``. A
worker killed with messages in hand (up to its prefetch: one per thread) leaves them there
for that long, and a message still held by a live worker - running, or waiting for its
retry countdown (Celery holds an ETA message unacked until it runs) - is handed out a
second time if it outlives it. So each queue's timeout is the longest a live worker holds
one of its messages, plus a margin, and no more.

One timeout for every queue would be the longest of them (a webhook delivery's lease). So
a worker that consumes exactly one queue keeps that queue's messages in hashes of their
own (``unacked:<queue>``), swept with that queue's timeout only. A worker of several
queues, or a deployment that sets ``TWOFA_BROKER_VISIBILITY_TIMEOUT``, uses kombu's shared
hashes with that one value. RabbitMQ needs none of this: it requeues a dead consumer's
messages as soon as its connection drops.

What comes back here within a minute or so, the SMS, push and audit messages do not wait
for: ``services.core.redispatch`` publishes them again after seconds.
"""

from __future__ import annotations

import math
from typing import Any

from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings
from services.core.webhooks.delivery import LEASE_SECONDS as WEBHOOK_LEASE_SECONDS

MARGIN_SECONDS = 5
# Longest run, and longest retry countdown, of each queue's tasks (services.workers.tasks).
PUSH_TIME_LIMIT, PUSH_MAX_COUNTDOWN = 40, 30
NOTIFY_MAX_COUNTDOWN = 60
AUDIT_MAX_COUNTDOWN = 10
SHORT_RUN = 10  # a database transaction or a sweep


def hold_seconds(settings: Settings, queue: str) -> float:
    """The longest a live worker holds one message of ``queue``: run + retry countdown."""
    sms_run = 2 * settings.sms_send_timeout_seconds + 5  # the SMS ledger's lease
    return {
        "sms": sms_run + settings.sms_retry_backoff_max_seconds,
        "push": PUSH_TIME_LIMIT + PUSH_MAX_COUNTDOWN,
        "notify": max(sms_run, 2 * settings.smtp_timeout_seconds + 5) + NOTIFY_MAX_COUNTDOWN,
        "audit": SHORT_RUN + AUDIT_MAX_COUNTDOWN,
        # a sweep's retry may be held longer: a second sweep is harmless, and cheap
        "expiry": SHORT_RUN,
        # a delivery's time limit; a second one finds the subscription's lease taken
        "webhooks": WEBHOOK_LEASE_SECONDS,
    }[queue]


def own_hashes(settings: Settings, queues: tuple[str, ...]) -> bool:
    """Whether a worker of ``queues`` keeps its unacked messages apart, with its own timeout."""
    return ("broker_visibility_timeout" not in settings.model_fields_set
            and len(queues) == 1 and queues[0] in QUEUES)


def visibility_timeout(settings: Settings, queues: tuple[str, ...]) -> int:
    if not own_hashes(settings, queues):
        return settings.broker_visibility_timeout
    return math.ceil(hold_seconds(settings, queues[0]) + MARGIN_SECONDS)


def transport_options(settings: Settings, queues: tuple[str, ...]) -> dict[str, Any]:
    """What a worker of ``queues`` adds to the Redis transport options (nothing elsewhere)."""
    if not settings.resolved_broker_url.startswith(("redis", "rediss")):
        return {}
    if not own_hashes(settings, queues):
        return {"visibility_timeout": settings.broker_visibility_timeout}
    (queue,) = queues
    return {
        "visibility_timeout": visibility_timeout(settings, queues),
        "unacked_key": f"unacked:{queue}",
        "unacked_index_key": f"unacked_index:{queue}",
        "unacked_mutex_key": f"unacked_mutex:{queue}",
    }
