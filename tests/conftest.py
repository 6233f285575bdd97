"""Shared fixtures: a fresh database per test, a frozen clock, a recording publisher.

The database is SQLite in a temp dir by default; set ``TWOFA_DATABASE_URL`` (as
``.ci/run`` does) to run the same tests on PostgreSQL, where every test starts from
truncated tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from services.core.bootstrap import build_context
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.plumbing.db import Base, make_engine
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings

for _var in ("TWILIO_EDGE", "TWILIO_REGION"):  # the twilio client rewrites hosts from these
    os.environ.pop(_var, None)

EXTERNAL_DB = os.environ.get("TWOFA_DATABASE_URL", "")
T0 = datetime(2026, 11, 28, 20, 0, 0, tzinfo=UTC)
_schema_ready: set[str] = set()


def _prepare_external(url: str) -> None:
    engine = make_engine(url)
    if url not in _schema_ready:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        from services.core.plumbing.migrate import upgrade

        upgrade(url, engine)
        _schema_ready.add(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(autouse=True)
def _umask_kept() -> Iterator[None]:
    """``twofa``'s main() makes new files private (umask 077); a test that calls it in
    process must not change the modes of what later tests create."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    if EXTERNAL_DB:
        _prepare_external(EXTERNAL_DB)
        return EXTERNAL_DB
    url = f"sqlite:///{tmp_path / 'twofa.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "encryption_keys": Fernet.generate_key().decode(),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def ctx(settings: Settings, clock: FrozenClock, publisher: RecordingPublisher) -> Iterator[Context]:
    context = build_context(settings, publisher=publisher, background=False, clock=clock)
    yield context
    context.engine.dispose()
