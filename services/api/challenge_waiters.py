"""Per-process wake-ups for long-polling challenge readers.

A waiter is an ``asyncio.Event`` on the event loop; it holds no thread and no DB
connection. Changes made in this process (the push endpoint answering) wake the
waiters at once through ``notify``, which is safe to call from the threadpool;
changes made elsewhere (another API process, the expiry worker) are seen by the
waiters' periodic re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import defaultdict


class ChallengeWaiters:
    def __init__(self) -> None:
        self._waiting: dict[uuid.UUID, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )
        self._lock = threading.Lock()

    async def wait(self, challenge_id: uuid.UUID, timeout: float) -> bool:
        """Sleep until notified or ``timeout``; True if notified."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting[challenge_id].add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiting.get(challenge_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiting[challenge_id]

    def notify(self, challenge_id: uuid.UUID) -> None:
        with self._lock:
            entries = list(self._waiting.get(challenge_id, ()))
        for loop, event in entries:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                loop.call_soon_threadsafe(event.set)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._waiting.values())


waiters = ChallengeWaiters()
