"""SMS fixtures: FakeTwilio over real HTTP, Settings pointing the real twilio client at it,
and a runner that feeds published ``sms.requested`` events to the real Celery task (eagerly,
so retries run in-process with the task's own retry logic)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from tests.conftest import make_settings
from tests.fakes.fake_twilio import FakeTwilio

PHONE = "+4915112345678"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_twilio: FakeTwilio) -> Settings:
    return make_settings(
        tmp_path, database_url, sms_provider="twilio",
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid, TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006", twilio_api_url=fake_twilio.url,
        public_url="https://2fa.example.test", sms_send_timeout_seconds=0.4, sms_max_retries=3,
    )


@pytest.fixture
def run_sms(ctx: Context, publisher: RecordingPublisher) -> Iterator[Callable[[], list[Any]]]:
    """Run every not-yet-run ``sms.requested`` through ``twofa.sms.send``; returns outcomes."""
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    worker_app.configure(ctx.settings, ctx=ctx)
    sms_tasks.reset()
    done: set[str] = set()

    def run() -> list[Any]:
        outcomes = []
        for env in list(publisher.published):
            if env["type"] == "sms.requested" and env["event_id"] not in done:
                done.add(env["event_id"])
                outcomes.append(sms_tasks.send.apply(args=[env]).result)
        return outcomes

    yield run
    sms_tasks.reset()


def events(publisher: RecordingPublisher, type_: str) -> list[dict[str, Any]]:
    return [e for e in publisher.published if e["type"] == type_]


def protect(ctx: Context, user_id: str, area: str = "sso") -> None:
    """Protect an area directly (the areas API is another issue's)."""
    from services.core.models import AreaProtection

    with ctx.sessions.begin() as s:
        s.merge(AreaProtection(user_id=user_id, area=area, protected=True, updated_at=ctx.clock.now()))
