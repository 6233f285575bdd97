"""PUSH end to end with real processes: the API (in process, real Celery publisher), a
worker process for the push/expiry/audit queues, the relay/scheduler process, the
embedded Redis broker, FakeFCM over HTTP and the emulated app."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api.app import create_app
from services.cli.embedded_broker import EmbeddedBroker
from services.core import apikeys
from services.core.bootstrap import build_context
from services.core.plumbing.db import Base, make_engine
from services.core.models import AreaProtection, Challenge, OutboxEvent
from services.core.plumbing.settings import Settings
from tests.fakes.fake_fcm import FakeFCM
from tests.fakes.pi_app import PiAuthenticatorApp

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict]:
    db = f"sqlite:///{tmp_path / 'twofa.db'}"
    engine = make_engine(db)
    Base.metadata.create_all(engine)
    engine.dispose()
    with FakeFCM() as fake, EmbeddedBroker(tmp_path / "broker", persistent=False) as broker:
        cred = fake.write_service_account(tmp_path / "sa.json")
        env = {**os.environ, "TWOFA_ENV": "test", "TWOFA_DATABASE_URL": db, "TWOFA_BROKER_URL": broker.url,
               "TWOFA_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "TWOFA_VAR_DIR": str(tmp_path / "var"),
               "TWOFA_PUSH_PROVIDER": "fcm", "TWOFA_FCM_CREDENTIALS_FILE": str(cred),
               "TWOFA_FCM_API_URL": fake.url, "TWOFA_PUSH_POLL_ONLY": "false",
               "TWOFA_PUSH_SERVER_KEY_BITS": "2048", "TWOFA_PUSH_TTL_SECONDS": "10",
               "TWOFA_LOG_LEVEL": "WARNING"}
        procs = [
            subprocess.Popen([sys.executable, "-m", "services.cli.main", "worker", "--queues",
                              "push,expiry,audit", "--pool", "threads", "--concurrency", "4"],
                             cwd=ROOT, env=env),
            subprocess.Popen([sys.executable, "-m", "services.cli.main", "relay"], cwd=ROOT, env=env),
        ]
        try:
            settings = Settings(**{k[6:].lower(): v for k, v in env.items()
                                   if k.startswith("TWOFA_") and k != "TWOFA_LOG_LEVEL"})
            ctx = build_context(settings)
            with TestClient(create_app(ctx=ctx)) as api:
                yield {"api": api, "ctx": ctx, "fake": fake}
            ctx.engine.dispose()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def test_push_is_delivered_answered_and_a_second_one_expires_once(stack):
    api, ctx, fake = stack["api"], stack["ctx"], stack["fake"]
    with ctx.sessions.begin() as s:
        key = apikeys.create_key(s, "e2e", ("enroll", "challenge"), ctx.clock.now()).plaintext
        s.add(AreaProtection(user_id="alice", area="sso", protected=True, updated_at=ctx.clock.now()))
    h = {"Authorization": f"Bearer {key}"}
    app = PiAuthenticatorApp(api)
    body = api.post("/v1/users/alice/tokens", json={"type": "push", "description": "phone"}, headers=h).json()
    token = app.scan(body["details"]["enrollment_url"])
    app.register(token, fbtoken="device-e2e", key_size=2048)

    def login() -> dict:
        ch = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=h).json()
        return api.post(f"/v1/challenges/{ch['challenge_id']}/select",
                        json={"token_id": ch["factors"][0]["token_id"]}, headers=h).json()

    sel = login()
    (msg,) = fake.wait_for_messages(1, timeout=60)  # the first waits for the worker process to start
    req = app.verify_challenge(token, msg.data)
    assert 0 < int(msg.android["ttl"].removesuffix("s")) <= 10  # the validity left
    assert app.accept(req, sel["presence_answer"])["result"]["value"] is True
    out = api.get(f"/v1/challenges/{sel['challenge_id']}?wait=5", headers=h).json()
    assert out["status"] == "approved"

    second = login()
    fake.wait_for_messages(2, timeout=15)
    # nobody answers: the relay schedules the sweep, the expiry worker expires it
    out = api.get(f"/v1/challenges/{second['challenge_id']}?wait=15", headers=h).json()
    assert out["status"] == "expired"
    cid = uuid.UUID(second["challenge_id"])

    def stored_expired() -> bool:
        with ctx.sessions() as s:
            return s.get(Challenge, cid).state == "expired"

    wait_for(stored_expired, 10, "the expiry worker")
    time.sleep(2.5)  # a few more sweeps must not emit it again
    with ctx.sessions() as s:
        rows = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "challenge.expired")).all()
    assert [r.envelope["data"]["challenge_id"] for r in rows] == [second["challenge_id"]]
