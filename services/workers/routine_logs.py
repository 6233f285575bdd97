"""Celery's own lines about the periodic expiry sweep ("received", "succeeded",
"discarding revoked"), one pair every second, moved to DEBUG.

They say nothing a reader needs: the sweep logs at INFO itself when it changed
something. Lines about every other task, and any sweep failure (WARNING and up),
are left as they are.
"""

from __future__ import annotations

import logging

from services.core.plumbing.messaging.routes import EXPIRY_SWEEP

# The loggers Celery writes those lines to (worker.strategy: received; app.trace:
# succeeded; worker.request: discarded because the message expired in the queue).
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.worker.request")


class RoutineSweepLines(logging.Filter):
    def __init__(self, task_name: str = EXPIRY_SWEEP.task) -> None:
        super().__init__()
        self.marker = f"{task_name}["

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or self.marker not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def install() -> None:
    """Idempotent: one filter per logger however often a process configures itself."""
    for name in CELERY_TASK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RoutineSweepLines) for f in logger.filters):
            logger.addFilter(RoutineSweepLines())
