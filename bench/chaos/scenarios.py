"""The faults, one scenario each. A scenario is one entry in ``SCENARIOS``: its fault (a
function that injects it and returns when the fault has ended), the load's mix during it, its
full and short timings, and which goals apply.

A fault function gets the run (the stack, the fakes, the broker and database, a seeded
random generator) and its timing, and blocks for the fault's duration.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.chaos.run import Run


@dataclass(frozen=True)
class Timing:
    warm: float  # seconds of load before the fault
    fault: float  # seconds the fault lasts (or between kills)
    after: float  # seconds of load after the fault ended
    count: int = 1  # kills, for the kill scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fault: Callable[[Run, Timing], str]  # returns a one-line description of what it did
    full: Timing
    short: Timing
    mix: tuple[str, ...] = ("totp", "sms", "push", "sms", "push", "enroll")
    broker_down: bool = False  # the "no 5xx while the broker is down" goal applies
    every_code_delivered: bool = False  # the "every code delivered" goal applies
    available: Callable[[], str | None] = field(default=lambda: None)  # None, or why not
    prepare: Callable[[Run], None] | None = None  # before the load starts
    epilogue: Callable[[Run], str] | None = None  # after the load stopped: more to report
    # a goal of this scenario alone: (goal, met or None, must hold, figure or cause)
    goal: Callable[[Run], tuple[str, bool | None, bool, str]] | None = None


def broker_outage(run: Run, t: Timing) -> str:
    run.redis.stop()
    time.sleep(t.fault)
    run.redis.start()
    return f"redis-server stopped (clean shutdown, append-only file kept) for {t.fault:.0f} s"


# the workers an SMS or PUSH login goes through (webhooks and notify are not on its path)
KILLABLE = ("worker-sms", "worker-push", "worker-audit", "worker-expiry")


def worker_kills(run: Run, t: Timing) -> str:
    hit: dict[str, int] = {}
    for _ in range(t.count):
        targets = [(n, pid) for n, pid in run.stack.worker_pids() if n in KILLABLE]
        if targets:
            name, pid = run.rng.choice(targets)
            try:
                os.kill(pid, signal.SIGKILL)
                hit[name] = hit.get(name, 0) + 1
            except ProcessLookupError:
                pass
        time.sleep(t.fault)
    kills = ", ".join(f"{n.removeprefix('worker-')} {k}" for n, k in sorted(hit.items()))
    return f"{sum(hit.values())} SIGKILLs, one every {t.fault:g} s ({kills})"


def flaky_sms(run: Run, t: Timing) -> str:
    run.twilio.failure_rate = 0.3
    before = sum(run.twilio.failures.values())
    time.sleep(t.fault)
    run.twilio.failure_rate = 0.0
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(run.twilio.failures.items()))
    return (f"Twilio answered 30 % of sends with 5xx, 429 or a timeout for {t.fault:.0f} s "
            f"({sum(run.twilio.failures.values()) - before} failed calls: {kinds})")


def postgres_restart(run: Run, t: Timing) -> str:
    t0 = time.monotonic()
    run.pg.stop()
    run.pg.start()
    return f"PostgreSQL restarted (fast shutdown, start): down {time.monotonic() - t0:.1f} s"


def api_kills(run: Run, t: Timing) -> str:
    done = 0
    for i in range(t.count):
        pids = run.stack.api_worker_pids()
        if pids:
            try:
                os.kill(run.rng.choice(pids), signal.SIGKILL)
                done += 1
            except ProcessLookupError:
                pass
        if i < t.count - 1:
            time.sleep(t.fault)
    return f"{done} SIGKILL of an API worker process (uvicorn --workers 2 starts a new one)"


def _second_provider() -> str | None:
    """None when this commit has a second SMS provider and its fake; else why not."""
    import importlib.util

    from services.core.plumbing.settings import Settings

    if "sms_providers" not in Settings.model_fields:
        return "this commit has no TWOFA_SMS_PROVIDERS (no second SMS provider yet)"
    if importlib.util.find_spec("tests.fakes.fake_vonage") is None:
        return "this commit has no FakeVonage (tests/fakes/fake_vonage.py)"
    return None


def _with_vonage(run: Run) -> None:
    run.enable_vonage()


def twilio_outage(run: Run, t: Timing) -> str:
    before = run.sms_counts()
    run.twilio.outage = True
    time.sleep(t.fault)
    run.twilio.outage = False
    run.marks["outage_end"] = run.sms_counts()
    during = {k: n - before.get(k, 0) for k, n in run.marks["outage_end"].items()}
    return (f"Twilio failed every send (5xx, 429, timeouts) for {t.fault:.0f} s; meanwhile "
            f"{during.get('vonage', 0)} SMS went through Vonage, {during.get('twilio', 0)} "
            "through Twilio")


def _after_outage(run: Run) -> dict[str, int]:
    end = run.marks["outage_end"]
    return {k: n - end.get(k, 0) for k, n in run.sms_counts().items()}


def back_to_twilio(run: Run) -> str:
    after = _after_outage(run)
    return (f"after the outage {after.get('twilio', 0)} SMS went through Twilio, "
            f"{after.get('vonage', 0)} through Vonage")


def twilio_again(run: Run) -> tuple[str, bool | None, bool, str]:
    """Timing: the circuit lets Twilio back in only after its open time."""
    n = _after_outage(run).get("twilio", 0)
    return ("back to Twilio after the outage", n > 0, False,
            f"{n} SMS through Twilio in the {run.current_after:g} s of load after the outage "
            "(a worker's circuit keeps Twilio out for TWOFA_SMS_CIRCUIT_OPEN_SECONDS)")


SCENARIOS: list[Scenario] = [
    Scenario("broker", "Redis stopped under load, then started", broker_outage,
             full=Timing(warm=15, fault=30, after=30), short=Timing(warm=4, fault=8, after=8),
             broker_down=True),
    Scenario("worker-kill", "a random worker process SIGKILLed every few seconds",
             worker_kills, full=Timing(warm=10, fault=2, after=30, count=100),
             short=Timing(warm=3, fault=1.5, after=8, count=8), mix=("sms", "push")),
    Scenario("sms-flaky", "Twilio answering 30 % of sends with 5xx, 429 or a timeout",
             flaky_sms, full=Timing(warm=10, fault=45, after=20),
             short=Timing(warm=3, fault=10, after=6), mix=("sms", "sms", "totp", "push")),
    Scenario("postgres", "PostgreSQL restarted under load", postgres_restart,
             full=Timing(warm=15, fault=0, after=20), short=Timing(warm=4, fault=0, after=8)),
    Scenario("api-kill", "an API worker process SIGKILLed under load", api_kills,
             full=Timing(warm=15, fault=10, after=20, count=3),
             short=Timing(warm=4, fault=0, after=8, count=1)),
    Scenario("sms-failover", "Twilio failing every send, Vonage second in TWOFA_SMS_PROVIDERS",
             twilio_outage, full=Timing(warm=10, fault=60, after=45),
             short=Timing(warm=4, fault=8, after=6), mix=("sms", "sms", "totp"),
             every_code_delivered=True, available=_second_provider, prepare=_with_vonage,
             epilogue=back_to_twilio, goal=twilio_again),
]
