"""Publishing events to the broker, and the test double that records them."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from celery import Celery

from services.core.messaging.routes import destinations


class PublishError(RuntimeError):
    """The broker did not take the message; the outbox relay will try again."""


class Publisher(Protocol):
    def publish(self, envelope: dict[str, Any]) -> None: ...


class CeleryPublisher:
    """Sends an event to every task that consumes it, by task name (no worker imports)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, envelope: dict[str, Any]) -> None:
        try:
            for route in destinations(envelope["type"]):
                self._app.send_task(
                    route.task,
                    args=[envelope],
                    queue=route.queue,
                    routing_key=route.queue,
                    task_id=f"{envelope['event_id']}:{route.task}",
                    # Celery would put saferepr(args) in a header: CPU per event (issue 3
                    # benchmark), and the envelope's content in every broker-side view.
                    argsrepr=f"<{envelope['type']}>",
                    kwargsrepr="{}",
                )
        except Exception as exc:  # kombu raises transport-specific errors
            raise PublishError(f"broker refused {envelope['type']}: {type(exc).__name__}") from exc


class RecordingPublisher:
    """Keeps what was published, in order; can be told to fail (broker down)."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.down = False
        self._lock = threading.Lock()

    def publish(self, envelope: dict[str, Any]) -> None:
        if self.down:
            raise PublishError("broker down (test)")
        with self._lock:
            self.published.append(envelope)

    def types(self) -> list[str]:
        return [e["type"] for e in self.published]
