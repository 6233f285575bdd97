"""How a SQLite commit reaches the disk, as the database URL names it (``?synchronous=``).

By default (``normal``) the log is flushed at checkpoints, not at each commit; with
``full`` every commit is flushed before it returns, as PostgreSQL does. The choice is a
part of the URL so that every process that opens the database makes the same one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from services.core.bootstrap import build_context
from services.core.plumbing.db import make_engine
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.migrate import upgrade
from tests.conftest import EXTERNAL_DB, make_settings

pytestmark = pytest.mark.skipif(bool(EXTERNAL_DB), reason="SQLite's commits")

NORMAL, FULL = 1, 2  # what PRAGMA synchronous reads


def _levels(url: str, connections: int = 2) -> list[int]:
    """PRAGMA synchronous on as many pooled connections at once (DBAPI connections: a
    SQLAlchemy one would queue for the write lock)."""
    engine = make_engine(url)
    try:
        conns = [engine.raw_connection() for _ in range(connections)]
        try:
            return [c.cursor().execute("PRAGMA synchronous").fetchone()[0] for c in conns]
        finally:
            for c in conns:
                c.close()
    finally:
        engine.dispose()


def test_commits_are_flushed_at_checkpoints_by_default(tmp_path: Path) -> None:
    assert _levels(f"sqlite:///{tmp_path / 'd.db'}") == [NORMAL, NORMAL]


@pytest.mark.parametrize("value", ["full", "FULL"])
def test_the_url_asks_for_every_commit_flushed(tmp_path: Path, value: str) -> None:
    assert _levels(f"sqlite:///{tmp_path / 'd.db'}?synchronous={value}") == [FULL, FULL]
    # The parameter is twofa's, not part of the file's name.
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["d.db"]


@pytest.mark.parametrize("value", ["off", "extra", "on"])
def test_any_other_level_is_refused_before_the_file_is_opened(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="normal, full"):
        make_engine(f"sqlite:///{tmp_path / 'd.db'}?synchronous={value}")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValidationError, match="TWOFA_DATABASE_URL: .*synchronous"):
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'd.db'}?synchronous={value}")


def test_migrations_and_the_service_open_the_named_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'twofa.db'}?synchronous=full"
    upgrade(url)
    assert (tmp_path / "var" / "twofa.db").is_file()
    ctx = build_context(make_settings(tmp_path, url), publisher=RecordingPublisher(),
                        background=False)
    try:
        with ctx.engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == FULL
            assert conn.execute(text("SELECT count(*) FROM tokens")).scalar_one() == 0
    finally:
        ctx.engine.dispose()
