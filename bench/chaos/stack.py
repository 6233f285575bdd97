"""twofa in its production shape (docs/operations.md) as processes, on the run's own
PostgreSQL and Redis, with the fakes of Twilio and FCM.

The seeding and the process layout come from ``bench.compare.twofa.TwofaStack``; here the
broker is the run's own redis-server and every worker queue of production runs, one
process each. A supervisor thread starts again any worker or relay that died (what
Kubernetes does), so a SIGKILL scenario measures the service and not a missing process.
The API's second-level processes are uvicorn's: uvicorn itself replaces a dead worker.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.chaos.fakes import FlakyTwilio
from bench.compare.procs import Procs, free_port, wait_http
from bench.compare.twofa import ROOT, TwofaStack
from services.core import apikeys
from services.core.plumbing.db import make_engine, make_session_factory
from tests.fakes.fake_fcm import FakeFCM

# queue -> (pool, concurrency), as docs/operations.md lays them out, scaled to 2 cores
WORKERS = {"sms": ("threads", "16"), "push": ("threads", "8"), "expiry": ("solo", "1"),
           "audit": ("solo", "1"), "webhooks": ("threads", "2"), "notify": ("threads", "2")}
SMS_SEND_TIMEOUT = 2.0
CHALLENGE_TTL = 60
PUSH_TTL = 30


class ChaosStack(TwofaStack):
    def __init__(self, work: Path, procs: Procs, database_url: str, broker_url: str,
                 twilio: FlakyTwilio, fcm: FakeFCM) -> None:
        super().__init__(work, procs, database_url)
        self.broker_url = broker_url
        self.twilio, self.fcm = twilio, fcm
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fcm_file = fcm.write_service_account(work / "fcm.json")
        self.restarts: list[tuple[float, str]] = []
        self.extra_env: dict[str, str] = {}  # what a scenario changes for processes it restarts
        self._supervise = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        env = dict(
            os.environ,
            TWOFA_ENV="test",
            TWOFA_DATABASE_URL=self.database_url,
            TWOFA_VAR_DIR=str(self.var),
            TWOFA_ENCRYPTION_KEYS=self.keys,
            PYTHONPATH=str(ROOT),
            TWOFA_BROKER_URL=self.broker_url,
            TWOFA_PUBLIC_URL=self.url,
            TWOFA_LOG_FORMAT="json",
            TWOFA_LOG_LEVEL="WARNING",
            TWOFA_SMS_PROVIDER="twilio", TWOFA_TWILIO_API_URL=self.twilio.url,
            TWILIO_ACCOUNT_SID=self.twilio.account_sid, TWILIO_AUTH_TOKEN=self.twilio.auth_token,
            TWILIO_FROM_NUMBER="+15005550006",
            TWOFA_SMS_SEND_TIMEOUT_SECONDS=str(SMS_SEND_TIMEOUT),
            TWOFA_SMS_RESEND_INTERVAL_SECONDS="0", TWOFA_SMS_MAX_PER_HOUR="100",
            TWOFA_SMS_DAILY_QUOTA="1000", TWOFA_SMS_GLOBAL_MAX_PER_HOUR="0",
            TWOFA_SMS_COUNTRY_MAX_PER_HOUR="0", TWOFA_SMS_CODE_TTL_SECONDS=str(CHALLENGE_TTL),
            TWOFA_PUSH_PROVIDER="fcm", TWOFA_FCM_CREDENTIALS_FILE=str(self.fcm_file),
            TWOFA_FCM_API_URL=self.fcm.url, TWOFA_PUSH_POLL_ONLY="false",
            TWOFA_PUSH_SERVER_KEY_BITS="2048", TWOFA_PUSH_TTL_SECONDS=str(PUSH_TTL),
            TWOFA_PUSH_MAX_RECENT="1000", TWOFA_PUSH_RECENT_WINDOW_SECONDS="10",
            TWOFA_CHALLENGE_TTL_SECONDS=str(CHALLENGE_TTL),
            TWOFA_NOTIFY_MAX_PER_HOUR="1000",
        )
        env.update(self.extra_env)
        return {k: v for k, v in env.items() if v != ""}

    def migrate(self) -> None:
        """The schema, and an API key that may enroll as well as log in (seed() keeps it)."""
        super().migrate()
        engine = make_engine(self.database_url)
        with make_session_factory(engine).begin() as session:
            self.api_key = apikeys.create_key(session, "chaos", ("enroll", "challenge"),
                                              datetime.now(UTC)).plaintext
        engine.dispose()

    # -- processes ---------------------------------------------------------------------------
    def _cli(self) -> list[str]:
        return [sys.executable, "-m", "services.cli.main"]

    def _spawn(self, name: str) -> None:
        cli, env = self._cli(), self.env()
        if name == "api":
            self.procs.spawn(name, [*cli, "serve", "--port", str(self.port), "--workers", "2"],
                             env=env, cwd=ROOT)
        elif name == "relay":
            self.procs.spawn(name, [*cli, "relay"], env=env, cwd=ROOT)
        else:
            queue = name.removeprefix("worker-")
            pool, conc = WORKERS[queue]
            self.procs.spawn(name, [*cli, "worker", "--queues", queue, "--pool", pool,
                                    "--concurrency", conc], env=env, cwd=ROOT)

    @property
    def names(self) -> list[str]:
        return ["api", "relay", *(f"worker-{q}" for q in WORKERS)]

    def start(self, api_workers: int = 2) -> str:
        for name in self.names:
            self._spawn(name)
        wait_http(f"{self.url}/healthz", timeout=90)
        self._supervise.set()
        self._thread = threading.Thread(target=self._supervisor, name="chaos-supervisor",
                                        daemon=True)
        self._thread.start()
        return self.url

    def _supervisor(self) -> None:
        while self._supervise.is_set():
            with self._lock:
                for name in self.names[1:]:  # uvicorn supervises the API's own workers
                    proc = self.procs.procs.get(name)
                    if proc is not None and proc.poll() is not None and self._supervise.is_set():
                        self.procs.stop(name)  # reaps the group
                        self._spawn(name)
                        self.restarts.append((time.time(), name))
            time.sleep(0.2)

    def restart(self, name: str) -> None:
        """A planned restart (SIGTERM, then started again with the current environment)."""
        with self._lock:
            self.procs.stop(name)
            self._spawn(name)

    def worker_pids(self) -> list[tuple[str, int]]:
        """Every worker process (main and pool children) and the relay: what a kill may hit."""
        out: list[tuple[str, int]] = []
        for name in self.names[1:]:
            out.extend((name, p.pid) for p in self.procs.tree(name))
        return out

    def api_worker_pids(self) -> list[int]:
        """uvicorn's worker processes (children of the supervisor), not the supervisor."""
        proc = self.procs.procs.get("api")
        if proc is None:
            return []
        try:
            return [p.pid for p in psutil.Process(proc.pid).children()
                    if "resource_tracker" not in " ".join(p.cmdline())]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        self._supervise.clear()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for name in self.names[::-1]:
                self.procs.stop(name)
