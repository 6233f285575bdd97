"""The Alembic migrations build exactly the schema the models describe, their files are
named in chain order, and a database migrated by an earlier release keeps upgrading."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

import services.core.models  # noqa: F401
from services.core.plumbing.db import Base, make_engine
from services.core.plumbing.migrate import alembic_config, upgrade

# The head revision databases were created at before the files were renamed.
RELEASED_HEAD = "0003"


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                         Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade(url)
    assert _schema_diff(url) == []


def test_file_names_follow_the_chain() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    chain = list(reversed(list(scripts.walk_revisions())))  # base first
    numbers = [int(Path(s.path).name.split("_", 1)[0]) for s in chain]
    assert numbers == list(range(1, len(chain) + 1))


def test_a_database_at_the_released_head_upgrades_to_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'released.db'}"
    command.upgrade(alembic_config(url), RELEASED_HEAD)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == RELEASED_HEAD
    engine.dispose()
    upgrade(url)
    assert _schema_diff(url) == []
