"""SQLite's write slot and the API's event loop: ``run_db`` waits for the slot without
blocking the loop while another process writes, gives it back however the unit of work
ends, and threads (the workers' way) still take it per transaction."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from services.api.deps import run_db
from services.core.challenges import service as challenges
from services.core.models import Challenge
from services.core.plumbing import db
from services.core.plumbing.context import Context
from tests.integration.helpers import active_totp, totp_code, write_slot_taken

from ..conftest import EXTERNAL_DB

pytestmark = pytest.mark.skipif(bool(EXTERNAL_DB), reason="the write slot is SQLite's")

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


class OtherProcess:
    """Another process of the same database, in the middle of a write (it holds the file
    lock the writers of every process queue on)."""

    def __init__(self, lock_file: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(lock_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def commit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
def lock_file(ctx: Context) -> Path:
    database = ctx.engine.url.database
    assert database is not None
    return Path(database + ".writer-lock")


@pytest.fixture
def other_writer(lock_file: Path) -> Iterator[Callable[[], OtherProcess]]:
    """Starts another process's write (after the test's own setup has written)."""
    started: list[OtherProcess] = []

    def start() -> OtherProcess:
        started.append(OtherProcess(lock_file))
        return started[-1]

    yield start
    for other in started:
        if other.proc.poll() is None:
            other.commit()


def login_user(ctx: Context, api, enroll_headers, clock) -> str:
    """alice, with an active TOTP factor: the code a login checks."""
    _, secret = active_totp(api, enroll_headers, clock)
    return totp_code(secret, clock)


def challenge_count(ctx: Context) -> int:
    with db.read_only(ctx.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(Challenge)).scalar_one())


def slot_free(ctx: Context, seconds: float = 5.0) -> bool:
    """Whether a worker's transaction (a thread, the synchronous way) gets the slot."""
    done = threading.Event()

    def write() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done.wait(seconds)


async def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_the_loop_serves_others_while_another_process_writes(
    ctx, api, enroll_headers, clock, other_writer
):
    code = login_user(ctx, api, enroll_headers, clock)
    before = challenge_count(ctx)
    writer = other_writer()

    async def main() -> None:
        login = asyncio.create_task(
            run_db(ctx, challenges.login, ctx, "alice", "sso", code, None, None)
        )
        # The other process commits a second from now, whether or not this loop runs.
        commit = threading.Timer(1.0, writer.commit)
        commit.start()
        ticks = 0
        for _ in range(10):  # the loop keeps running other coroutines meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not login.done()  # it waits for the slot; nothing of it ran yet
        assert challenge_count(ctx) == before
        result = await asyncio.wait_for(login, 10)
        assert result is not None and result.verified
        commit.join()

    asyncio.run(main())
    assert challenge_count(ctx) == before + 1
    assert slot_free(ctx)


def test_a_free_slot_is_taken_without_the_waiter_thread(ctx):
    threads = threading.active_count()
    assert asyncio.run(run_db(ctx, lambda: 42)) == 42
    assert threading.active_count() == threads
    assert slot_free(ctx)


def test_the_transactions_of_a_unit_of_work_run_in_the_slot_it_holds(ctx, lock_file):
    def probe() -> bool:  # another process could write now
        return not write_slot_taken(str(lock_file))

    def unit_of_work() -> list[bool]:
        seen = []
        for _ in range(3):  # each commit leaves the slot with the unit of work
            with ctx.engine.begin() as conn:
                conn.execute(text("SELECT 1"))
            seen.append(probe())
        return seen

    assert asyncio.run(run_db(ctx, unit_of_work)) == [False, False, False]
    assert probe()
    assert slot_free(ctx)


def test_the_slot_is_given_back_after_an_exception(ctx, other_writer):
    writer = other_writer()
    def failing() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            raise RuntimeError("boom")

    async def main() -> None:
        task = asyncio.create_task(run_db(ctx, failing))
        await asyncio.sleep(0.05)
        writer.commit()
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert slot_free(ctx)


@pytest.mark.parametrize("queued_behind", [0, 1])
def test_the_slot_is_given_back_when_the_waiting_request_is_cancelled(
    ctx, other_writer, queued_behind
):
    writer = other_writer()
    ran = []

    async def main() -> None:
        # queued_behind=1: the cancelled one is still in the waiter's queue, not yet waiting
        ahead = [asyncio.create_task(run_db(ctx, ran.append, "ahead")) for _ in range(queued_behind)]
        task = asyncio.create_task(run_db(ctx, ran.append, "cancelled"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        writer.commit()
        await asyncio.wait_for(asyncio.gather(*ahead), 10)

    asyncio.run(main())
    assert ran == ["ahead"] * queued_behind
    assert slot_free(ctx)


def test_units_of_work_queued_on_the_loop_hand_the_slot_on(ctx, other_writer, monkeypatch):
    """While another process writes, the loop's units of work queue in order; the first
    asks the waiter thread for the slot and each hands it to the next as it ends, so the
    waiter takes it once, not once per unit of work."""
    takes: list[str] = []
    take = db._WriterQueue._take

    def counting_take(self: db._WriterQueue) -> None:
        takes.append(threading.current_thread().name)
        take(self)

    monkeypatch.setattr(db._WriterQueue, "_take", counting_take)
    writer = other_writer()
    ran: list[int] = []
    units = db._WriterQueue.HANDOFFS

    async def main() -> None:
        tasks = [asyncio.create_task(run_db(ctx, ran.append, i)) for i in range(units)]
        await asyncio.sleep(0.05)
        assert ran == []
        writer.commit()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    asyncio.run(main())
    assert ran == list(range(units))
    assert takes == ["sqlite-write-slot"]
    assert slot_free(ctx)


def test_a_waiting_thread_writes_between_the_loop_s_hand_offs(ctx, other_writer):
    """The loop hands the slot on at most ``HANDOFFS`` times in a row, then gives it back to
    the queue of the file lock: a worker thread waiting meanwhile gets its turn before the
    loop's queue has run dry."""
    writer = other_writer()
    order: list[str] = []
    waiting = threading.Event()

    def thread_write() -> None:
        waiting.set()
        with ctx.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            order.append("thread")

    units = 3 * (db._WriterQueue.HANDOFFS + 1)

    async def main() -> None:
        tasks = [asyncio.create_task(run_db(ctx, order.append, "loop")) for _ in range(units)]
        await asyncio.sleep(0.05)
        worker = threading.Thread(target=thread_write, daemon=True)
        worker.start()
        assert waiting.wait(5)
        await asyncio.sleep(0.05)
        writer.commit()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await asyncio.to_thread(worker.join, 10)

    asyncio.run(main())
    assert order.count("loop") == units and "thread" in order
    # after at most two rounds of hand-offs (the waiter thread may take the slot first once)
    assert order.index("thread") <= 2 * (db._WriterQueue.HANDOFFS + 1)
    assert slot_free(ctx)


def test_a_thread_s_transaction_waits_for_the_slot_the_loop_holds(ctx):
    """The synchronous way (workers, the relay, the thread pool) is unchanged: each
    transaction takes the slot in ``begin`` and waits while the loop's unit of work
    holds it."""
    finished: list[float] = []

    def thread_write() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        finished.append(time.monotonic())

    def unit_of_work() -> float:
        threading.Thread(target=thread_write, daemon=True).start()
        time.sleep(0.2)
        assert finished == []  # still queued behind this unit of work
        return time.monotonic()

    gave_back = asyncio.run(run_db(ctx, unit_of_work))
    deadline = time.monotonic() + 5
    while not finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished and finished[0] >= gave_back


def test_no_slot_within_the_wait_is_a_timeout_and_the_loop_keeps_running(ctx, monkeypatch):
    monkeypatch.setattr(db._WriterQueue, "WAIT_SECONDS", 0.2)
    opened, close, committed = threading.Event(), threading.Event(), threading.Event()

    def long_write() -> None:  # a thread of this process in a long transaction
        with ctx.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            opened.set()
            close.wait(10)
        committed.set()  # its slot still its own to give back: the loop's timeout left it

    threading.Thread(target=long_write, daemon=True).start()
    assert opened.wait(5)

    async def main() -> int:
        task = asyncio.create_task(run_db(ctx, lambda: None))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(TimeoutError, match="no SQLite write slot within"):
            task.result()
        return ticks

    try:
        assert asyncio.run(main()) >= 5
    finally:
        close.set()
    assert committed.wait(5)
    assert slot_free(ctx)
