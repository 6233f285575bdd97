"""Group commit inside one process: many threads' small transactions become one.

A worker thread hands its item to a :class:`Batcher` and waits on the returned future. One
daemon thread takes every item queued since its last run and calls ``run_batch`` on all of
them together, so a busy process pays for one transaction (BEGIN, COMMIT, statement
compilation) per batch instead of per item. Batches grow by themselves while the previous
one runs; under load that is too little (1.5 items per claim batch at 160 SMS/s), so after a
batch of more than one item the thread also *lingers*, up to ``linger`` seconds, for more.
An idle process (batches of one) never lingers, so it adds no latency.

If a batch fails, each of its items is run again on its own, so one bad item (a constraint
violation, a row another process holds) fails only its own caller.

``take_batch`` is the draining step, shared with the outbox's marking thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)

log = logging.getLogger(__name__)


class ItemSource(Protocol[T_co]):
    """The reading side of a ``queue.Queue`` or ``queue.SimpleQueue``."""

    def get(self, block: bool = True, timeout: float | None = None) -> T_co: ...


def take_batch(q: ItemSource[T | None], max_batch: int, linger: float) -> tuple[list[T], bool]:
    """Block for one item, then take what arrives within ``linger`` s (at most ``max_batch``).

    Returns the batch and whether the stop sentinel (None) was seen.
    """
    first = q.get()
    if first is None:
        return [], True
    batch: list[T] = [first]
    deadline = time.monotonic() + linger
    while len(batch) < max_batch:
        try:
            item = q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


class Batcher(Generic[T, R]):
    """``run_batch(items)`` returns one result per item, in order, or raises for all."""

    def __init__(self, name: str, run_batch: Callable[[Sequence[T]], Sequence[R]], *,
                 max_batch: int = 128, linger: float = 0.0) -> None:
        self._name, self._run_batch, self._max_batch = name, run_batch, max_batch
        self._linger = linger
        self._queue: queue.SimpleQueue[tuple[T, Future[R]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __call__(self, item: T) -> R:
        """Run ``item`` in the next batch and wait for its result (or its exception)."""
        return self.submit(item).result()

    def submit(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        self._ensure_thread()
        self._queue.put((item, future))
        return future

    def _ensure_thread(self) -> None:
        # Started on first use, not at construction: a Celery worker builds it after the
        # fork, and a process that never sends an SMS never gets the thread.
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        busy = False
        while True:
            batch, _ = take_batch(self._queue, self._max_batch, self._linger if busy else 0.0)
            busy = len(batch) > 1
            self._run(batch)

    def _run(self, batch: list[tuple[T, Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = self._run_batch(items)
            if len(results) != len(items):
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
        except Exception as exc:  # retried item by item below
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.warning("%s: a batch of %d failed (%s); running them one by one",
                        self._name, len(batch), type(exc).__name__)
            for item, future in batch:
                self._run([(item, future)])
            return
        except BaseException as exc:  # the thread lives on: a dead one would hang every caller
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
