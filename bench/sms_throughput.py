"""SMS dispatch throughput of ONE worker process against FakeTwilio with 100 ms latency.

Not a test: prints figures. Queues N ``sms.requested`` events through the real broker
(local Redis, its own database number, flushed first) with no worker running, then starts
one ``twofa worker --queues sms --pool threads --concurrency C`` process and measures
messages/s from the first to the last message FakeTwilio accepted.

    /work/main/.venv/bin/python bench/sms_throughput.py --n 2000 --concurrency 64

``--database-url`` runs the same bench on another database (e.g. a PostgreSQL database of
its own: every table is dropped and created again), to tell database effects apart.

It also prints the worker's CPU per message, counted from the first accepted message (start-up
left out). On a shared 2-core machine that is the figure to compare designs by: throughput
moves with whatever else runs. ``--profile FILE`` samples the worker with py-spy (``--gil``:
only the thread holding the GIL, i.e. where the CPU goes) and prints the largest frames.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.core.bootstrap import build_context  # noqa: E402
from services.core.plumbing.db import Base, make_engine  # noqa: E402
from services.core.plumbing.settings import Settings  # noqa: E402
from services.core.factors.sms import codes  # noqa: E402
from services.core.tokens import service  # noqa: E402
from services.core.factors.base import EnrollRequest  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def _start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    from bench.compare.profile import py_spy

    exe = py_spy()
    if exe is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking", "--gil"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _print_profile(out: Path) -> None:
    from bench.compare.profile import by_self, summarize

    print(f"py-spy samples of the GIL holder in {out}; largest inclusive shares:")
    for frame, inc, own in summarize(out, 40):
        print(f"  {inc:5.1f}% {own:5.1f}%  {frame}")
    print("largest self shares:")
    for frame, own in by_self(out, 20):
        print(f"  {own:5.1f}%  {frame}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--redis-db", type=int, default=12)
    ap.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    ap.add_argument("--pool", default="threads", help="the worker's --pool")
    ap.add_argument("--profile", type=Path, help="py-spy the worker while it sends; summary here")
    args = ap.parse_args()
    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(broker).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="sms-bench-"))
    db_url = args.database_url or f"sqlite:///{tmp / 'twofa.db'}"
    engine = make_engine(db_url)
    if args.database_url:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    key = Fernet.generate_key().decode()
    with FakeTwilio() as fake:
        fake.latency = args.latency
        settings = Settings(
            env="test", var_dir=tmp / "var", database_url=db_url, broker_url=broker,
            encryption_keys=key, sms_provider="twilio", TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=fake.auth_token, TWILIO_FROM_NUMBER="+15005550006",
            twilio_api_url=fake.url, sms_daily_quota=1000, sms_max_per_hour=100,
            sms_resend_interval_seconds=0, sms_global_max_per_hour=0, sms_country_max_per_hour=0,
        )
        ctx = build_context(settings, background=False)
        t0 = time.perf_counter()
        # One token per user so that the per-user quota does not get in the way.
        for i in range(args.n):  # each enrollment commits and dispatches its own event
            service.start_enrollment(ctx, f"user{i}", EnrollRequest("sms", "p", f"+491511{i:07d}"))
        print(f"queued {args.n} messages in {time.perf_counter() - t0:.1f} s")
        env = {**os.environ, "TWOFA_ENV": "test", "TWOFA_VAR_DIR": str(tmp / "var"),
               "TWOFA_DATABASE_URL": db_url, "TWOFA_BROKER_URL": broker,
               "TWOFA_ENCRYPTION_KEYS": key, "TWOFA_SMS_PROVIDER": "twilio",
               "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
               "TWILIO_FROM_NUMBER": "+15005550006", "TWOFA_TWILIO_API_URL": fake.url,
               "TWOFA_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        for var in ("TWILIO_EDGE", "TWILIO_REGION"):
            env.pop(var, None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "worker", "--queues", "sms", "--pool",
             args.pool, "--concurrency", str(args.concurrency)],
            cwd=ROOT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            cpu_start = _cpu_seconds(proc.pid)  # start-up (imports, connecting) is done
            spy = _start_profile(proc.pid, args.profile) if args.profile else None
            while len(fake.messages) < args.n and time.monotonic() < deadline:
                time.sleep(0.05)
            cpu = _cpu_seconds(proc.pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
                spy.wait(60)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        reqs = [r.t_perf for r in fake.requests]
        n = len(fake.messages)
        span = max(reqs) - min(reqs) if reqs else 0.0
        print(f"accepted {n}/{args.n} messages ({len(reqs)} requests), latency {args.latency * 1000:.0f} ms, "
              f"concurrency {args.concurrency}")
        print(f"first→last accepted: {span:.2f} s → {n / span if span else 0:.0f} messages/s per process")
        # CPU is the figure that survives a busy machine: one process is bound by one core
        # (the GIL), so 1000 / (ms per message) is its ceiling in messages/s.
        busy = sum(cpu) - sum(cpu_start)
        print(f"worker CPU {sum(cpu):.1f} s (user {cpu[0]:.1f}, sys {cpu[1]:.1f}), "
              f"{sum(cpu_start):.1f} s of it start-up → {1000 * busy / max(n, 1):.2f} ms per message "
              f"sending, {1000 * sum(cpu) / max(n, 1):.2f} ms with start-up")
        if args.profile:
            _print_profile(args.profile)
        assert codes  # imported for the reader: codes.issue is what enrollment runs
    ctx.engine.dispose()
    redis.Redis.from_url(broker).flushdb()


if __name__ == "__main__":
    main()
