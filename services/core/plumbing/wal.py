"""SQLite's write-ahead log, checkpointed off the request path.

SQLite folds the WAL back into the database file (a checkpoint: a few MiB written and two
fsyncs) inside whichever commit pushes the log past ``wal_autocheckpoint`` pages. Left at
its default that commit is, most of the time, an API request's, which then holds the
event loop for milliseconds while every other request waits behind it. So the threshold
is raised (``db.WAL_AUTOCHECKPOINT_PAGES``) far enough that a request meets it only when
housekeeping has stopped, and the relay checkpoints once a pass instead: PASSIVE, which
never waits for readers or writers and never takes the write lock, so nobody queues
behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.core.plumbing.db import read_only

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Checkpoint:
    log_pages: int  # frames in the log when it ran
    copied: int  # of them, now in the database file

    @property
    def complete(self) -> bool:
        return self.copied == self.log_pages


def checkpoint(engine: Engine) -> Checkpoint | None:
    """One PASSIVE checkpoint; None on a database that is not SQLite. A log fully copied
    is rewritten from its start by the next writer, so it stays as small as one pass's
    writes."""
    if engine.dialect.name != "sqlite":
        return None
    with read_only(engine) as conn:
        busy, log_pages, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    if busy:
        log.debug("WAL checkpoint found the database busy")
    return Checkpoint(int(log_pages), int(copied))
