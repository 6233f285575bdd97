"""The one Celery configuration every process uses, publishers and workers alike."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import before_task_publish
from kombu import Connection, Exchange, Queue
from kombu.connection import ConnectionPool, PooledConnection

from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings

# A message header with the publish time (epoch seconds), on every message any twofa process
# sends: the relay's metrics read the age of each queue's oldest message from it.
SENT_AT_HEADER = "twofa_sent_at"


@before_task_publish.connect(weak=False, dispatch_uid="twofa-sent-at")
def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


def celery_config(settings: Settings) -> dict[str, Any]:
    url = settings.resolved_broker_url
    transport: dict[str, Any] = {}
    if url.startswith(("redis", "rediss")):
        # A killed worker's unacked task comes back after visibility_timeout; the restore
        # sweep runs every interval x throttle seconds (kombu's 10 x 10 would add ~100 s).
        # A worker of one queue sets its own timeout (services.workers.visibility).
        transport = {
            "visibility_timeout": settings.broker_visibility_timeout,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        }
    exchange = Exchange("twofa", type="direct")
    return {
        "broker_url": url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "audit",
        "task_queues": [Queue(q, exchange, routing_key=q) for q in QUEUES],
        "task_default_exchange": "twofa",
        "task_create_missing_queues": False,
        # Publishing never waits long: the outbox relay covers what could not be sent.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_heartbeat": 10,
        "enable_utc": True,
        "timezone": "UTC",
    }


# How long a worker waits between attempts to reach the broker again. kombu's own waits grow
# by 2 s up to 30 s, and Celery's consumer passes no setting for them: after an outage of half
# a minute a worker came back up to 12 s after the broker did.
RECONNECT_INTERVALS = {"interval_start": 0.0, "interval_step": 0.5, "interval_max": 1.0}


class PromptReconnect(Connection):
    """A broker connection that tries again every second at most while the broker is away,
    and that talks to Redis through ``redis_transport`` (one client per channel). So do the
    connections of its pool, which Celery publishes on."""

    def ensure_connection(self, *args: Any, **kwargs: Any) -> Any:
        for key, value in RECONNECT_INTERVALS.items():
            kwargs.setdefault(key, value)
        return super().ensure_connection(*args, **kwargs)

    def get_transport_cls(self) -> Any:
        cls = super().get_transport_cls()
        # By name: importing kombu's Redis transport (and redis-py) is for Redis brokers only.
        if f"{cls.__module__}:{cls.__qualname__}" != "kombu.transport.redis:Transport":
            return cls
        from services.core.plumbing.messaging import redis_transport

        return redis_transport.Transport

    def Pool(self, limit: int | None = None, **kwargs: Any) -> ConnectionPool:  # noqa: N802
        return _PromptPool(self, limit=limit, **kwargs)


class _PromptPooled(PooledConnection, PromptReconnect):  # type: ignore[misc]
    """A connection of a ``PromptReconnect``'s pool (kombu's pool makes plain ones)."""


class _PromptPool(ConnectionPool):
    def new(self) -> _PromptPooled:
        return _PromptPooled(self, **dict(self.connection._info(resolve=False)))


class PromptAmqp(AMQP):
    """Celery's messaging with ``PromptReconnect`` connections (``Celery(amqp=PromptAmqp)``)."""

    Connection = PromptReconnect


def make_celery(settings: Settings, name: str = "twofa") -> Celery:
    # No fixups: Celery's only built-in one adapts it to Django, which twofa is not, and
    # importing it is memory every process (the API's included) would hold for nothing.
    app = Celery(name, set_as_current=False, amqp=PromptAmqp, fixups=[])
    app.conf.update(celery_config(settings))
    return app
