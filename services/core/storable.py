"""Text a database can keep: refused where it comes in (the API edge, an import file), so a bad
character is a 4xx or a refused record, not a 500 or a crash.

PostgreSQL's text types cannot hold NUL (U+0000), and no database takes a lone surrogate
(JSON's ``"\\ud800"`` decodes to one, and it cannot be encoded as UTF-8). SQLite stores
both, so without this check the same request would succeed on one database and fail with
a server error on the other.
"""

from __future__ import annotations

from typing import Any

REFUSED = "text must not contain NUL characters or unpaired surrogates"


def storable(value: Any) -> bool:
    """Whether every string in ``value`` (nested dicts, lists and keys included) is storable."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(storable(v) for v in value)
    return True
