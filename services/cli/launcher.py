"""``twofa dev``: the whole service from one command, and one owner for all of it.

Starts (in order) the schema migration, the embedded broker if no broker is
configured, then the API, one worker process per queue and the relay, each as a
child process. Ctrl-C, SIGTERM or the death of any child stops every child and the
broker; the children also die with the launcher if it is killed outright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from services.cli.embedded_broker import EmbeddedBroker, _die_with_parent
from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.migrate import upgrade
from services.core.plumbing.settings import EMBEDDED_BROKER, Settings

# Queue → pool: I/O-bound senders get threads; the audit chain is appended by one thread.
# SMS: 64 threads keep ~300 sends in flight per second at Twilio's ~100 ms (docs/sms.md).
# Webhooks: a thread per receiver being delivered to, so one that hangs holds only its own.
WORKER_LAYOUT = {"sms": ("threads", 64), "push": ("threads", 8), "expiry": ("solo", 1),
                 "audit": ("solo", 1), "webhooks": ("threads", 8), "notify": ("threads", 4)}


@dataclass
class Supervisor:
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        cmd = [sys.executable, "-m", "services.cli.main", *args]
        self.children[name] = subprocess.Popen(cmd, env=self.env, preexec_fn=_die_with_parent)

    def first_exited(self) -> str | None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                return name
        return None

    def stop_all(self, timeout: float = 10.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def child_env(settings: Settings, broker_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TWOFA_BROKER_URL"] = broker_url
    env["TWOFA_DATABASE_URL"] = settings.resolved_database_url
    env["TWOFA_VAR_DIR"] = str(settings.var_dir.resolve())
    return env


def start_processes(sup: Supervisor, host: str, port: int, queues: tuple[str, ...] = QUEUES) -> None:
    sup.spawn("api", "serve", "--host", host, "--port", str(port))
    for queue in queues:
        pool, concurrency = WORKER_LAYOUT[queue]
        sup.spawn(f"worker-{queue}", "worker", "--queues", queue, "--pool", pool, "--concurrency", str(concurrency))
    sup.spawn("relay", "relay")


def run_dev(settings: Settings, *, host: str, port: int) -> int:
    upgrade(settings.resolved_database_url)
    broker: EmbeddedBroker | None = None
    if settings.broker_url == EMBEDDED_BROKER:
        broker = EmbeddedBroker(settings.var_dir.resolve() / "broker").start()
        broker_url = broker.url
    else:
        broker_url = settings.broker_url
    sup = Supervisor(child_env(settings, broker_url))
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        start_processes(sup, host, port)
        # The reference portal (issue 8): its own process, an HTTP client with its own key.
        from services.cli import portal_cmd

        sup.env.update(portal_cmd.dev_env(settings, host, port))  # spawned last: only it sees these
        sup.spawn("portal", "portal", "serve", "--host", host, "--port", str(port + 1))
        print(f"twofa dev: portal on http://{host}:{port + 1}/portal/ (accounts: twofa portal adduser NAME)", flush=True)
        print(f"twofa dev: API on http://{host}:{port} (docs at /docs); Ctrl-C stops everything", flush=True)
        print(f"twofa dev: database {settings.resolved_database_url}; broker {'embedded' if broker else broker_url}", flush=True)
        print(f"twofa dev: console SMS and push messages go to {settings.var_dir.resolve() / 'outbox'}", flush=True)
        while not stopping:
            dead = sup.first_exited()
            if dead:
                print(f"twofa dev: {dead} exited; stopping everything", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        sup.stop_all()
        if broker is not None:
            broker.stop()
