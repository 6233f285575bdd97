"""The periodic sweep does not fill the console: Celery's lines about it are DEBUG,
lines about other tasks and any sweep failure keep their level."""

from __future__ import annotations

import logging

import pytest

from services.core.plumbing.messaging.routes import EXPIRY_SWEEP
from services.workers import routine_logs

RECEIVED = "Task %(name)s[%(id)s] received"  # Celery's own formats (celery.app.trace)
SUCCEEDED = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    routine_logs.install()
    routine_logs.install()  # idempotent
    handler = Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def emit(logger: str, level: int, fmt: str, task: str) -> None:
    logging.getLogger(logger).log(level, fmt, {"name": task, "id": "1", "runtime": 0.001, "return_value": 0})


def test_sweep_lines_are_debug_and_hidden_at_info(collected):
    assert all(len([f for f in logging.getLogger(n).filters
                    if isinstance(f, routine_logs.RoutineSweepLines)]) == 1
               for n in routine_logs.CELERY_TASK_LOGGERS)
    emit("celery.worker.strategy", logging.INFO, RECEIVED, EXPIRY_SWEEP.task)
    emit("celery.app.trace", logging.INFO, SUCCEEDED, EXPIRY_SWEEP.task)
    logging.getLogger("celery.worker.request").info("Discarding revoked task: %s[%s]", EXPIRY_SWEEP.task, "2")
    assert collected.records == []


def test_other_tasks_and_sweep_failures_keep_their_level(collected):
    emit("celery.worker.strategy", logging.INFO, RECEIVED, "twofa.sms.send")
    emit("celery.app.trace", logging.ERROR, "Task %(name)s[%(id)s] raised unexpected: boom", EXPIRY_SWEEP.task)
    assert [(r.levelname, r.getMessage()[:30]) for r in collected.records] == [
        ("INFO", "Task twofa.sms.send[1] receive"), ("ERROR", f"Task {EXPIRY_SWEEP.task}[1] rai")]


def test_at_debug_the_sweep_lines_are_there_as_debug(collected):
    logging.getLogger().setLevel(logging.DEBUG)
    emit("celery.app.trace", logging.INFO, SUCCEEDED, EXPIRY_SWEEP.task)
    assert [r.levelname for r in collected.records] == ["DEBUG"]
