"""A real SMS worker process is SIGKILLed in the middle of a send; after redelivery the
message has reached (Fake)Twilio exactly once.

How the idempotency record makes this hold: before the HTTP call the worker commits
``sms_deliveries(state=sending, claimed_at=now)``. The killed worker never acked (late ack),
so Redis hands the message to the next worker once the visibility timeout has passed. That
worker finds the claim: while it is younger than the lease (2 × send timeout + 5 s: no live
send can take longer) it treats the send as still in flight and retries later; once the lease
has passed it knows the first worker died between claim and record, and does **not** send
again - the record goes to ``unknown`` with an ``sms.failed`` (reason ``outcome_unknown``).

The narrow window, honestly: here FakeTwilio accepts the request after its delay although the
client is gone - the case "Twilio accepted, the worker died before recording". Nothing is sent
twice. Had the request not reached Twilio, the user would get no SMS at all and must ask for a
resend (the challenge stays pending; ``sms.failed`` tells the login service). Twilio has no
idempotency key for messages, so one of "maybe twice" or "maybe never" had to be chosen; we
chose never twice. Twilio's status callback carries our message id, so a message accepted in
that window is still recognised as delivered later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.core.bootstrap import build_context
from services.core.plumbing.db import Base, make_engine
from services.core.models import OutboxEvent, SmsDelivery
from services.core.plumbing.settings import Settings
from services.core.tokens import service
from services.core.factors.base import EnrollRequest
from tests.e2e.stack import start_embedded
from tests.fakes.fake_twilio import Delay, FakeTwilio

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_send_delivers_exactly_once(tmp_path: Path) -> None:
    # A broker of this test's own (Redis semantics: unacked messages come back after the
    # visibility timeout), so parallel runs on the same machine cannot take its messages.
    broker = start_embedded(tmp_path / "var")
    BROKER = broker.url
    db = tmp_path / "twofa.db"
    engine = make_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    engine.dispose()
    with FakeTwilio() as fake:
        env = {
            **os.environ,
            "TWOFA_ENV": "test", "TWOFA_VAR_DIR": str(tmp_path / "var"),
            "TWOFA_DATABASE_URL": f"sqlite:///{db}", "TWOFA_BROKER_URL": BROKER,
            "TWOFA_BROKER_VISIBILITY_TIMEOUT": "5", "TWOFA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "TWOFA_SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
            "TWOFA_TWILIO_API_URL": fake.url, "TWOFA_SMS_SEND_TIMEOUT_SECONDS": "3",
            "TWOFA_SMS_MAX_RETRIES": "20", "TWOFA_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
        }
        env.pop("TWILIO_EDGE", None), env.pop("TWILIO_REGION", None)
        settings = Settings(
            env="test", var_dir=tmp_path / "var", database_url=f"sqlite:///{db}", broker_url=BROKER,
            broker_visibility_timeout=5, encryption_keys=env["TWOFA_ENCRYPTION_KEYS"],
            sms_provider="twilio", TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=fake.auth_token, TWILIO_FROM_NUMBER="+15005550006",
            twilio_api_url=fake.url, sms_send_timeout_seconds=3,
        )
        ctx = build_context(settings, background=False)  # publishes to the real Redis
        # The first send hangs 2.5 s (under the 3 s client timeout, so the worker does not retry
        # by itself), then FakeTwilio accepts it anyway: Twilio got it, the worker never heard.
        fake.script(Delay(2.5))
        service.start_enrollment(ctx, "alice", EnrollRequest("sms", "phone", "+4915112345678"))

        def worker(log: str) -> subprocess.Popen[bytes]:
            with open(tmp_path / log, "wb") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "services.cli.main", "worker", "--queues", "sms",
                     "--pool", "threads", "--concurrency", "4"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        first = worker("worker1.log")
        try:
            _wait(lambda: len(fake.requests) >= 1, 30, "the first send to be in flight")
            os.killpg(first.pid, signal.SIGKILL)  # mid-send: Twilio has not answered yet
            first.wait(5)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        second = worker("worker2.log")
        try:
            def state() -> str | None:
                with ctx.sessions() as s:
                    return s.scalar(select(SmsDelivery.state))

            _wait(lambda: state() == "unknown", 60, "the redelivered task to settle the record")
            with ctx.sessions() as s:
                row = s.scalars(select(SmsDelivery)).one()
                types = list(s.scalars(select(OutboxEvent.type)))
            assert row.attempts == 1  # claimed once; the redelivery did not claim again
            assert len(fake.messages) == 1 and len(fake.requests) == 1  # delivered exactly once
            assert types.count("sms.failed") == 1 and "sms.sent" not in types
            time.sleep(1.0)  # nothing else is on its way
            assert len(fake.requests) == 1
        finally:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(5)
            ctx.engine.dispose()
            broker.stop()
