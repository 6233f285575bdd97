"""Alembic environment: the URL comes from Settings through ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context

import services.core.models  # noqa: F401  (fills the metadata)
from services.core.plumbing.db import Base, make_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("migrations need sqlalchemy.url (see migrate.alembic_config)")
    engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
