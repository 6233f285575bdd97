"""SQLite's write-ahead log, checkpointed off the request path.

SQLite folds the WAL back into the database file (a checkpoint: a few MiB written and two
fsyncs) inside whichever commit pushes the log past ``wal_autocheckpoint`` pages. Left at
its default that commit is, most of the time, an API request's, which then holds the
event loop for milliseconds while every other request waits behind it. So the threshold
is raised (``db.WAL_AUTOCHECKPOINT_PAGES``) far enough that a request meets it only when
housekeeping has stopped, and the relay checkpoints instead, from a thread of its own every
``wal_checkpoint_interval_seconds``. The interval is short because a busy API fills the log
past the threshold within a second (a login appends about fifteen pages). The bulk of each
checkpoint is PASSIVE, beside the writers, waiting for nobody; only a short tail runs in
the write slot (``checkpoint``).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.core.plumbing.db import read_only, writer_queue

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Checkpoint:
    log_pages: int  # frames in the log when it ran
    copied: int  # of them, now in the database file
    busy: bool = False  # another checkpoint was running

    @property
    def complete(self) -> bool:
        return self.copied == self.log_pages


# A log this long is finished in the write slot (see ``checkpoint``); a shorter one is left
# to grow, so that a quiet database is not locked five times a second for nothing.
FINISH_AT_PAGES = 1_000


def checkpoint(engine: Engine) -> Checkpoint | None:
    """Copy the log into the database file; None on a database that is not SQLite.

    Under load, writers append to the log while a checkpoint copies it, so a checkpoint beside
    them never finds the log wholly copied, the log is never started again, and it grows to
    the autocheckpoint threshold: then a request's commit checkpoints. So a long log is done
    in two passes. The first copies the bulk beside the writers; the database file's new pages
    are then synced outside the lock; the second pass, in the write slot, copies only what
    was appended meanwhile, and its syncs find little to write. A log fully copied is
    rewritten from its start by the next writer."""
    if engine.dialect.name != "sqlite":
        return None
    bulk = _passive(engine)
    slot = writer_queue(engine)
    database = engine.url.database
    if slot is None or not database or bulk.busy or bulk.log_pages < FINISH_AT_PAGES:
        return bulk
    _sync_file(database)
    with slot.held():
        return _passive(engine)


def _passive(engine: Engine) -> Checkpoint:
    with read_only(engine) as conn:
        busy, log_pages, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    if busy:
        log.debug("WAL checkpoint found the database busy")
    return Checkpoint(int(log_pages), int(copied), bool(busy))


def _sync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def keep_checkpointed(engine: Engine, stop: threading.Event, every: float) -> None:
    """Checkpoint now and then every ``every`` seconds until ``stop`` is set (the relay's
    thread). A failure (the database away) is logged and tried again next time."""
    while True:
        try:
            checkpoint(engine)
        except Exception as exc:
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)
        if stop.wait(every):
            return
