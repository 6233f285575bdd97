"""End-to-end fixtures: the whole service as real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.core import apikeys
from services.core.plumbing.context import Context
from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack, start_embedded, external_broker_url


@pytest.fixture
def broker_url(settings: Settings) -> Iterator[str]:
    external = external_broker_url()
    if external:
        if external.startswith("redis://"):
            import redis

            redis.Redis.from_url(external).flushdb()
        yield external
        return
    broker = start_embedded(settings.var_dir)
    yield broker.url
    broker.stop()


@pytest.fixture
def stack(settings: Settings, broker_url: str) -> Iterator[Stack]:
    s = Stack(settings, broker_url).start()
    yield s
    s.stop()


@pytest.fixture
def admin_key(ctx: Context) -> str:
    with ctx.sessions.begin() as session:
        return apikeys.create_key(session, "e2e", ("admin",), ctx.clock.now()).plaintext
