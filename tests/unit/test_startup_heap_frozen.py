"""The API and the workers freeze what they built at startup, so that the garbage collector
traverses only what requests and messages allocate."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import worker_ready
from cryptography.fernet import Fernet

from services.api.app import create_app
from services.core.bootstrap import build_context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from services.workers import relay
from services.workers.app import configure


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def _settings(tmp_path: Path) -> Settings:
    return Settings(env="test", var_dir=tmp_path / "var",
                    database_url=f"sqlite:///{tmp_path / 'twofa.db'}",
                    encryption_keys=Fernet.generate_key().decode())


def test_the_api_freezes_its_startup_heap(tmp_path: Path, unfrozen: None) -> None:
    ctx = build_context(_settings(tmp_path), publisher=RecordingPublisher(), background=False)
    app = create_app(ctx=ctx)

    async def start() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    assert gc.get_freeze_count() == 0
    assert asyncio.run(start()) > 0
    ctx.engine.dispose()


def test_a_worker_freezes_its_startup_heap(tmp_path: Path, unfrozen: None) -> None:
    configure(_settings(tmp_path))
    assert gc.get_freeze_count() == 0
    worker_ready.send(sender=None)
    assert gc.get_freeze_count() > 0


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_at_startup_is_collected_not_frozen(tmp_path: Path, unfrozen: None) -> None:
    ctx = build_context(_settings(tmp_path), publisher=RecordingPublisher(), background=False)
    app = create_app(ctx=ctx)
    garbage = Cycle()
    dead = weakref.ref(garbage)
    del garbage

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start())
    assert dead() is None
    ctx.engine.dispose()


def test_the_relay_freezes_its_startup_heap(tmp_path: Path, unfrozen: None) -> None:
    stop = threading.Event()
    stop.set()  # start-up only, no pass
    relay.run(_settings(tmp_path), stop)
    assert gc.get_freeze_count() > 0
