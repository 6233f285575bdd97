"""twofa alone, for iterating on the login path: ``python -m bench.compare.twofa_only``.

Starts the production-shape stack of ``bench.compare`` (SQLite unless ``--database-url``),
runs the same load generator at the given concurrencies and prints logins/s, p50, p99 and
the CPU milliseconds per login of every process tree, plus the audit consumer's backlog.
No privacyIDEA: the side-by-side figures come from ``python -m bench.compare``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import threading

from bench.compare import profile
from bench.compare.__main__ import drain, load
from bench.compare.procs import Procs
from bench.compare.twofa import TwofaStack


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.compare.twofa_only")
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--api-workers", type=int, default=None,
                    help="API processes (default: 1 on SQLite, 2 on PostgreSQL, as docs/operations.md says)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--target", choices=["twofa", "twofa-pi"], default="twofa",
                    help="twofa: the native API (--flow); twofa-pi: /validate/check, as privacyIDEA is asked")
    ap.add_argument("--flow", type=int, choices=[1, 2, 3], default=1, help="native requests per login")
    ap.add_argument("--rate", type=float, default=0, help="logins/s at most (0: closed loop)")
    ap.add_argument("--profile", type=int, default=0, help="py-spy the busiest API worker at this concurrency")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-twofa-"))
    procs = Procs(work / "logs")
    tw = TwofaStack(work / "stack", procs, database_url=args.database_url)
    try:
        tw.migrate()
        tokens = work / "tokens.json"
        tokens.write_text(json.dumps(tw.seed(args.users)))
        tw.start(api_workers=args.api_workers)
        for conc in (int(c) for c in args.concurrency.split(",")):
            spy = _spy(procs, work, args.duration + args.warmup) if conc == args.profile else None
            r = load(args.target, tw.url, procs, tokens=tokens, state=work / "state", concurrency=conc,
                     duration=args.duration, warmup=args.warmup, api_key=tw.api_key, flow=args.flow, rate=args.rate)
            logins = float(r["logins_per_s"]) or 1.0  # type: ignore[arg-type]
            cpu = {k: round(v * 1000 / logins, 2) for k, v in r["server_cores"].items()}  # type: ignore[union-attr]
            print(f"    CPU ms per login: {cpu}", flush=True)
            if spy is not None:
                spy.join()
                raw = work / "api.pyspy.raw"
                for frame, incl, own in profile.summarize(raw, 40):
                    print(f"    {incl:5.1f} {own:5.1f}  {frame}")
                for frame, own in profile.by_self(raw, 25):
                    print(f"    self {own:5.1f}  {frame}")
        print(f"  audit: {drain(tw, timeout=60, settle=1.0)}", flush=True)
        tag = next(n for n in procs.procs if n.endswith("-api"))
        rss = ", ".join(f"{v:.1f}" for v in procs.rss_mb(tag).values())
        files = ", ".join(f"{v:.1f}" for v in procs.file_backed_mb(tag).values())
        print(f"  API RSS MiB (master first, then workers): {rss}; of which file-backed: {files}", flush=True)
        # How evenly the processes shared the connections: one that got every keep-alive
        # connection leaves the others idle.
        shares = [round(sum(p.cpu_times()[:2]), 1) for p in procs.tree(tag)[1:]
                  if "resource_tracker" not in " ".join(p.cmdline())]
        if len(shares) > 1:
            print(f"  API CPU seconds per worker process: {shares}", flush=True)
    finally:
        tw.stop()
        procs.stop_all()


def _spy(procs: Procs, work: Path, seconds: float) -> threading.Thread:
    tag = next(n for n in procs.procs if n.endswith("-api"))
    tree = procs.tree(tag)
    workers = [p for p in (tree[1:] or tree) if "resource_tracker" not in " ".join(p.cmdline())]
    workers.sort(key=lambda p: -sum(p.cpu_times()[:2]))
    th = threading.Thread(target=profile.record, args=(workers[0].pid, seconds, work / "api.pyspy.raw"))
    th.start()
    return th


if __name__ == "__main__":
    main()
