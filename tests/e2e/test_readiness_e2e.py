"""/readyz of a real API process follows its broker: stopped, 503 naming it; back, 200."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from services.cli.embedded_broker import EmbeddedBroker
from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_broker(settings: Settings) -> Iterator[EmbeddedBroker]:
    """A broker this test may stop and start again (on the same socket, so the same URL)."""
    broker = EmbeddedBroker(settings.var_dir / "own-broker", persistent=False).start()
    yield broker
    broker.stop()


def ready(stack: Stack) -> tuple[int, dict[str, object]]:
    try:
        r = httpx.get(f"{stack.url}/readyz", timeout=5)
    except httpx.TransportError:  # not listening yet
        return 0, {}
    return r.status_code, r.json()


def until(stack: Stack, status: int, seconds: float = 15) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        got, body = ready(stack)
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        time.sleep(0.2)


def test_readyz_follows_the_broker_down_and_up(settings: Settings,
                                               own_broker: EmbeddedBroker) -> None:
    stack = Stack(settings, own_broker.url, extra_env={"TWOFA_READINESS_TIMEOUT_SECONDS": "1"})
    stack.logs = settings.var_dir / "logs"
    stack.logs.mkdir(parents=True, exist_ok=True)
    stack.spawn("api", "serve", "--port", str(stack.port))
    try:
        body = until(stack, 200, 60)
        assert body["checks"] == {"database": "ok", "broker": "ok"}

        own_broker.stop(keep_socket_dir=True)
        began = time.monotonic()
        body = until(stack, 503)
        assert body["down"] == ["broker"] and body["checks"]["database"] == "ok"  # type: ignore[index]
        assert time.monotonic() - began < 5  # the first probe after the stop already says so
        assert httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 200

        own_broker.start()
        body = until(stack, 200)
        assert body["checks"] == {"database": "ok", "broker": "ok"}
    finally:
        stack.stop()
