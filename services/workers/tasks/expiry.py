"""Queue ``expiry``: a bounded, idempotent sweep that expires what is past its time
(challenges, abandoned enrollments), publishes again what a broker lost
(``services.core.redispatch``), and prunes the messaging rows nobody needs any more
(``messaging.retention``)."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError

from services.core import redispatch
from services.core.challenges import service as challenges
from services.core.factors.sms import codes
from services.core.plumbing.messaging import retention
from services.core.plumbing.messaging.routes import EXPIRY_SWEEP
from services.core.tokens import service as tokens
from services.workers.app import TASK_OPTIONS, app, context

PRUNE_EVERY_SECONDS = 60.0  # the sweep runs every second; pruning needs far less
_last_prune = [0.0]

log = logging.getLogger(__name__)


# A retry after a second, not Celery's default three minutes: a new sweep comes every second,
# and the queue's visibility timeout is short (services.workers.visibility).
@app.task(name=EXPIRY_SWEEP.task, autoretry_for=(DBAPIError,), max_retries=3,
          default_retry_delay=1, **TASK_OPTIONS)
def sweep() -> int:
    ctx = context()
    total = challenges.expire_due(ctx)
    enrollments = tokens.expire_enrollments(ctx)
    codes.purge_expired(ctx)  # an SMS code exists only until it is used or expires
    redispatch.sweep(ctx)
    if time.monotonic() - _last_prune[0] >= PRUNE_EVERY_SECONDS:
        _last_prune[0] = time.monotonic()
        retention.prune(ctx.sessions, ctx.clock.now(), ctx.settings.messaging_retention_seconds)
    # Runs every second: a line only when it changed something.
    if total:
        log.info("expiry sweep: %d challenge(s) expired", total)
    if enrollments:
        log.info("expiry sweep: %d abandoned enrollment(s) removed", enrollments)
    if not total and not enrollments:
        log.debug("expiry sweep: nothing due")
    return total + enrollments
