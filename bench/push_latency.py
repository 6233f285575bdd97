"""Latency from "factor selected" to the (fake) FCM receiving the push message.

Real parts: the Redis broker at 127.0.0.1:6379 (db 12 by default, flushed before and
after), the API in this process (FastAPI through TestClient, the real BackgroundDispatcher
and Celery publisher), worker processes (`twofa worker`, push queue on threads, and by
default an audit worker, as in production), FakeFCM over HTTP with the real pyfcm client,
SQLite in a temp dir, RSA 4096 server keys (the default).

Prints p50/p95/p99/max over N selects, measured two ways: from the moment POST /select is
sent, and from the moment its response is back (the message can reach FCM before the
response does, since publishing happens after commit on a background thread).

    python bench/push_latency.py [--n 200] [--gap 0.02] [--redis-db 12] [--no-audit]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from services.api.app import create_app  # noqa: E402
from services.core import apikeys  # noqa: E402
from services.core.bootstrap import build_context  # noqa: E402
from services.core.plumbing.db import Base, make_engine  # noqa: E402
from services.core.models import AreaProtection  # noqa: E402
from services.core.plumbing.settings import Settings  # noqa: E402
from tests.fakes.fake_fcm import FakeFCM  # noqa: E402
from tests.fakes.pi_app import PiAuthenticatorApp  # noqa: E402

USERS = 12


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def show(label: str, ms: list[float]) -> None:
    print(f"{label:<28} p50 {pct(ms, 50):6.1f}  p95 {pct(ms, 95):6.1f}  p99 {pct(ms, 99):6.1f}  "
          f"max {max(ms):6.1f}  mean {statistics.mean(ms):6.1f}  (ms, n={len(ms)})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02, help="seconds between selects")
    ap.add_argument("--redis-db", type=int, default=12)
    ap.add_argument("--no-audit", action="store_true", help="no audit worker (less SQLite contention)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--database-url", default="", help="default: SQLite in a temp dir; e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/twofa_push_bench (dropped and recreated)")
    args = ap.parse_args()

    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    r = redis.Redis.from_url(broker)
    r.flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="twofa-bench-"))
    db = args.database_url or f"sqlite:///{tmp / 'twofa.db'}"
    engine = make_engine(db)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    procs: list[subprocess.Popen[bytes]] = []
    with FakeFCM() as fake:
        cred = fake.write_service_account(tmp / "sa.json")
        env = {**os.environ, "TWOFA_ENV": "test", "TWOFA_DATABASE_URL": db, "TWOFA_BROKER_URL": broker,
               "TWOFA_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "TWOFA_VAR_DIR": str(tmp / "var"),
               "TWOFA_PUSH_PROVIDER": "fcm", "TWOFA_FCM_CREDENTIALS_FILE": str(cred),
               "TWOFA_FCM_API_URL": fake.url, "TWOFA_PUSH_POLL_ONLY": "false",
               "TWOFA_PUSH_MAX_PENDING": "20", "TWOFA_PUSH_MAX_RECENT": "1000", "TWOFA_LOG_LEVEL": "WARNING"}
        settings = Settings(**{k[6:].lower(): v for k, v in env.items()
                               if k.startswith("TWOFA_") and k != "TWOFA_LOG_LEVEL"})
        worker = [sys.executable, "-m", "services.cli.main", "worker"]
        procs.append(subprocess.Popen([*worker, "--queues", "push", "--pool", "threads",
                                       "--concurrency", str(args.concurrency)], cwd=ROOT, env=env))
        if not args.no_audit:
            procs.append(subprocess.Popen([*worker, "--queues", "audit", "--pool", "solo"], cwd=ROOT, env=env))
        try:
            ctx = build_context(settings)
            with TestClient(create_app(ctx=ctx)) as api:
                with ctx.sessions.begin() as s:
                    key = apikeys.create_key(s, "bench", ("enroll", "challenge"), ctx.clock.now()).plaintext
                h = {"Authorization": f"Bearer {key}"}
                app = PiAuthenticatorApp(api)
                t_enroll = time.perf_counter()
                token_ids: dict[str, str] = {}
                for i in range(USERS):
                    user = f"user{i}"
                    body = api.post(f"/v1/users/{user}/tokens", json={"type": "push", "description": "p"},
                                    headers=h).json()
                    app.register(app.scan(body["details"]["enrollment_url"]), fbtoken=f"dev-{i}", key_size=2048)
                    token_ids[user] = body["token"]["id"]
                    with ctx.sessions.begin() as s:
                        s.merge(AreaProtection(user_id=user, area="sso", protected=True,
                                             updated_at=ctx.clock.now()))
                print(f"enrolled {USERS} push tokens (RSA {settings.push_server_key_bits} server keys) "
                      f"in {time.perf_counter() - t_enroll:.1f} s")
                # warm-up: worker start, OAuth token, key cache (one push per token)
                for i in range(USERS):
                    ch = api.post("/v1/challenges", json={"user_id": f"user{i}", "area": "sso"}, headers=h).json()
                    api.post(f"/v1/challenges/{ch['challenge_id']}/select",
                             json={"token_id": token_ids[f"user{i}"]}, headers=h)
                fake.wait_for_messages(USERS, timeout=60)
                fake.reset()
                sent_at: list[float] = []
                back_at: list[float] = []
                for n in range(args.n):
                    user = f"user{n % USERS}"
                    ch = api.post("/v1/challenges", json={"user_id": user, "area": "sso"}, headers=h).json()
                    t0 = time.perf_counter()
                    resp = api.post(f"/v1/challenges/{ch['challenge_id']}/select",
                                    json={"token_id": token_ids[user]}, headers=h)
                    t1 = time.perf_counter()
                    assert resp.status_code == 200, resp.text
                    sent_at.append(t0)
                    back_at.append(t1)
                    fake.wait_for_messages(n + 1, timeout=30)  # one at a time: latency, not backlog
                    time.sleep(args.gap)
                msgs = fake.messages
                by_order = [m.received_perf for m in msgs]
                from_sent = [(m - s) * 1000 for m, s in zip(by_order, sent_at)]
                from_back = [(m - b) * 1000 for m, b in zip(by_order, back_at)]
                select_ms = [(b - s) * 1000 for s, b in zip(sent_at, back_at)]
                print(f"database {engine.dialect.name}; broker {broker}; workers: push(threads x{args.concurrency})"
                      f"{'' if args.no_audit else ' + audit(solo)'}; {args.n} selects, {args.gap * 1000:.0f} ms apart")
                print(f"load average during the run: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} CPUs)")
                show("POST /select itself", select_ms)
                show("select sent -> FCM received", from_sent)
                show("select answered -> FCM recv", from_back)
            ctx.engine.dispose()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            r.flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
