"""SQLite's write-ahead log is checkpointed by the relay, not inside a request's commit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.core.plumbing import wal
from services.core.plumbing.db import WAL_AUTOCHECKPOINT_PAGES, make_engine
from services.workers import relay
from tests.conftest import EXTERNAL_DB, make_settings
from tests.integration.helpers import write_slot_taken

pytestmark = pytest.mark.skipif(bool(EXTERNAL_DB), reason="SQLite's write-ahead log")

# More commits than SQLite's default threshold (1000 pages): each one appends a page or more.
COMMITS = 1_200


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return engine


def _commit_many(engine: Engine, n: int) -> None:
    for i in range(n):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"row {i}"})


def _log_pages(engine: Engine) -> int:
    """Frames in the log now (a PASSIVE checkpoint reports them; copying them is harmless)."""
    found = wal.checkpoint(engine)
    assert found is not None
    return found.log_pages


def test_every_connection_leaves_checkpoints_to_housekeeping(engine: Engine) -> None:
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == WAL_AUTOCHECKPOINT_PAGES


def test_commits_past_the_default_threshold_do_not_checkpoint(engine: Engine) -> None:
    _commit_many(engine, COMMITS)
    # With SQLite's default a commit would have copied the log back and restarted it.
    assert _log_pages(engine) >= COMMITS


def test_a_checkpoint_copies_the_whole_log_and_the_next_writer_starts_it_again(
    engine: Engine,
) -> None:
    _commit_many(engine, 50)
    done = wal.checkpoint(engine)
    assert done is not None and done.log_pages >= 50 and done.complete
    _commit_many(engine, 1)
    assert _log_pages(engine) < 10  # rewritten from the start, not appended to
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 51


def test_a_checkpoint_waits_for_no_reader(engine: Engine) -> None:
    _commit_many(engine, 20)
    reader = engine.raw_connection()
    try:
        cur = reader.cursor()
        cur.execute("BEGIN")
        cur.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot
        _commit_many(engine, 20)
        done = wal.checkpoint(engine)  # returns at once, copying what the reader allows
        cur.execute("ROLLBACK")
    finally:
        reader.close()
    assert done is not None and 0 < done.copied < done.log_pages


def test_the_relay_checkpoints(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    _commit_many(engine, 30)
    passed = threading.Event()
    real = wal.checkpoint

    def spy(relay_engine: Engine) -> wal.Checkpoint | None:
        done = real(relay_engine)
        passed.set()
        return done

    monkeypatch.setattr(relay.wal, "checkpoint", spy)
    stop = threading.Event()
    runner = threading.Thread(
        target=relay.run, args=(make_settings(tmp_path, database_url, broker_url="memory://"), stop)
    )
    runner.start()
    try:
        assert passed.wait(10)  # the first checkpoint runs at once
    finally:
        stop.set()
        runner.join(10)
    # The relay copied the whole log: the next commit starts it again from the start.
    _commit_many(engine, 1)
    assert _log_pages(engine) < 10
    engine.dispose()


def _slot_taken(engine: Engine) -> bool:
    return write_slot_taken(f"{engine.url.database}.writer-lock")


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> list[bool]:
    """For each pass of a checkpoint: whether it ran in the write slot."""
    seen: list[bool] = []
    real = wal._passive

    def spy(checkpointed: Engine) -> wal.Checkpoint:
        seen.append(_slot_taken(engine))
        return real(checkpointed)

    monkeypatch.setattr(wal, "_passive", spy)
    return seen


def test_a_long_log_that_writers_appended_to_meanwhile_is_finished_in_the_write_slot(
    engine: Engine, passes: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    _commit_many(engine, wal.FINISH_AT_PAGES)
    reader = engine.raw_connection()  # keeps the first pass from the newest frames
    cur = reader.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT count(*) FROM t").fetchone()
    _commit_many(engine, 5)
    real_sync = wal._sync_file

    def meanwhile(path: str) -> None:  # the reader leaves, writers append
        cur.execute("ROLLBACK")
        _commit_many(engine, 5)
        real_sync(path)

    monkeypatch.setattr(wal, "_sync_file", meanwhile)
    try:
        done = wal.checkpoint(engine)
    finally:
        reader.close()
    assert passes == [False, True]
    assert done is not None and done.complete
    assert done.log_pages >= wal.FINISH_AT_PAGES + 10  # the late commits were copied too
    _commit_many(engine, 1)
    assert _log_pages(engine) < 10  # so the next writer started the log again
    assert not _slot_taken(engine)


def test_a_short_log_is_copied_without_the_write_slot(
    engine: Engine, passes: list[bool]
) -> None:
    _commit_many(engine, 20)
    done = wal.checkpoint(engine)
    assert passes == [False]
    assert done is not None and done.complete
