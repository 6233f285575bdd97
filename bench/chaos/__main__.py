"""Faults under load, counted: ``python -m bench.chaos [--short] [--only NAME ...]``.

Loopback only, bounded in time; every process it starts (its own PostgreSQL cluster and
redis-server on ports from ``--port-base``, the twofa processes) is stopped at the end, on
Ctrl-C, SIGTERM or an exception, and dies with it if it is killed. Writes bench/CHAOS.md
(``--out``; a short run writes only where ``--out`` says). Exits 1 when a goal that must
hold is missed (no event lost, no code sent twice, no 5xx while the broker is down), and in a
full run also when a timing goal is missed.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.chaos import report
from bench.chaos.run import Run
from bench.chaos.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="every scenario, shortened (under 3 min)")
    ap.add_argument("--only", nargs="+", choices=[s.name for s in SCENARIOS],
                    help="these scenarios")
    ap.add_argument("--out", type=Path, default=None,
                    help="the report (default: bench/CHAOS.md for a full run, none for --short)")
    ap.add_argument("--port-base", type=int, default=18300,
                    help="Redis listens on BASE+1, PostgreSQL on BASE+2")
    ap.add_argument("--rate", type=float, default=8.0, help="logins per second")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    args = ap.parse_args(argv)
    out = args.out if args.out is not None else (
        None if args.short else ROOT / "bench" / "CHAOS.md")
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Ctrl-C must still stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    started, t0 = datetime.now(UTC), time.monotonic()
    run = Run(short=args.short, port_base=args.port_base, seed=args.seed, keep=args.keep)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    try:
        print(f"chaos: work dir {run.work}", flush=True)
        run.start(rate=args.rate, threads=args.threads, totp_users=600,
                  sms_users=40 if args.short else 80, push_users=16 if args.short else 24)
        print(f"chaos: stack up in {time.monotonic() - t0:.0f} s", flush=True)
        for sc in chosen:
            why = sc.available()
            if why is not None:
                run.skipped.append((sc.name, why))
                print(f"chaos: {sc.name}: skipped ({why})", flush=True)
                continue
            res = run.scenario(sc)
            ev, sms = res.events, res.sms
            assert ev is not None and sms is not None
            print(f"chaos: {sc.name}: {res.what}; 5xx {res.api_5xx} "
                  f"(in fault {res.api_5xx_in_fault}), "
                  f"events {ev.committed}/{ev.in_chain} lost {len(ev.lost)}, SMS {sms.requested} "
                  f"dup {sms.duplicated} never {sms.never_delivered}, recovery "
                  f"{'-' if res.recovery is None else f'{res.recovery:.1f} s'} "
                  f"[{time.monotonic() - t0:.0f} s]", flush=True)
        run.recount(wait_for_all=not args.short)
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping everything", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run.stop()
    left = run.procs.survivors()
    seconds = time.monotonic() - t0
    command = "python -m bench.chaos " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = report.render(run, command.strip(), started, seconds)
    print(text)
    if out is not None:
        out.write_text(text + report.kept_analysis(out))
        print(f"chaos: wrote {out}")
    failed = report.failed_goals(run.results, run.short)
    for line in failed:
        print(f"chaos: goal missed: {line}")
    if left:
        print(f"chaos: processes still running after stop: {left}", file=sys.stderr)
    print(f"chaos: {len(run.results)} scenarios in {seconds:.0f} s; "
          f"{'all goals that must hold were met' if not failed else f'{len(failed)} goals missed'}")
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
