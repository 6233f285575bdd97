"""The in-process group-commit helper: order, failure isolation, lingering only when busy."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.core.plumbing.batching import Batcher


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int]:
        time.sleep(self.delay)
        with self.lock:
            self.batches.append(list(items))
        if 13 in items:
            raise ValueError("unlucky")
        return [i * 10 for i in items]


def test_each_caller_gets_its_own_result_and_an_idle_call_runs_alone() -> None:
    run = Recorder()
    batcher = Batcher("t", run, linger=5.0)
    started = time.monotonic()
    assert batcher(1) == 10
    assert batcher(2) == 20
    assert time.monotonic() - started < 1.0  # batches of one never linger
    assert run.batches == [[1], [2]]


def test_concurrent_callers_share_batches() -> None:
    run = Recorder(delay=0.05)
    batcher = Batcher("t", run, linger=0.05)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(batcher, range(100, 164)))
    assert results == [i * 10 for i in range(100, 164)]
    assert sorted(i for b in run.batches for i in b) == list(range(100, 164))
    assert len(run.batches) < 16


def test_a_failing_batch_fails_only_the_bad_item() -> None:
    run = Recorder(delay=0.05)
    batcher = Batcher("t", run, linger=0.05)
    futures = [batcher.submit(i) for i in (11, 12, 13, 14)]
    with pytest.raises(ValueError, match="unlucky"):
        futures[2].result(5)
    assert [f.result(5) for f in (futures[0], futures[1], futures[3])] == [110, 120, 140]
    assert [13] in run.batches  # rerun one by one after the batch with 13 failed


def test_a_wrong_number_of_results_is_an_error_not_a_mixup() -> None:
    batcher: Batcher[int, int] = Batcher("t", lambda items: [1])
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher, i) for i in range(8)]
        assert all(f.result(5) == 1 for f in futures)  # one by one, each got its single result
