"""After-commit dispatch of outbox rows, and the relay that republishes stragglers.

The request path never waits on the broker: after commit the unit of work hands the
new rows to a dispatcher. The background dispatcher publishes from its own thread and
marks rows published; anything it could not send (broker down, process killed) stays
unpublished and the relay sends it later. Consumers de-duplicate on ``event_id``, so
a row published twice is harmless.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine

from services.core.models import OutboxEvent
from services.core.plumbing.batching import take_batch
from services.core.plumbing.clock import Clock
from services.core.plumbing.db import finds_any
from services.core.plumbing.messaging.publisher import Publisher, PublishError
from services.core.plumbing.messaging.routes import commands

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None: ...


class Marker(Protocol):
    """Marks published rows later, many publishes' rows in one UPDATE."""

    def mark(self, seqs: Sequence[int]) -> None: ...


def publish_rows(
    rows: Sequence[tuple[int, dict[str, Any]]],
    publisher: Publisher,
    engine: Engine,
    clock: Clock,
    marker: Marker | None = None,
) -> int:
    """Publish in order (as one batch); mark what was sent.

    A refused batch is marked not at all: the relay sends it again later, and consumers
    de-duplicate on ``event_id``. With a ``marker`` the ``published_at`` update is left to
    it: a mark lost in a crash only means the relay publishes the row again.
    """
    try:
        publisher.publish_many([envelope for _, envelope in rows])
    except PublishError as exc:
        log.warning("publish failed, the relay will retry: %s", exc)
        return 0
    sent = [seq for seq, _ in rows]
    if sent:
        if marker is not None:
            marker.mark(sent)
        else:
            mark_published(engine, clock, sent)
    return len(sent)


# Core on a connection, not an ORM bulk update in a Session: the session's transaction and the
# ORM's update machinery cost several times the statement, on a thread that shares the GIL
# with the API's event loop.
_MARK_PUBLISHED = (
    update(OutboxEvent)
    .where(OutboxEvent.seq.in_(bindparam("b_seqs", expanding=True)))
    .values(published_at=bindparam("b_at"))
)


def mark_published(engine: Engine, clock: Clock, seqs: Sequence[int]) -> None:
    with engine.begin() as conn:
        conn.execute(_MARK_PUBLISHED, {"b_seqs": list(seqs), "b_at": clock.now()})


class PublishedMarker:
    """Marks published rows in batches from one daemon thread (one UPDATE per batch).

    For high-rate publishers (the SMS worker: one event per message): marking each row in a
    write transaction of its own is a large share of the worker's database writes. Pending
    marks are flushed at interpreter exit; marks lost to a crash only cause a harmless
    republish by the relay.
    """

    def __init__(self, engine: Engine, clock: Clock, *, max_batch: int = 500,
                 linger: float = 0.05) -> None:
        self._engine, self._clock = engine, clock
        self._max_batch, self._linger = max_batch, linger
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="outbox-mark", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def mark(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self._queue.put(seq)

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            # Linger briefly so that one transaction covers the rows of many messages.
            batch, stop = take_batch(self._queue, self._max_batch, self._linger)
            if batch:
                try:
                    mark_published(self._engine, self._clock, batch)
                except Exception:  # never let the thread die; the relay covers the rows
                    log.exception("marking %d outbox rows published failed", len(batch))
            if stop:
                return


class InlineDispatcher:
    """Publishes in the calling thread, right after commit (workers, tests).

    ``marker``: leave the ``published_at`` update to a :class:`PublishedMarker` (workers).
    """

    def __init__(self, publisher: Publisher, engine: Engine, clock: Clock,
                 marker: PublishedMarker | None = None) -> None:
        self._publisher, self._engine, self._clock = publisher, engine, clock
        self._marker = marker

    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        publish_rows(rows, self._publisher, self._engine, self._clock, self._marker)


class RelayDispatcher:
    """Publishes nothing itself: the outbox relay sends what was committed (short-lived
    admin commands, which should not wait for a broker)."""

    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        return None


class BackgroundDispatcher:
    """Publishes from one daemon thread, batching rows, so a request never waits.

    Events that only the audit log consumes wait up to ``linger`` s for company
    (``audit_linger_seconds``): the audit consumer appends a message's events in one
    transaction, whose fixed cost (the chain's lock and head, the duplicate check, the
    commit) is most of what an event of a small batch costs it, and one message per login
    step kept it thousands of events behind under load. An event with another consumer
    (an SMS or a push to send) is published at once, with whatever is queued.

    The same thread marks what it published: in one UPDATE for the batches published
    within ``mark_every`` s, since each write transaction takes the write lock the
    requests queue for. ``dispatch`` wakes the thread only when a batch starts (the first
    row after an empty buffer) or for a command; rows that join a lingering batch are
    appended without a wake-up, since each wake-up of a thread costs the calling thread
    (the API's event loop) a hand-off of the GIL. ``close()``, which also runs at
    interpreter exit, publishes and marks what is pending.
    """

    def __init__(self, publisher: Publisher, engine: Engine, clock: Clock,
                 *, linger: float, mark_every: float = 0.05,
                 max_batch: int = 500) -> None:
        self._publisher, self._engine, self._clock = publisher, engine, clock
        self._linger, self._max_batch = linger, max_batch
        self._marks = _DeferredMarks(mark_every)  # the thread's own
        self._wake = threading.Condition(threading.Lock())
        self._rows: list[tuple[int, dict[str, Any]]] = []
        self._started = 0.0  # when the first row of the pending batch arrived
        self._hurry = False  # the pending batch holds a command, or is full
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="outbox-dispatch", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def dispatch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        if not rows:
            return
        with self._wake:
            starts = not self._rows
            if starts:
                self._started = time.monotonic()
            self._rows.extend(rows)
            hurry = not self._hurry and (
                len(self._rows) >= self._max_batch or any(map(_has_command, rows)))
            if hurry:
                self._hurry = True
            if starts or hurry:
                self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        marks = self._marks
        while True:
            batch, stop = self._take(marks.due if marks.seqs else None)
            if batch:
                self._flush(batch)
            if marks.seqs and (stop or time.monotonic() >= marks.due):
                self._mark(marks.take())
            if stop:
                return

    def _take(self, until: float | None) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """Wait for a batch to start (or ``until``, when marks are due), linger for company,
        take it (at most ``max_batch``)."""
        with self._wake:
            while not self._rows and not self._closing:
                if until is None:
                    self._wake.wait()
                elif (left := until - time.monotonic()) > 0:
                    self._wake.wait(left)
                else:
                    return [], False
            while not (self._hurry or self._closing):
                left = self._started + self._linger - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            batch, self._rows = self._rows[:self._max_batch], self._rows[self._max_batch:]
            self._started = time.monotonic()
            self._hurry = len(self._rows) >= self._max_batch or any(map(_has_command, self._rows))
            return batch, self._closing and not self._rows

    def _flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        try:
            publish_rows(batch, self._publisher, self._engine, self._clock, self._marks)
        except Exception:  # never let the thread die; the relay covers the rows
            log.exception("outbox dispatch failed")

    def _mark(self, seqs: list[int]) -> None:
        try:
            mark_published(self._engine, self._clock, seqs)
        except Exception:  # never let the thread die; the relay covers the rows
            log.exception("marking %d outbox rows published failed", len(seqs))


class _DeferredMarks:
    """Published rows not marked yet, and when the oldest of them is due to be."""

    def __init__(self, every: float) -> None:
        self._every = every
        self.seqs: list[int] = []
        self.due = 0.0

    def mark(self, seqs: Sequence[int]) -> None:
        if not self.seqs:
            self.due = time.monotonic() + self._every
        self.seqs.extend(seqs)

    def take(self) -> list[int]:
        seqs, self.seqs = self.seqs, []
        return seqs


def _has_command(row: tuple[int, dict[str, Any]]) -> bool:
    return bool(commands(row[1]["type"]))


def relay_once(ctx: Context, *, grace_seconds: float, batch_size: int) -> int:
    """Republish rows left unpublished for longer than ``grace_seconds``, oldest first.

    Reads first: the relay runs every ``relay_interval_seconds``, and a write transaction
    when nothing is owed would take the write lock (on SQLite, every process's) each time.
    """
    cutoff: datetime = ctx.clock.now() - timedelta(seconds=grace_seconds)
    owed = (
        select(OutboxEvent.seq, OutboxEvent.envelope)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.created_at <= cutoff)
        .order_by(OutboxEvent.seq)
    )
    if not finds_any(ctx.engine, owed):
        return 0
    with ctx.sessions() as session:
        query = owed.limit(batch_size)
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
    return publish_rows(rows, ctx.publisher, ctx.engine, ctx.clock)
