"""Readiness probes: can this process reach its database and its broker, within a short time?

Each check runs in a small thread pool and is given ``timeout`` seconds: a database or broker
that does not answer (a dropped packet, a full connection pool) is reported as ``timeout``
instead of holding the probe until the orchestrator's own deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.core.plumbing.messaging.celery_config import celery_config
from services.core.plumbing.settings import Settings

OK = "ok"
# Probes that hang keep their thread until they return; a few threads bound that.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")


def database_check(engine: Engine) -> Callable[[], None]:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def broker_check(settings: Settings) -> Callable[[], None]:
    """A new connection each time (a pooled one may look alive after the broker went away);
    one attempt, no retries."""
    config = celery_config(settings)
    timeout = settings.readiness_timeout_seconds
    options = dict(config["broker_transport_options"])
    if options:  # Redis: bound the connect and the reads of the ping
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)

    def check() -> None:
        connection = Connection(config["broker_url"], connect_timeout=timeout,
                                transport_options=options)
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                         timeout=max(1, round(timeout)))
        finally:
            connection.release()

    return check


def run_checks(checks: Mapping[str, Callable[[], None]], timeout: float) -> dict[str, str]:
    """``{name: "ok" | "timeout" | the exception's class name}``; never the message (it may
    carry a host name or a password from a URL)."""
    deadline = time.monotonic() + timeout
    futures = {name: _POOL.submit(check) for name, check in checks.items()}
    out: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            out[name] = OK
        except FutureTimeout:
            out[name] = "timeout"
        except Exception as exc:  # report, do not crash
            out[name] = type(exc).__name__
    return out
