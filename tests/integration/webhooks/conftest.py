"""Webhook fixtures: loopback receivers allowed, a receiver per test, a 12-row chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from services.core.audit.service import signer_for
from services.core.plumbing.settings import Settings
from services.core.webhooks import subscriptions
from tests.conftest import make_settings
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.unit.audit import tamper


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return make_settings(tmp_path, database_url, webhook_allow_private=True,
                         webhook_timeout_seconds=0.5, webhook_retry_window_seconds=3600)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


@pytest.fixture
def chain12(ctx, clock):
    return tamper.build_chain(ctx.sessions, signer_for(ctx), clock, 12, every_rows=5)


@pytest.fixture
def subscribe(ctx) -> Callable[..., str]:
    """Subscribe ``receiver`` (its secret set); returns the subscription id."""

    def make(receiver: WebhookReceiver, *, types: tuple[str, ...] = (), from_position: int | None = 1,
             url: str | None = None) -> str:
        with ctx.sessions.begin() as session:
            sub, secret = subscriptions.create(
                session, ctx.keyring, ctx.clock.now(), url=url or receiver.url + "/hook",
                event_types=types, from_position=from_position, allow_private=True)
            receiver.secret = secret
            return str(sub.id)

    return make
