"""Publishing events to the broker, and the test double that records them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from celery import Celery

from services.core.plumbing.messaging.routes import AUDIT_APPEND_MANY, AUDIT_BATCH_MAX, commands


class PublishError(RuntimeError):
    """The broker did not take the message; the outbox relay will try again."""


class Publisher(Protocol):
    def publish_many(self, envelopes: Sequence[dict[str, Any]]) -> None:
        """All of ``envelopes``, in order, to every consumer; raises if any is refused."""
        ...

    def republish(self, envelopes: Sequence[dict[str, Any]], *, audit: bool) -> None:
        """Published again by the reconciliation (messaging.redispatch): to the audit log
        only (``audit``), or to the command consumers only; raises if any is refused."""
        ...


class CeleryPublisher:
    """Sends an event to every task that consumes it, by task name (no worker imports)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish_many(self, envelopes: Sequence[dict[str, Any]]) -> None:
        """Commands first (an SMS or a push waits on them), one message per event; then the
        audit log's copy of all of them in messages of up to ``AUDIT_BATCH_MAX`` events."""
        try:
            self._commands(envelopes)
            self._audit(envelopes)
        except Exception as exc:  # kombu raises transport-specific errors
            raise PublishError(
                f"broker refused a batch of {len(envelopes)}: {type(exc).__name__}"
            ) from exc

    def republish(self, envelopes: Sequence[dict[str, Any]], *, audit: bool) -> None:
        try:
            (self._audit if audit else self._commands)(envelopes)
        except Exception as exc:
            raise PublishError(
                f"broker refused a batch of {len(envelopes)}: {type(exc).__name__}"
            ) from exc

    def _commands(self, envelopes: Sequence[dict[str, Any]]) -> None:
        for envelope in envelopes:
            for route in commands(envelope["type"]):
                self._send(route, [envelope], f"{envelope['event_id']}:{route.task}",
                           f"<{envelope['type']}>")

    def _audit(self, envelopes: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(envelopes), AUDIT_BATCH_MAX):
            batch = list(envelopes[start:start + AUDIT_BATCH_MAX])
            route = AUDIT_APPEND_MANY
            self._send(route, [batch], f"{batch[0]['event_id']}+{len(batch)}:{route.task}",
                       f"<{len(batch)} events>")

    def _send(self, route: Any, args: list[Any], task_id: str, argsrepr: str) -> None:
        # argsrepr: Celery would otherwise put saferepr(args) into the message headers (a
        # third of the publish CPU, and the envelope's content in every broker-side view).
        self._app.send_task(route.task, args=args, queue=route.queue, routing_key=route.queue,
                            task_id=task_id, argsrepr=argsrepr, kwargsrepr="{}")


class RecordingPublisher:
    """Keeps what was published, in order; can be told to fail (broker down)."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        # what the reconciliation sent again: (envelope, True for the audit log's copy)
        self.republished: list[tuple[dict[str, Any], bool]] = []
        self.down = False
        self._lock = threading.Lock()

    def publish_many(self, envelopes: Sequence[dict[str, Any]]) -> None:
        if self.down:
            raise PublishError("broker down (test)")
        with self._lock:
            self.published.extend(envelopes)

    def republish(self, envelopes: Sequence[dict[str, Any]], *, audit: bool) -> None:
        if self.down:
            raise PublishError("broker down (test)")
        with self._lock:
            self.republished.extend((envelope, audit) for envelope in envelopes)

    def types(self) -> list[str]:
        return [e["type"] for e in self.published]
