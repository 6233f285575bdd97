"""TOTP end to end: HTTP against the real API process, events through the real broker
to real worker processes, codes from oathtool (an implementation independent of ours)."""

from __future__ import annotations

import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from services.cli.embedded_broker import EmbeddedBroker
from services.core.plumbing.context import Context
from services.core.models import AuditEntry, OutboxEvent
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def oathtool(secret: str, seconds_ago: int = 0) -> str:
    args = ["oathtool", "--totp", "-b", secret]
    if seconds_ago:
        args[3:3] = ["--now", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() - seconds_ago))]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def wait_for(predicate, timeout: float = 20.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def audit_types(ctx: Context, user: str) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry.type).where(AuditEntry.user_id == user).order_by(AuditEntry.position)))


def enroll_and_activate(http: httpx.Client, user: str) -> str:
    return enroll_totp(http, user)[0]


def enroll_totp(http: httpx.Client, user: str) -> tuple[str, str]:
    """An active TOTP token for ``user``: (token id, secret)."""
    r = http.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": "Pixel 8"})
    assert r.status_code == 201, r.text
    token_id = r.json()["token"]["id"]
    secret = parse_qs(urlsplit(r.json()["details"]["provisioning_uri"]).query)["secret"][0]
    base = f"/v1/users/{user}/tokens/{token_id}"
    assert http.post(f"{base}/scanned").status_code == 200
    # activate with the previous step's code and confirm with the current one: two steps, no waiting
    r = http.post(f"{base}/activate", json={"code": oathtool(secret, seconds_ago=30)})
    assert r.status_code == 200, r.text
    r = http.post(f"{base}/confirm", json={"code": oathtool(secret)})
    assert r.status_code == 200, r.text
    assert r.json()["token"]["state"] == "active"
    return token_id, secret


def test_totp_enrollment_flows_through_broker_to_the_audit_worker(stack: Stack, ctx: Context, admin_key: str):
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10) as http:
        enroll_and_activate(http, "alice")
    expected = ["enrollment.started", "enrollment.scanned", "enrollment.activated", "enrollment.confirmed"]
    got = wait_for(lambda: (t := audit_types(ctx, "alice"))[: len(expected)] == expected and t, timeout=60)
    assert got[:4] == expected

    def unpublished() -> int:
        with ctx.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))))

    # the API marks published rows in batches from a thread, a moment after publishing them
    assert wait_for(lambda: unpublished() == 0, timeout=10)


def test_broker_outage_loses_nothing_and_duplicates_nothing(settings, ctx: Context, admin_key: str, tmp_path):
    """The broker goes away during enrollments: every request still succeeds; once it is
    back, every outbox event reaches the audit consumer exactly once."""
    sock_dir = tmp_path / "sock"
    broker = EmbeddedBroker(settings.var_dir / "broker", persistent=True, socket_dir=sock_dir).start()
    stack = Stack(settings, broker.url).start(queues=("audit",))
    try:
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10) as http:
            enroll_and_activate(http, "before")
            # What was already on the broker is the broker's to keep (AOF here, durable queues
            # in production); this test is about what happens while it is gone.
            wait_for(lambda: len(audit_types(ctx, "before")) >= 4)
            broker.stop(keep_socket_dir=True)
            started = time.monotonic()
            for i in range(5):
                r = http.post(f"/v1/users/during{i}/tokens", json={"type": "totp", "description": "d"})
                assert r.status_code == 201, r.text
            assert time.monotonic() - started < 5, "requests must not wait on the broker"
            broker.start()
        users = ["before"] + [f"during{i}" for i in range(5)]

        with ctx.sessions() as s:
            written = s.scalar(select(func.count()).select_from(OutboxEvent))
        assert written >= 9  # 4+ for the first enrollment, 1 per enrollment started during the outage

        def all_arrived() -> bool:
            with ctx.sessions() as s:
                return s.scalar(select(func.count()).select_from(AuditEntry)) >= written

        wait_for(all_arrived, timeout=60, every=0.25)
        time.sleep(1.5)  # let any duplicate delivery arrive before counting
        with ctx.sessions() as s:
            rows = list(s.execute(select(AuditEntry.event_id, AuditEntry.user_id)))
            outbox_ids = set(s.scalars(select(OutboxEvent.event_id)))
        assert len(rows) == len({r.event_id for r in rows}) == len(outbox_ids) == written
        assert {r.event_id for r in rows} == outbox_ids
        assert {r.user_id for r in rows} == set(users)
    finally:
        stack.stop()
        broker.stop()
