"""Notification fixtures: a real SMTP server, settings pointing at it, the notify task."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.factors.sms.sender import SmsReceipt
from tests.conftest import make_settings
from tests.e2e.stack import free_port
from tests.fakes.smtp_server import SmtpServer

NOTIFY_TYPES = {"enrollment.confirmed", "token.deleted", "token.locked", "recovery.used", "push.fraud_reported"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
def settings(tmp_path, database_url, smtp):
    return make_settings(tmp_path, database_url, notify_provider="smtp", smtp_port=smtp.port,
                         mail_from="security@twofa.example", notify_max_per_hour=3)


class RecordingSms:
    """An SMS sender that keeps what it was given (the SMS provider has its own tests)."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        self.sent.append((to, body))
        return SmsReceipt("recording", f"SM{len(self.sent)}")


@pytest.fixture
def run_notify(ctx: Context, publisher: RecordingPublisher) -> Iterator[Callable[[], list[Any]]]:
    """Run every not-yet-run event that has a notification through ``twofa.notify.send``."""
    from services.workers import app as worker_app
    from services.workers.tasks import notify as notify_tasks

    worker_app.configure(ctx.settings, ctx=ctx)
    notify_tasks.reset()
    done: set[str] = set()

    def run() -> list[Any]:
        outcomes = []
        for env in list(publisher.published):
            if env["type"] in NOTIFY_TYPES and env["event_id"] not in done:
                done.add(env["event_id"])
                outcomes.append(notify_tasks.send.apply(args=[env]).result)
        return outcomes

    yield run
    notify_tasks.reset()


def events(publisher: RecordingPublisher, type_: str) -> list[dict[str, Any]]:
    return [e for e in publisher.published if e["type"] == type_]
