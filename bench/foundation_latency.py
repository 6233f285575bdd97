"""Enroll+activate latency over HTTP and commit→audit latency, on a real stack.

Usage: python -m bench.foundation_latency [--broker embedded|redis://…] [--users 50]

Starts the API, an audit worker and the relay as processes (tests/e2e/stack.py),
runs N complete TOTP enrollments (start, scanned, activate, confirm) one after
the other, and reports p50/p99 of the four-request sequence, then reads the outbox
and the audit log to report the time from commit (outbox.created_at) to the audit
consumer having the event (audit_log.recorded_at). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.core import apikeys
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import Base, make_engine, make_session_factory
from services.core.models import AuditEntry, OutboxEvent
from services.core.plumbing.settings import Settings
from services.core.factors.totp import otp
from tests.e2e.stack import Stack, start_embedded


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="embedded")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--pace-ms", type=float, default=0.0,
                    help="pause between enrollments: 0 is a burst (audit throughput), 200 an idle pace")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="twofa-bench-"))
    settings = Settings(env="test", var_dir=tmp / "var", database_url=f"sqlite:///{tmp / 'bench.db'}",
                        encryption_keys=Fernet.generate_key().decode())
    engine = make_engine(settings.resolved_database_url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        key = apikeys.create_key(s, "bench", ("admin",), as_utc(__import__("datetime").datetime.now())).plaintext
    broker = start_embedded(settings.var_dir) if args.broker == "embedded" else None
    if broker is None:
        import redis

        redis.Redis.from_url(args.broker).flushdb()
    stack = Stack(settings, broker.url if broker else args.broker).start(queues=("audit",))
    params = otp.TotpParams()
    latencies: list[float] = []
    try:
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            for i in range(args.users):
                t0 = time.perf_counter()
                r = http.post(f"/v1/users/bench{i}/tokens", json={"type": "totp", "description": "b"})
                token = r.json()["token"]["id"]
                secret = parse_qs(urlsplit(r.json()["details"]["provisioning_uri"]).query)["secret"][0]
                base = f"/v1/users/bench{i}/tokens/{token}"
                http.post(f"{base}/scanned")
                step = otp.time_step(time.time(), 30)
                http.post(f"{base}/activate", json={"code": otp.code_at_step(secret, step - 1, params)})
                r = http.post(f"{base}/confirm", json={"code": otp.code_at_step(secret, step, params)})
                latencies.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                time.sleep(args.pace_ms / 1000)
        expected = args.users * 4
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as s:
                if len(list(s.scalars(select(AuditEntry.position)))) >= expected:
                    break
            time.sleep(0.2)
        with sessions() as s:
            created = {e: as_utc(c) for e, c in s.execute(select(OutboxEvent.event_id, OutboxEvent.created_at))}
            recorded = {e: as_utc(r) for e, r in s.execute(select(AuditEntry.event_id, AuditEntry.recorded_at))}
        lag = [(recorded[e] - created[e]).total_seconds() * 1000 for e in recorded if e in created]
    finally:
        stack.stop()
        if broker:
            broker.stop()
        engine.dispose()
    print(f"broker: {args.broker}; DB: SQLite; {args.users} sequential enrollments, pause {args.pace_ms:g} ms")
    print(f"enroll+activate (4 HTTP requests): p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {pct(latencies, 0.99):.1f} ms")
    print(f"commit -> audit consumer: {len(lag)} events, p50 {statistics.median(lag):.1f} ms, "
          f"p99 {pct(lag, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
