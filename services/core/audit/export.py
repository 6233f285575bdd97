"""``twofa audit export``: the whole log as JSON Lines, one row per line, in position order.

Each line is the row as ``query.row_dict`` gives it, serialised canonically (JCS), so
an auditor can recompute every hash from the export alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from sqlalchemy.orm import Session

from services.core.audit import query
from services.core.plumbing import canonical_json


def export_jsonl(
    session: Session, out: TextIO, *, progress: Callable[[int], None] | None = None
) -> int:
    """Write every row to ``out``; calls ``progress(n)`` after each batch. Returns the row count."""
    written = 0
    for entry in query.iterate(session):
        out.write(canonical_json.canonicalize(query.row_dict(entry)).decode())
        out.write("\n")
        written += 1
        if progress is not None and written % query.MAX_PAGE == 0:
            progress(written)
    if progress is not None:
        progress(written)
    return written
