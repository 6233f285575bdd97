"""The Celery application of the worker processes, and their per-process Context.

``configure(settings)`` is called once at the composition root (``twofa worker``);
the Context is built lazily in each worker process, after the fork, so no
connection is shared across processes.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from services.core.bootstrap import build_context
from services.core.plumbing.context import Context
from services.core.plumbing.gc_pauses import freeze_startup_heap
from services.core.plumbing.messaging.celery_config import PromptAmqp, celery_config
from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings
from services.workers import observability, routine_logs, visibility

log = logging.getLogger(__name__)

app = Celery("twofa-workers", set_as_current=False, amqp=PromptAmqp)

# Every task is declared with these: late ack so a killed worker's message comes back,
# JSON only, no results (outcomes are events).
TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "serializer": "json",
}

_state: dict[str, Any] = {}
_lock = threading.Lock()


def configure(settings: Settings, *, ctx: Context | None = None,
              queues: tuple[str, ...] = QUEUES) -> Celery:
    """``queues``: what this process consumes (its Redis visibility timeout depends on it)."""
    config = celery_config(settings)
    config["broker_transport_options"] = {
        **config["broker_transport_options"], **visibility.transport_options(settings, queues)}
    app.conf.update(config)
    routine_logs.install()
    observability.install()
    _state.clear()
    _state["settings"] = settings
    _state["queues"] = queues
    if ctx is not None:
        _state["ctx"] = ctx
    import services.workers.tasks  # noqa: F401  (registers every task on ``app``)

    worker_ready.connect(_freeze_startup_heap, weak=False, dispatch_uid="twofa-gc-freeze")
    return app


def _freeze_startup_heap(**_: Any) -> None:
    """What the worker built before taking messages lives as long as the process: frozen,
    it is left out of every garbage collection (as in the API)."""
    freeze_startup_heap()


def visibility_timeout(settings: Settings) -> int:
    """This process's Redis visibility timeout: retry countdowns must stay under it."""
    return visibility.visibility_timeout(settings, _state.get("queues", QUEUES))


def context() -> Context:
    ctx = _state.get("ctx")
    if ctx is None:
        with _lock:
            ctx = _state.get("ctx")
            if ctx is None:
                # Publish inline (before the ack), but mark rows published in batches:
                # one write per message less.
                ctx = build_context(_state["settings"], background=False, batch_marks=True)
                _state["ctx"] = ctx
    return ctx
