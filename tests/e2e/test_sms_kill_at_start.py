"""SMS queued while the SMS worker is down, then the worker SIGKILLed as it starts, five
times, then left up: within 30 s every code is settled, none reaches (Fake)Twilio twice, and
every code a killed worker had not marked as being sent reaches it exactly once.

A worker killed as it starts takes messages with it: those it had prefetched sit in Redis's
``unacked`` hash until the visibility timeout (minutes), and one it had popped but not yet
recorded as unacked is gone for good (kombu's Redis transport records it after the pop).
Neither is waited for: the expiry sweep finds each ``sms.requested`` without an outcome in
the database and publishes it again (services.core.redispatch), and the SMS ledger sends a
message at most once however many copies arrive.

A killed worker also leaves claims behind. Those whose send it had not marked as started are
claimed again once their lease is over and sent; only those marked (the provider may have
them) end ``unknown`` if their send did not complete.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from sqlalchemy import func, select

from services.core.bootstrap import build_context
from services.core.factors.base import EnrollRequest
from services.core.models import DeliveryState, SmsDelivery
from services.core.plumbing.settings import Settings
from services.core.tokens import service
from tests.e2e.stack import external_broker_url
from tests.fakes.fake_twilio import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
N = 200
KILL_AFTER_FIRST_POP = (0.0, 0.005, 0.01, 0.005, 0.0)  # seconds
KILLS = len(KILL_AFTER_FIRST_POP)
GOAL_SECONDS = 30.0

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


@pytest.fixture
def redis_broker() -> str:
    url = external_broker_url()
    if not url or not url.startswith("redis://"):
        pytest.skip("needs TWOFA_TEST_BROKER_URL=redis://… (the scenario is Redis's)")
    redis.Redis.from_url(url).flushdb()
    return url


def _message_id(payload: bytes) -> str:
    message = json.loads(payload)
    args = json.loads(base64.b64decode(message["body"]))[0]
    return str(args[0]["data"]["message_id"])


def in_broker(queue: redis.Redis) -> tuple[set[str], set[str]]:
    """The message ids waiting in the ``sms`` queue, and held unacked by a consumer (the SMS
    worker keeps them apart: services.workers.visibility)."""
    waiting = {_message_id(p) for p in queue.lrange("sms", 0, -1)}
    held = {_message_id(json.dumps(json.loads(p)[0]).encode())
            for p in queue.hvals("unacked:sms")}
    return waiting, held


def sends_per_message(fake: FakeTwilio) -> Counter[str]:
    """Requests that reached Twilio, by our message id (in the status callback URL)."""
    out: Counter[str] = Counter()
    for req in list(fake.requests):
        callback = req.form.get("StatusCallback", "")
        out.update(parse_qs(urlsplit(callback).query).get("message_id", []))
    return out


def test_every_code_is_sent_once_although_the_worker_dies_as_it_starts(
        settings: Settings, redis_broker: str, tmp_path: Path) -> None:
    with FakeTwilio() as fake:
        fake.latency = 0.3  # about Twilio's: sends are in flight when a worker dies
        twilio = dict(
            sms_provider="twilio", TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=fake.auth_token, TWILIO_FROM_NUMBER="+15005550006",
            twilio_api_url=fake.url, public_url="https://2fa.example.test",
            broker_url=redis_broker, sms_max_per_hour=100, sms_daily_quota=1000,
            sms_send_timeout_seconds=3)
        s = settings.model_copy(update=twilio)
        env = {
            **os.environ, "TWOFA_ENV": "test", "TWOFA_VAR_DIR": str(s.var_dir),
            "TWOFA_DATABASE_URL": s.resolved_database_url, "TWOFA_BROKER_URL": redis_broker,
            "TWOFA_ENCRYPTION_KEYS": s.encryption_keys.get_secret_value()
            if s.encryption_keys else "",
            "TWOFA_SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
            "TWOFA_TWILIO_API_URL": fake.url, "TWOFA_PUBLIC_URL": "https://2fa.example.test",
            "TWOFA_RELAY_INTERVAL_SECONDS": "0.2", "TWOFA_LOG_LEVEL": "WARNING",
            # the lease after which a dead worker's claim is known dead: 2 x 3 + 5 s
            "TWOFA_SMS_SEND_TIMEOUT_SECONDS": "3",
            "PYTHONPATH": str(ROOT),
        }
        for name in ("TWILIO_EDGE", "TWILIO_REGION", "TWOFA_BROKER_VISIBILITY_TIMEOUT"):
            env.pop(name, None)  # the production visibility timeout: minutes, not seconds
        if os.environ.get("TWOFA_REDISPATCH_AFTER_SECONDS"):  # to measure without it (600)
            s = s.model_copy(update={"redispatch_after_seconds": float(
                os.environ["TWOFA_REDISPATCH_AFTER_SECONDS"])})
        logs = tmp_path / "logs"
        logs.mkdir()
        procs: list[subprocess.Popen[bytes]] = []

        def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
            with open(logs / f"{name}.log", "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env=env,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            return proc

        def sms_worker() -> subprocess.Popen[bytes]:
            return spawn("worker-sms", "worker", "--queues", "sms", "--pool", "threads",
                         "--concurrency", "64")

        ctx = build_context(s, background=False)
        queue = redis.Redis.from_url(redis_broker)
        try:
            for i in range(N):  # the SMS worker is down: every command waits in the queue
                service.start_enrollment(
                    ctx, f"user{i}", EnrollRequest("sms", "phone", f"+4915112{i:06d}"))
            assert queue.llen("sms") == N
            spawn("relay", "relay")
            spawn("worker-expiry", "worker", "--queues", "expiry", "--pool", "solo",
                  "--concurrency", "1")
            for kill in range(KILLS):
                worker = sms_worker()
                left = queue.llen("sms")
                deadline = time.monotonic() + 30
                while queue.llen("sms") >= left and time.monotonic() < deadline:
                    time.sleep(0.002)
                # as it starts: it has taken messages, and has claimed none yet (its
                # claims wait 20 ms for company, services.core.factors.sms.ledger)
                time.sleep(KILL_AFTER_FIRST_POP[kill])
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(5)
            with ctx.sessions() as session:
                claimed = {str(r.message_id): r.send_started_at is not None
                           for r in session.execute(select(SmsDelivery.message_id,
                                                           SmsDelivery.send_started_at))}
            started_by_killed = {m for m, marked in claimed.items() if marked}
            queued, held = in_broker(queue)
            lost = N - len(queued | held | set(claimed))
            started = time.monotonic()
            sms_worker()  # left up

            def all_settled() -> bool:
                with ctx.sessions() as session:
                    return session.scalar(select(func.count()).select_from(SmsDelivery).where(
                        SmsDelivery.state.in_(DeliveryState.FINAL))) == N

            while not all_settled() and time.monotonic() - started < GOAL_SECONDS:
                time.sleep(0.1)
            took = time.monotonic() - started
            time.sleep(2.0)  # late copies and restored originals change nothing
            with ctx.sessions() as session:
                states = {r.message_id: r.state for r in session.execute(
                    select(SmsDelivery.message_id, SmsDelivery.state))}
            sends = sends_per_message(fake)
            print(f"\n{len(held)} message(s) held by killed workers (unacked), {lost} lost "
                  f"(taken, neither unacked nor claimed), {len(claimed)} claimed by them, "
                  f"{len(started_by_killed)} of which marked as started; all {N} settled "
                  f"{took:.1f} s after the last start: {Counter(states.values())}")
            unknown = [m for m, st in states.items() if st == DeliveryState.UNKNOWN]
            once = sum(1 for m in states if sends[str(m)] == 1)
            print(f"codes sent once {once}, unknown {len(unknown)} (of which "
                  f"{sum(sends[str(m)] for m in unknown)} reached Twilio before their worker "
                  f"died), never sent {N - once}; {sum(sends.values())} sends in all")
            assert took < GOAL_SECONDS, f"not all settled within {GOAL_SECONDS} s"
            assert max(sends.values()) == 1  # never twice
            for message_id, state in states.items():
                if str(message_id) in started_by_killed and state != DeliveryState.SENT:
                    # Its worker died after marking its send as started: Twilio may or may
                    # not have it, so it is not sent again (services.core.factors.sms.delivery).
                    assert state == DeliveryState.UNKNOWN and sends[str(message_id)] <= 1
                else:
                    assert state == DeliveryState.SENT and sends[str(message_id)] == 1
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            ctx.engine.dispose()
            queue.flushdb()
