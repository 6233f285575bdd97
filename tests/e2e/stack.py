"""The real service for end-to-end tests: API, workers and relay as processes.

The broker is ``TWOFA_TEST_BROKER_URL`` when set (CI: Redis, RabbitMQ), otherwise
the embedded broker this test starts and owns.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.cli.embedded_broker import EmbeddedBroker, _die_with_parent
from services.core.plumbing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    broker_url: str
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        s = self.settings
        env.update(
            TWOFA_ENV="test",
            TWOFA_DATABASE_URL=s.resolved_database_url,
            TWOFA_BROKER_URL=self.broker_url,
            TWOFA_VAR_DIR=str(s.var_dir),
            TWOFA_ENCRYPTION_KEYS=s.encryption_keys.get_secret_value() if s.encryption_keys else "",
            TWOFA_BROKER_VISIBILITY_TIMEOUT="10",
            TWOFA_RELAY_INTERVAL_SECONDS="0.2",
            TWOFA_RELAY_GRACE_SECONDS="1",
            PYTHONPATH=str(ROOT),
        )
        env.update(self.extra_env)
        return env

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        assert self.logs is not None
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *args],
            env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.procs[name] = proc
        return proc

    def start(self, queues: tuple[str, ...] = ("audit", "expiry")) -> "Stack":
        self.logs = self.settings.var_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.spawn("api", "serve", "--port", str(self.port))
        for q in queues:
            pool = "threads" if q in ("sms", "push", "webhooks", "notify") else "solo"
            self.spawn(f"worker-{q}", "worker", "--queues", q, "--pool", pool, "--concurrency", "4" if pool == "threads" else "1")
        self.spawn("relay", "relay")
        deadline = time.monotonic() + 60  # a loaded 2-core machine starts processes slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()  # a fixture that fails in setup never reaches its teardown
        raise RuntimeError(f"the API did not come up; see {self.logs}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_text(self) -> str:
        assert self.logs is not None
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def external_broker_url() -> str | None:
    return os.environ.get("TWOFA_TEST_BROKER_URL") or None


def start_embedded(var_dir: Path) -> EmbeddedBroker:
    return EmbeddedBroker(var_dir / "broker", persistent=False).start()
