"""Long-running processes checkpoint SQLite's WAL from a thread of their own, so that no
writer's COMMIT copies and fsyncs a thousand pages while the others queue behind it."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from services.core.db import WalCheckpointer, make_engine


def test_the_checkpointer_takes_over_from_the_automatic_checkpoint(tmp_path: Path):
    db = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    checkpointer = WalCheckpointer(engine, interval=0.05).start()
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        with engine.begin() as conn:  # enough pages that SQLite would have checkpointed itself
            conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 4000} for _ in range(1500)])
        # the rows reach the database file only through a checkpoint: the thread's
        deadline = time.monotonic() + 10
        while db.stat().st_size < 1500 * 4000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size >= 1500 * 4000
    finally:
        checkpointer.stop()
    assert not checkpointer._thread.is_alive()  # noqa: SLF001
    engine.dispose()


def test_a_memory_database_gets_no_checkpointer():
    engine = make_engine("sqlite://")
    checkpointer = WalCheckpointer(engine).start()
    assert not checkpointer._thread.is_alive()  # noqa: SLF001
    checkpointer.stop()
