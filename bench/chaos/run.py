"""One chaos run: the services, the stack and the load started once; each scenario in turn on
its own window of time; everything counted from the database and the fakes.

A scenario: load for ``warm`` s, the fault, load for ``after`` s more, the load stopped (its
logins in flight finish), then up to ``drain`` s for the audit chain to hold every event the
scenario committed. The next scenario starts on a service that has drained.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos import accounting
from bench.chaos.fakes import FlakyTwilio, SmsFakes
from bench.chaos.load import KINDS, Load
from bench.chaos.probe import CatchUp, Probe, Window
from bench.chaos.scenarios import Scenario, Timing
from bench.chaos.services import OwnPostgres, OwnRedis
from bench.chaos.stack import CHALLENGE_TTL, SMS_SEND_TIMEOUT, ChaosStack
from bench.compare.procs import Procs
from tests.fakes.fake_fcm import FakeFCM

FINAL_GRACE = 60.0  # every challenge final within its TTL + this
RECOVERY_GOAL = 10.0


@dataclass
class Result:
    scenario: Scenario
    timing: Timing
    what: str = ""
    window: Window | None = None
    fault_start: float = 0.0
    fault_end: float = 0.0
    logins: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (ok, total)
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count
    api_5xx: int = 0
    api_5xx_in_fault: int = 0
    transport_errors: int = 0
    events: accounting.EventCount | None = None
    sms: accounting.DeliveryCount | None = None
    push: accounting.DeliveryCount | None = None
    final: accounting.FinalCount | None = None
    recovery: float | None = None
    recovery_parts: dict[str, float | None] = field(default_factory=dict)
    caught_up: float | None = None
    restarts: int = 0
    restarted: dict[str, int] = field(default_factory=dict)  # process name -> restarts
    extra_goals: list[tuple[str, bool | None, bool, str]] = field(default_factory=list)
    # events, SMS and pushes as counted when the scenario drained (the fields above are
    # counted again at the end of the run)
    at_drain: tuple[accounting.EventCount | None, accounting.DeliveryCount | None,
                    accounting.DeliveryCount | None] = (None, None, None)
    drain_seconds: float = 0.0

    def goals(self) -> list[tuple[str, bool | None, bool, str]]:
        """(goal, met (None: not measured), must hold, cause when missed)."""
        out: list[tuple[str, bool | None, bool, str]] = []
        ev = self.events
        assert ev is not None and self.sms is not None
        out.append(("0 events lost", not ev.lost, True,
                    f"{len(ev.lost)} of {ev.committed} committed events not in the audit chain "
                    "at the end of the run"))
        if self.scenario.every_code_delivered:
            out.append(("every code delivered", self.sms.never_delivered == 0, True,
                        f"{self.sms.never_delivered} of {self.sms.requested} codes never sent "
                        f"({self.sms.failed_on_record} of them recorded as failed)"))
        if self.scenario.broker_down:
            out.append(("0 API 5xx while the broker is down", self.api_5xx_in_fault == 0, True,
                        f"{self.api_5xx_in_fault} answers with 5xx during the outage"))
        out.append(("no code sent twice", self.sms.duplicated == 0, True,
                    f"{self.sms.duplicated} codes sent more than once "
                    f"({self.sms.extra_sends} extra SMS)"))
        f = self.final
        if f is not None:
            bad = f.late + f.open_past_deadline
            # pending ones whose deadline had not come when counted leave the goal open
            met: bool | None = False if bad else (None if f.not_yet_due else True)
            out.append((f"every challenge final within TTL + {FINAL_GRACE:.0f} s", met, False,
                        f"{f.open_past_deadline} still pending past the deadline, {f.late} late"
                        + (f", {f.not_yet_due} not yet due when counted" if f.not_yet_due else "")))
        parts = ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}"
                          for k, v in self.recovery_parts.items())
        out.append((f"recovery within {RECOVERY_GOAL:.0f} s",
                    self.recovery is not None and self.recovery <= RECOVERY_GOAL, False,
                    ("never recovered in the window" if self.recovery is None
                     else f"{self.recovery:.1f} s") + (f" ({parts})" if parts else "")))
        return out + self.extra_goals


class Run:
    def __init__(self, *, short: bool, port_base: int, seed: int = 17, keep: bool = False) -> None:
        self.short = short
        self.work = Path(tempfile.mkdtemp(prefix="twofa-chaos-"))
        self.procs = Procs(self.work / "logs")
        self.redis = OwnRedis(self.procs, self.work, port_base + 1)
        self.pg = OwnPostgres(self.procs, self.work, port_base + 2)
        self.twilio = FlakyTwilio(send_timeout=SMS_SEND_TIMEOUT, seed=seed)
        self.sms = SmsFakes(self.twilio)
        self.vonage: Any = None  # the test suite's FakeVonage, once a scenario needs it
        self.fcm = FakeFCM()
        self.rng = random.Random(seed)
        self.keep = keep
        self.stack: ChaosStack
        self.load: Load
        self.probe: Probe
        self.results: list[Result] = []
        self.marks: dict[str, dict[str, int]] = {}  # what a fault noted for its epilogue
        self.current_after = 0.0  # the running scenario's load after its fault, in seconds
        self.skipped: list[tuple[str, str]] = []
        self.rate = 0.0

    # -- setup ---------------------------------------------------------------------------------
    def start(self, *, rate: float, threads: int, totp_users: int, sms_users: int,
              push_users: int) -> None:
        self.rate = rate
        self.twilio.start()
        self.fcm.start()
        self.pg.init()
        self.pg.start()
        self.redis.start()
        url = self.pg.fresh_database("twofa_chaos")
        self.stack = ChaosStack(self.work, self.procs, url, self.redis.url, self.twilio, self.fcm)
        self.stack.migrate()
        seeded = self.stack.seed(totp_users, prefix="t")
        self.stack.start()
        self.probe = Probe(url)
        wait = 10.0 if self.short else 30.0
        self.load = Load(self.stack.url, self.stack.api_key, self.sms, self.fcm,
                         self.probe.nonce_of, totp=seeded,
                         sms_users=sms_users, push_users=push_users, threads=threads,
                         sms_wait=wait, push_wait=wait)
        self.load.enroll_factors()

    def sms_counts(self) -> dict[str, int]:
        return {provider: len(sent) for provider, sent in self.sms.accepted().items()}

    def enable_vonage(self) -> None:
        """FakeVonage started and the SMS worker restarted with ``twilio,vonage``."""
        from tests.fakes.fake_vonage import FakeVonage  # type: ignore[import-not-found,unused-ignore]

        if self.vonage is None:
            self.vonage = FakeVonage().start()
            self.sms.vonage = self.vonage
        v = self.vonage
        self.stack.extra_env.update(
            TWOFA_SMS_PROVIDERS="twilio,vonage", TWOFA_SMS_PROVIDER="", VONAGE_API_KEY=v.api_key,
            VONAGE_API_SECRET=v.api_secret, VONAGE_SIGNATURE_SECRET=v.signature_secret,
            VONAGE_FROM="twofa", TWOFA_VONAGE_API_URL=v.url)
        self.stack.restart("worker-sms")

    def stop(self) -> None:
        try:
            if hasattr(self, "load"):
                self.load.stop()
            if hasattr(self, "probe"):
                self.probe.close()
            if hasattr(self, "stack"):
                self.stack.stop()
        finally:
            with contextlib.suppress(Exception):
                self.pg.stop()  # a fast shutdown; stop_all's SIGTERM would wait for clients
            self.procs.stop_all()
            self.twilio.stop()
            self.fcm.stop()
            if self.vonage is not None:
                self.vonage.stop()
            if not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)

    # -- one scenario --------------------------------------------------------------------------
    def scenario(self, sc: Scenario) -> Result:
        t = sc.short if self.short else sc.full
        res = Result(sc, t)
        drain = 20.0 if self.short else 120.0
        restarts0 = len(self.stack.restarts)
        seq0 = self.probe.max_seq_retrying()
        t0 = datetime.now(UTC)
        if sc.prepare is not None:
            sc.prepare(self)
        self.current_after = t.after
        self.load.mix = sc.mix
        self.load.start(self.rate)
        time.sleep(t.warm)
        res.fault_start = time.time()
        res.what = sc.fault(self, t)
        res.fault_end = time.time()
        seq_fault = self.probe.max_seq_retrying()
        catch = CatchUp(self.probe, seq0, seq_fault)
        time.sleep(t.after)
        self.load.stop()
        if sc.epilogue is not None:
            res.what += "; " + sc.epilogue(self)
        if sc.goal is not None:
            res.extra_goals.append(sc.goal(self))
        t1 = datetime.now(UTC)
        seq1 = self.probe.max_seq_retrying()
        res.window = Window(seq0, seq1, t0, t1)
        d0 = time.monotonic()
        while time.monotonic() - d0 < drain:
            try:
                if self.probe.missing_from_chain(seq0, seq1) == 0:
                    break
            except Exception:
                pass
            time.sleep(0.5)
        res.drain_seconds = time.monotonic() - d0
        res.caught_up = catch.wait(0)
        restarted = [name for _, name in self.stack.restarts[restarts0:]]
        res.restarts = len(restarted)
        res.restarted = {n: restarted.count(n) for n in sorted(set(restarted))}
        self._count(res)
        self.results.append(res)
        return res

    def _count(self, res: Result) -> None:
        w = res.window
        assert w is not None
        lo, hi = w.t_from.timestamp(), w.t_to.timestamp()
        rec = self.load.rec
        outcomes = [o for o in list(rec.outcomes) if lo <= o.started <= hi]
        for kind in KINDS:
            mine = [o for o in outcomes if o.kind == kind]
            if mine:
                res.logins[kind] = (sum(1 for o in mine if o.ok), len(mine))
        for o in outcomes:
            if not o.ok:
                key = f"{o.kind}: {o.detail}"
                res.failures[key] = res.failures.get(key, 0) + 1
        responses = list(rec.responses)
        res.api_5xx = accounting.status_5xx(responses, lo, hi)
        res.api_5xx_in_fault = accounting.status_5xx(responses, res.fault_start, res.fault_end)
        res.transport_errors = sum(1 for x in list(rec.transport_errors) if lo <= x <= hi)
        res.events, res.sms, res.push = self._deliveries(w)
        successes = {k: [(o.started, o.finished) for o in outcomes if o.kind == k and o.ok]
                     for k in KINDS}
        res.recovery = accounting.recovery_seconds(res.fault_end, successes, res.caught_up)
        res.recovery_parts = accounting.recovery_parts(res.fault_end, successes, res.caught_up)

    def _deliveries(self, w: Window) -> tuple[accounting.EventCount, accounting.DeliveryCount,
                                              accounting.DeliveryCount]:
        events = accounting.events(self.probe.committed(w), self.probe.audited(w))
        codes, failed = self.probe.sms_codes(w)
        sms = accounting.deliveries(codes, self.sms.sends_per_message_id(), failed)
        pushes = accounting.deliveries(self.probe.push_nonces(w), accounting.tally(
            m.data.get("nonce", "?") for m in self.fcm.messages))
        return events, sms, pushes

    def recount(self, wait_for_all: bool) -> None:
        """At the end of the run: every scenario's events and deliveries again (what came
        late, e.g. after a visibility timeout, is no longer missing; what is still missing is
        lost), and its challenges against TTL + grace. Optionally waits first until the last
        challenge's deadline has passed (bounded: TTL + grace + 5 s)."""
        if wait_for_all and self.results:
            last = self.results[-1].window
            assert last is not None
            until = last.t_to.timestamp() + CHALLENGE_TTL + FINAL_GRACE + 5
            while time.time() < until:
                time.sleep(1)
        now = datetime.now(UTC)
        for res in self.results:
            assert res.window is not None
            res.at_drain = (res.events, res.sms, res.push)
            res.events, res.sms, res.push = self._deliveries(res.window)
            res.final = accounting.finality(self.probe.challenges(res.window),
                                            grace_seconds=FINAL_GRACE, now=now)
