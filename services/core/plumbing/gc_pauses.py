"""Keeps the cyclic garbage collector's pauses short in long-running processes.

A process that has started holds a large heap of objects that live as long as it does:
modules, the app and its routes, SQLAlchemy's mappers and compiled statements, pydantic's
validators. Every full collection walks all of them, and the process does nothing else
meanwhile: an API process answers no request, a worker holding SQLite's write lock keeps
every other writer waiting. Frozen once start-up is over, they are left out of every later
collection, which then walks only what was made since.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move every object alive now out of the collector's reach (``gc.freeze``). Garbage
    is collected first, so that none of it is kept for the process's lifetime."""
    gc.collect()
    gc.freeze()
