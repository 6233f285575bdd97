"""bench/CHAOS.md: the machine, the command, one table of figures, one of goals, and what
each scenario did."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path

from bench.chaos.run import FINAL_GRACE, Result, Run
from bench.chaos.stack import CHALLENGE_TTL, PUSH_TTL, SMS_SEND_TIMEOUT, WORKERS


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.1f} GiB, {platform.platform()}, "
            f"Python {platform.python_version()}")


def _versions() -> str:
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return done.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    return f"{out(['redis-server', '--version'])}; {out(['psql', '--version'])}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _pair(ok: int, total: int) -> str:
    return f"{ok}/{total}"


def figures_table(results: list[Result]) -> list[str]:
    columns = ["scenario", "logins ok / started", "API 5xx (in fault)", "connection errors",
               "events committed / not in chain after drain / lost",
               "SMS codes: once / twice+ / not sent after drain / never (failed on record)",
               "pushes: once / twice+ / not sent after drain / never",
               "challenges: final in time / late / open past deadline / not yet due",
               "recovery", "workers restarted"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in results:
        ev, sms, push, f = r.events, r.sms, r.push, r.final
        ev0, sms0, push0 = r.at_drain if r.at_drain[0] is not None else (ev, sms, push)
        assert ev is not None and sms is not None and push is not None
        assert ev0 is not None and sms0 is not None and push0 is not None
        ok = sum(v[0] for v in r.logins.values())
        total = sum(v[1] for v in r.logins.values())
        per = ", ".join(f"{k} {_pair(*v)}" for k, v in r.logins.items())
        fin = (f"{f.final_in_time} / {f.late} / {f.open_past_deadline} / {f.not_yet_due}"
               if f is not None else "–")
        rec = f"{r.recovery:.1f} s" if r.recovery is not None else "not recovered"
        rows.append(
            f"| {r.scenario.name} | {ok}/{total} ({per}) | {r.api_5xx} ({r.api_5xx_in_fault}) | "
            f"{r.transport_errors} | {ev.committed} / {len(ev0.lost)} / {len(ev.lost)} | "
            f"{sms.requested}: {sms.delivered_once} / {sms.duplicated} / "
            f"{sms0.never_delivered} / {sms.never_delivered} ({sms.failed_on_record}) | "
            f"{push.requested}: {push.delivered_once} / {push.duplicated} / "
            f"{push0.never_delivered} / {push.never_delivered} | {fin} | {rec} | {r.restarts} |")
    return rows


def goals_table(results: list[Result], short: bool) -> list[str]:
    rows = ["| scenario | goal | result | must hold in this mode | figure / cause |",
            "|---|---|---|---|---|"]
    for r in results:
        for goal, met, must, cause in r.goals():
            verdict = "met" if met else ("not measured" if met is None else "**missed**")
            hold = "yes" if must or not short else "no (timing)"
            rows.append(f"| {r.scenario.name} | {goal} | {verdict} | {hold} | {cause} |")
    return rows


def failed_goals(results: list[Result], short: bool) -> list[str]:
    out = []
    for r in results:
        for goal, met, must, cause in r.goals():
            if met is False and (must or not short):
                out.append(f"{r.scenario.name}: {goal}: {cause}")
    return out


ANALYSIS = "## Analysis"


def kept_analysis(path: Path) -> str:
    """The hand-written analysis at the end of an earlier report (from ``## Analysis`` on),
    kept when the tables are written again."""
    try:
        old = path.read_text()
    except OSError:
        return ""
    at = old.find("\n" + ANALYSIS)
    return "" if at < 0 else old[at + 1:]


def render(run: Run, command: str, started: datetime, seconds: float) -> str:
    mode = "short" if run.short else "full"
    lines = [
        "# Chaos: faults under load, counted",
        "",
        f"Made by `{command}` ({mode} run, {seconds:.0f} s) on {started:%Y-%m-%d %H:%M} UTC, "
        f"commit `{_commit()}`.",
        "",
        f"Machine: {_machine()}. {_versions()}.",
        "",
        "Production shape as processes on loopback (docs/operations.md): "
        "`twofa serve --workers 2`, "
        "`twofa relay`, one `twofa worker` per queue ("
        + ", ".join(f"{q} {p}×{c}" for q, (p, c) in WORKERS.items())
        + "), on the run's own PostgreSQL cluster and redis-server (append-only), Twilio and FCM "
        "faked over HTTP (tests/fakes), the privacyIDEA Authenticator emulated "
        "(tests/fakes/pi_app.py). "
        "A supervisor restarts a dead worker or relay; uvicorn restarts a dead API worker. "
        f"Challenge and SMS-code TTL {CHALLENGE_TTL} s, push TTL {PUSH_TTL} s, SMS send timeout "
        f"{SMS_SEND_TIMEOUT:g} s; broker visibility timeout and prefetch as the service sets them. "
        f"Load: {run.rate:g} logins/s from {run.load.threads} threads; each login is what a "
        "relying party and a user do (challenge, select, the code read from the fake Twilio or "
        "the push answered by the emulated app, verify or wait for approval); `enroll` starts, "
        "activates and (a time step later) confirms a TOTP token.",
        "",
        "## Figures",
        "",
        *figures_table(run.results),
        "",
        "Counted by id, once when the scenario has drained (up to 20 s in a short run, 120 s in "
        "a full one, after its load stopped) and again at the end of the run (\"lost\", "
        "\"never\"): what a broker redelivers after its visibility timeout arrives in between. "
        "Events committed are the outbox rows of the scenario's window, matched by "
        "event id to the audit chain; SMS per code are the fake Twilio's accepted messages per "
        "twofa message id (it rides in the status-callback URL), against `sms_codes` rows of the "
        "window; pushes per challenge are the fake FCM's messages per nonce against "
        "`push_challenges`. \"failed on record\": codes never sent that the service closed as "
        "failed or unknown (a known outcome; the rest are silent losses). Recovery: from the end "
        "of the fault until a login of every kind in the mix, started after it, has succeeded and "
        "the audit chain holds every event committed before it. Challenges are counted against "
        f"their expiry + {FINAL_GRACE:.0f} s when the run ends.",
        "",
        "## Goals",
        "",
        *goals_table(run.results, run.short),
        "",
        "Must hold in every mode: no event lost, no code sent twice, no 5xx while the broker is "
        "down (the run exits non-zero when one is missed). The timing goals (challenges final "
        "within TTL + 60 s, recovery within 10 s) fail only the full run: a short run is too short "
        "to let every challenge reach its deadline and shares two cores with CI.",
        "",
        "## What each scenario did",
        "",
    ]
    for r in run.results:
        t = r.timing
        lines.append(f"- **{r.scenario.name}** ({r.scenario.title}): load {t.warm:g} s, then "
                     f"{r.what}, then load {t.after:g} s; mix {'/'.join(r.scenario.mix)}; drained "
                     f"{r.drain_seconds:.1f} s.")
        if r.restarted:
            lines.append("  Restarted by the supervisor: " + ", ".join(
                f"{n} ×{k}" for n, k in r.restarted.items()) + ".")
        if r.failures:
            top = sorted(r.failures.items(), key=lambda kv: -kv[1])[:6]
            lines.append("  Logins that failed: " + "; ".join(f"{k} ×{n}" for k, n in top) + ".")
    for sc in run.skipped:
        lines.append(f"- **{sc[0]}**: not run: {sc[1]}.")
    lines.append("")
    return "\n".join(lines)
