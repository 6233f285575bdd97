"""The batching the outbox's marking thread and the Batcher use: block for one, take what follows, stop on None."""

from __future__ import annotations

import queue

from services.core.plumbing.batching import take_batch


def test_takes_what_is_queued_up_to_the_limit() -> None:
    q: queue.Queue[int | None] = queue.Queue()
    for i in range(5):
        q.put(i)
    assert take_batch(q, 3, linger=0.0) == ([0, 1, 2], False)
    assert take_batch(q, 3, linger=0.0) == ([3, 4], False)


def test_the_sentinel_ends_the_batch_and_the_loop() -> None:
    q: queue.Queue[int | None] = queue.Queue()
    q.put(1)
    q.put(None)
    q.put(2)
    assert take_batch(q, 10, linger=0.0) == ([1], True)
    q2: queue.Queue[int | None] = queue.Queue()
    q2.put(None)
    assert take_batch(q2, 10, linger=0.0) == ([], True)
