"""How SQLite reads the database: through each connection's page cache, not a memory map.

SQLite unmaps a connection's whole map when another connection has committed since that
connection's last transaction, and the next read maps the file again and faults every page
it touches. With the API's connections, the relay and the audit consumer all writing, that
was nearly every transaction, and it cost a login more CPU than reading into the page cache
(``bench/compare/HISTORY.md``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from services.core.plumbing.db import make_engine
from tests.conftest import EXTERNAL_DB

pytestmark = pytest.mark.skipif(bool(EXTERNAL_DB), reason="SQLite's reads")


def test_connections_do_not_memory_map_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'reads.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t (id) VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA mmap_size")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        engine.dispose()
