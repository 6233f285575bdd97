"""The outbox relay and scheduler process (``twofa relay``).

Republishes outbox rows the API could not publish (broker down, process killed),
oldest first in bounded batches, schedules the periodic expiry and webhook sweeps, and
checkpoints SQLite's write-ahead log from a thread of its own so that no request has to
(``plumbing.wal``).
All are safe to run twice: consumers de-duplicate, the sweeps are compare-and-set.
"""

from __future__ import annotations

import logging
import threading
import time

from services.core.bootstrap import build_context
from services.core.plumbing import wal
from services.core.plumbing.gc_pauses import freeze_startup_heap
from services.core.plumbing.messaging.celery_config import make_celery
from services.core.plumbing.messaging.outbox import relay_once
from services.core.plumbing.messaging.routes import EXPIRY_SWEEP, WEBHOOKS_SWEEP
from services.core.plumbing.metrics import RELAY_REPUBLISHED
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 1.0


def run(settings: Settings, stop: threading.Event) -> None:
    ctx = build_context(settings, background=False)
    scheduler = make_celery(settings, "twofa-scheduler")
    next_sweep = 0.0
    freeze_startup_heap()  # as in the API and the workers
    checkpointer = threading.Thread(
        target=wal.keep_checkpointed,
        args=(ctx.engine, stop, settings.wal_checkpoint_interval_seconds),
        name="wal-checkpoint", daemon=True,
    )
    checkpointer.start()
    log.info("relay started")
    while not stop.is_set():
        try:
            sent = relay_once(
                ctx,
                grace_seconds=settings.relay_grace_seconds,
                batch_size=settings.relay_batch_size,
            )
            if sent:
                RELAY_REPUBLISHED.inc(sent)
                log.info("relay republished %d event(s)", sent)
            if time.monotonic() >= next_sweep:
                for sweep in (EXPIRY_SWEEP, WEBHOOKS_SWEEP):
                    scheduler.send_task(
                        sweep.task,
                        queue=sweep.queue,
                        routing_key=sweep.queue,
                        expires=SWEEP_EVERY_SECONDS * 5,
                    )
                next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
            if sent >= settings.relay_batch_size:
                continue  # more backlog: no pause
        except Exception as exc:  # the broker or DB may be down; keep trying
            log.warning("relay pass failed: %s", type(exc).__name__)
        stop.wait(settings.relay_interval_seconds)
    checkpointer.join(5)
