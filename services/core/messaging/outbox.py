"""After-commit dispatch of outbox rows, and the relay that republishes stragglers.

The request path never waits on the broker: after commit the unit of work hands the
new rows to a dispatcher. The background dispatcher publishes from its own thread and
marks rows published; anything it could not send (broker down, process killed) stays
unpublished and the relay sends it later. Consumers de-duplicate on ``event_id``, so
a row published twice is harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.core.clock import Clock
from services.core.messaging.publisher import PublishError, Publisher
from services.core.models import OutboxEvent

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None: ...


def publish_rows(
    rows: Sequence[tuple[int, dict[str, Any]]],
    publisher: Publisher,
    sessions: sessionmaker[Session],
    clock: Clock,
) -> int:
    """Publish in order; mark what was sent. Stops at the first failure (order matters)."""
    sent: list[int] = []
    try:
        for seq, envelope in rows:
            publisher.publish(envelope)
            sent.append(seq)
    except PublishError as exc:
        log.warning("publish failed, the relay will retry: %s", exc)
    if sent:
        with sessions.begin() as session:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.seq.in_(sent))
                .values(published_at=clock.now())
            )
    return len(sent)


class InlineDispatcher:
    """Publishes in the calling thread, right after commit (workers, tests)."""

    def __init__(self, publisher: Publisher, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._publisher, self._sessions, self._clock = publisher, sessions, clock

    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        publish_rows(rows, self._publisher, self._sessions, self._clock)


class BackgroundDispatcher:
    """Publishes from one daemon thread, batching rows, so a request never waits."""

    def __init__(self, publisher: Publisher, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._publisher, self._sessions, self._clock = publisher, sessions, clock
        self._queue: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="outbox-dispatch", daemon=True)
        self._thread.start()

    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for row in rows:
            self._queue.put(row)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 500:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._flush(batch)
                    return
                batch.append(item)
            self._flush(batch)

    def _flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        try:
            publish_rows(batch, self._publisher, self._sessions, self._clock)
        except Exception:  # never let the thread die; the relay covers the rows
            log.exception("outbox dispatch failed")


def relay_once(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    clock: Clock,
    *,
    grace_seconds: float,
    batch_size: int,
) -> int:
    """Republish rows left unpublished for longer than ``grace_seconds``, oldest first."""
    cutoff: datetime = clock.now() - timedelta(seconds=grace_seconds)
    with sessions() as session:
        query = (
            select(OutboxEvent.seq, OutboxEvent.envelope)
            .where(OutboxEvent.published_at.is_(None), OutboxEvent.created_at <= cutoff)
            .order_by(OutboxEvent.seq)
            .limit(batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [(seq, env) for seq, env in session.execute(query)]
        if not rows:
            return 0
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.seq.in_([s for s, _ in rows]))
            .values(attempts=OutboxEvent.attempts + 1)
        )
        session.commit()
    return publish_rows(rows, publisher, sessions, clock)
