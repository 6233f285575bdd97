"""API fixtures: the FastAPI app on the test Context, and API keys per scope; an embedded
broker for the tests that publish for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.cli.embedded_broker import EmbeddedBroker
from services.core import apikeys
from services.core.plumbing.context import Context
from services.core.plumbing.settings import Settings


@pytest.fixture
def make_key(ctx: Context) -> Callable[..., str]:
    def make(*scopes: str) -> str:
        with ctx.sessions.begin() as session:
            return apikeys.create_key(session, "test", tuple(scopes), ctx.clock.now()).plaintext

    return make


@pytest.fixture
def api(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx=ctx), raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def enroll_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('enroll')}"}


@pytest.fixture
def challenge_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('challenge')}"}


@pytest.fixture
def broker(settings: Settings) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(settings.var_dir / "broker", persistent=False).start()
    yield broker
    broker.stop()
