"""``twofa dev``: the whole service from one command, and one owner for all of it.

Checks that its ports are free, then starts the schema migration, the embedded broker
if no broker is configured, the API, one worker process per queue, the relay and the
reference portal, each as a child process, and prints where to find them once every
one of them answers. Ctrl-C, SIGTERM or the death of any child stops every child and
the broker; the children also die with the launcher if it is killed outright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery.utils.nodenames import host_format
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.cli.embedded_broker import EmbeddedBroker, _die_with_parent
from services.cli.readiness import (
    Listener,
    PortUnavailable,
    WorkersAnswer,
    ensure_free,
    http_ok,
    url,
)
from services.core.plumbing.messaging.celery_config import make_celery
from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.migrate import upgrade
from services.core.plumbing.settings import EMBEDDED_BROKER, Settings

# Queue → pool: I/O-bound senders get threads; the audit chain is appended by one thread.
# SMS: enough threads to keep hundreds of sends a second in flight at Twilio's latency
# (docs/sms.md).
# Webhooks: a thread per receiver being delivered to, so one that hangs holds only its own.
WORKER_LAYOUT = {"sms": ("threads", 64), "push": ("threads", 8), "expiry": ("solo", 1),
                 "audit": ("solo", 1), "webhooks": ("threads", 8), "notify": ("threads", 4)}
READY_WITHIN_SECONDS = 90.0


@dataclass
class Supervisor:
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        cmd = [sys.executable, "-m", "services.cli.main", *args]
        # A process group of its own: Ctrl-C reaches the launcher alone, which then stops
        # each child once (a child in the terminal's group would get SIGINT and SIGTERM).
        self.children[name] = subprocess.Popen(
            cmd, env=self.env, preexec_fn=_die_with_parent, process_group=0
        )

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


def child_env(settings: Settings, broker_url: str, host: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["TWOFA_BROKER_URL"] = broker_url
    env["TWOFA_DATABASE_URL"] = settings.resolved_database_url
    env["TWOFA_VAR_DIR"] = str(settings.var_dir.resolve())
    if "public_url" not in settings.model_fields_set:
        # The push app must reach the API on the port it really listens on.
        env["TWOFA_PUBLIC_URL"] = url(host, port)
    return env


def start_processes(
    sup: Supervisor, host: str, port: int, queues: tuple[str, ...] = QUEUES
) -> None:
    sup.spawn("api", "serve", "--host", host, "--port", str(port))
    for queue in queues:
        pool, concurrency = WORKER_LAYOUT[queue]
        sup.spawn(
            f"worker-{queue}",
            "worker",
            "--queues",
            queue,
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--quiet",
        )
    sup.spawn("relay", "relay")


def worker_nodenames(queues: tuple[str, ...] = QUEUES) -> list[str]:
    """The names ``twofa worker`` gives itself (``sms@host``), expanded as Celery does."""
    return [host_format(f"{queue}@%h") for queue in queues]


def _shown(address: str) -> str:
    """A database or broker URL fit for the console: the password masked."""
    try:
        return make_url(address).render_as_string(hide_password=True)
    except ArgumentError:
        return address.split("://", 1)[0] + "://…"


def run_dev(settings: Settings, *, host: str, port: int, portal_port: int | None) -> int:
    """``portal_port`` None: no portal."""
    started = time.monotonic()
    listeners = [Listener("the API", port, "--port")]
    if portal_port is not None:
        listeners.append(Listener("the portal", portal_port, "--portal-port (or --no-portal)"))
    try:
        ensure_free(host, listeners)
    except PortUnavailable as exc:
        print(f"twofa dev: {exc}", file=sys.stderr, flush=True)
        return 1
    upgrade(settings.resolved_database_url)
    broker: EmbeddedBroker | None = None
    if settings.broker_url == EMBEDDED_BROKER:
        broker = EmbeddedBroker(settings.var_dir.resolve() / "broker").start()
        broker_url = broker.url
    else:
        broker_url = settings.broker_url
    sup = Supervisor(child_env(settings, broker_url, host, port))
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    control = make_celery(settings.model_copy(update={"broker_url": broker_url}), "twofa-dev")
    try:
        start_processes(sup, host, port)
        checks: dict[str, Callable[[], bool]] = {
            "the API": http_ok(url(host, port, "/healthz")),
            "the workers": WorkersAnswer(control, worker_nodenames()),
        }
        banner = [
            f"twofa dev: database {_shown(settings.resolved_database_url)}; "
            f"broker {'embedded' if broker else _shown(broker_url)}",
            "twofa dev: console SMS and push messages go to "
            f"{settings.var_dir.resolve() / 'outbox'}",
        ]
        if portal_port is not None:
            from services.cli import portal_cmd

            # Spawned last: only the portal sees these.
            sup.env.update(portal_cmd.dev_env(settings, url(host, port)))
            sup.spawn("portal", "portal", "serve", "--host", host, "--port", str(portal_port))
            sign_in = url(host, portal_port, portal_cmd.sign_in_path())
            checks["the portal"] = http_ok(sign_in)
            banner.append(
                f"twofa dev: portal on {url(host, portal_port, portal_cmd.base_path() + '/')} "
                "(accounts: twofa portal adduser NAME)"
            )
        if os.geteuid() == 0:
            banner.append(
                "twofa dev: running as root, and so are the workers: "
                "fine to try it out, not in production"
            )
        banner.append(
            f"twofa dev: API on {url(host, port)} (docs at /docs); Ctrl-C stops everything"
        )

        waiting = dict(checks)
        deadline = started + READY_WITHIN_SECONDS
        while not stopping:
            dead = sup.first_exited()
            if dead:
                print(f"twofa dev: {dead} exited; stopping everything", file=sys.stderr, flush=True)
                return 1
            if waiting:
                waiting = {name: check for name, check in waiting.items() if not check()}
                if not waiting:
                    print(f"twofa dev: ready in {time.monotonic() - started:.1f} s", flush=True)
                    print("\n".join(banner), flush=True)
                elif time.monotonic() > deadline:
                    print(
                        f"twofa dev: {' and '.join(waiting)} did not answer within "
                        f"{READY_WITHIN_SECONDS:.0f} s; stopping everything",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        sup.stop_all()
        control.close()
        if broker is not None:
            broker.stop()
