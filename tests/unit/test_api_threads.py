"""An API process runs at most ``TWOFA_API_THREADS`` units of work in threads at once: on a
database across the network each holds a pooled connection, and the rest of a burst waits
on the event loop instead of queueing for the GIL."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from services.api.app import create_app
from services.core.bootstrap import build_context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from tests.conftest import make_settings


def _most_at_once(settings: Settings, burst: int, bound: int) -> int:
    """The most units of a burst that ran at once. Each stays until one more than ``bound``
    run, or for 0.3 s: long enough for a box that starts threads slowly to show every unit
    the limit lets through, and no longer than that when it holds."""
    ctx = build_context(settings, publisher=RecordingPublisher(), background=False)
    app = create_app(ctx=ctx)
    changed, running, most = threading.Condition(), [0], [0]

    def unit_of_work() -> None:
        with changed:
            running[0] += 1
            most[0] = max(most[0], running[0])
            changed.notify_all()
            changed.wait_for(lambda: running[0] > bound, timeout=0.3)
            running[0] -= 1

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            await asyncio.gather(*(run_in_threadpool(unit_of_work) for _ in range(burst)))

    try:
        asyncio.run(serve())
    finally:
        ctx.engine.dispose()
    return most[0]


def test_a_burst_runs_four_units_of_work_at_once_by_default(settings: Settings) -> None:
    assert Settings.model_fields["api_threads"].default == 4
    assert _most_at_once(settings, burst=12, bound=4) == 4


def test_the_setting_bounds_the_threads(tmp_path: Path, database_url: str) -> None:
    for threads in (2, 12):
        settings = make_settings(tmp_path, database_url, api_threads=threads)
        assert _most_at_once(settings, burst=12, bound=threads) == threads
