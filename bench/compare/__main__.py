"""twofa vs privacyIDEA 3.14, side by side in one run: ``python -m bench.compare --quick|--full``.

Steps (each bounded in time, every process owned and stopped at the end, loopback only):
 1. privacyIDEA 3.14 in its own virtualenv (bench/.cache/pi-venv), SQLite in WAL mode,
    N users in a flat-file realm with one TOTP token each, gunicorn with 2 sync workers.
 2. twofa in its production shape on a SQLite file (see bench/compare/twofa.py).
 3. The same load generator (bench/compare/loadgen.py, one process) drives both at
    concurrency 1, 8, 32, alternating A/B (B/A on the next repetition); per run it records
    logins/s, p50, p99, the CPU of every process tree and of the generator itself.
 4. twofa on PostgreSQL; verification p50 with 1k vs 1M tokens; API worker RSS; the
    audit consumer's lag; push and SMS figures when their benches exist.
 5. The hello-world ceiling of the same stack (uvicorn 2 workers, uvloop), same generator
    (and wrk, when installed).
 6. bench/RESULTS.md (``--out``) with the machine, versions, the command and the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import threading

from bench.compare import pi, profile, report
from bench.compare.procs import Procs, free_port
from bench.compare.twofa import TwofaStack, start_hello

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
CACHE = BENCH / ".cache"

PROFILES = {
    "quick": dict(duration=10, warmup=2, reps=1, pi_users=3000, twofa_users=20000, big=1_000_000, pg=True,
                  pg_rounds=2),
    "smoke": dict(duration=3, warmup=1, reps=1, pi_users=3000, twofa_users=20000, big=20_000, pg=True,
                  pg_rounds=1),
    "full": dict(duration=20, warmup=3, reps=2, pi_users=3000, twofa_users=40000, big=1_000_000, pg=True,
                 pg_rounds=3),
}


def load(target: str, url: str, procs: Procs, *, tokens: Path | None, state: Path | None, concurrency: int,
         duration: float, warmup: float, api_key: str = "", flow: int = 2, rate: float = 0) -> dict[str, object]:
    cmd = [sys.executable, "-m", "bench.compare.loadgen", "--target", target, "--url", url,
           "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup),
           "--flow", str(flow), "--rate", str(rate)]
    if tokens:
        cmd += ["--tokens", str(tokens), "--state", str(state)]
    if api_key:
        cmd += ["--api-key", api_key]
    cpu0 = procs.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=duration + warmup + 120)
    cpu1 = procs.cpu_seconds()
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["rate"] = rate
    span = duration + warmup
    result["server_cores"] = {k: round((cpu1[k] - cpu0.get(k, 0.0)) / span, 2) for k in cpu1
                              if cpu1[k] - cpu0.get(k, 0.0) > 0.01}
    label = f"twofa/{flow}req" if target == "twofa" else target
    print(f"  {label:11s} c={concurrency:<3d} {result['logins_per_s']:8.1f}/s p50 {result['p50_ms']:7.1f} ms "
          f"p99 {result['p99_ms']:7.1f} ms  ok {result['valid_ok']} rej {result['wrong_rejected']} "
          f"bad {result['unexpected']} err {result['errors']} starved {result['starved']}", flush=True)
    return result


def wrk_hello(url: str, duration: float) -> dict[str, object] | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{int(duration)}s", "--latency", url + "/"],
                         capture_output=True, text=True, timeout=duration + 30)
    rps = next((line.split()[1] for line in out.stdout.splitlines() if line.startswith("Requests/sec")), "nan")
    p99 = next((line.split()[1] for line in out.stdout.splitlines() if line.strip().startswith("99%")), "?")
    return {"requests_per_s": float(rps), "p99": p99}


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "memory": f"{int(mem) // 1024 // 1024} GiB",
            "kernel": platform.release(), "python": platform.python_version(),
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def versions(env: Path) -> dict[str, str]:
    import importlib.metadata as md

    ours = ", ".join(f"{p} {md.version(p)}" for p in ("fastapi", "uvicorn", "uvloop", "SQLAlchemy", "celery", "psycopg"))
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0] if shutil.which("wrk") else "not installed"
    return {"twofa stack": ours, "baseline": pi.pi_version(env), "wrk": wrk}


# The A/B pair sends the very same requests (privacyIDEA's one-step ``/validate/check``) to
# both servers; the native API's one-request and two-request logins run beside them as
# their own rows. The order rotates between repetitions.
SIDES = (("pi", 1), ("twofa-pi", 1), ("twofa", 1), ("twofa", 2))


def ab_runs(cfg: dict[str, object], procs: Procs, pi_url: str, pi_tokens: Path, tw: TwofaStack,
            tw_tokens: Path, work: Path) -> list[dict[str, object]]:
    rows = []
    for conc in (1, 8, 32):
        for rep in range(int(cfg["reps"])):  # type: ignore[call-overload]
            order = SIDES if rep % 2 == 0 else tuple(reversed(SIDES))
            for target, flow in order:
                if target == "pi":
                    r = load("pi", pi_url, procs, tokens=pi_tokens, state=work / "pi.state", concurrency=conc,
                             duration=cfg["duration"], warmup=cfg["warmup"])  # type: ignore[arg-type]
                else:
                    r = load(target, tw.url, procs, tokens=tw_tokens, state=work / "twofa.state",
                             concurrency=conc, duration=cfg["duration"], warmup=cfg["warmup"],  # type: ignore[arg-type]
                             api_key=tw.api_key, flow=flow)
                r["rep"] = rep
                rows.append(r)
    return rows


PACED_RATE = 100.0


def paced(cfg: dict[str, object], procs: Procs, tw: TwofaStack, tokens: Path, work: Path) -> dict[str, object]:
    """p99 without queueing: the identical requests at a steady 100 logins/s, c=8."""
    return load("twofa-pi", tw.url, procs, tokens=tokens, state=work / "twofa.state", concurrency=8,
                duration=cfg["duration"], warmup=cfg["warmup"], rate=PACED_RATE)  # type: ignore[arg-type]


def profile_run(cfg: dict[str, object], procs: Procs, tw: TwofaStack, tokens: Path, work: Path) -> dict[str, object]:
    tree = procs.tree("sqlite-api")
    # a master and its workers, or one process serving alone
    workers = [p for p in (tree[1:] or tree) if "resource_tracker" not in " ".join(p.cmdline())]
    # the busiest worker: keep-alive connections do not spread evenly over the two
    workers.sort(key=lambda p: -sum(p.cpu_times()[:2]))
    raw = work / "api-worker.pyspy.raw"
    seconds = float(cfg["duration"])  # type: ignore[arg-type]
    th = threading.Thread(target=profile.record, args=(workers[0].pid, seconds, raw))
    th.start()
    run = load("twofa-pi", tw.url, procs, tokens=tokens, state=work / "twofa.state", concurrency=8,
               duration=seconds, warmup=1)
    th.join()
    if not raw.exists():
        return {"run": run, "frames": [], "self": []}
    return {"run": run, "frames": profile.summarize(raw, 30), "self": profile.by_self(raw, 15)}


def drain(tw: TwofaStack, timeout: float = 120, settle: float = 0.0) -> dict[str, float]:
    """The audit consumer's backlog at the end of the load, ``settle`` seconds after it (the
    goal: nothing behind one second after the load stops), and how long it took to clear."""
    if settle:
        time.sleep(settle)
    lag = tw.audit_lag()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        now = tw.audit_lag()
        if now["behind"] <= 0:
            break
        time.sleep(1)
    now = tw.audit_lag()
    return {"behind_at_end": lag["behind"], "events": lag["outbox_events"],
            "drain_s": round(time.monotonic() - t0, 1), "behind_after_drain": now["behind"], "settle_s": settle}


# The growth runs are paced: 1,000 tokens give at most 1,000 fresh valid codes per 30 s step,
# and an unpaced run uses them up within seconds. Half the logins are valid: 25 valid/s.
GROWTH_RATE = 50.0


def growth(cfg: dict[str, object], procs: Procs, work: Path) -> dict[str, object]:
    """Verification p50 (c=1 and c=8, paced) with 1k tokens in the DB, then with ``big`` tokens."""
    gdir = work / "growth"
    gdir.mkdir()
    tw = TwofaStack(gdir, procs)
    tw.tag = "growth"
    tw.migrate()
    tokens = gdir / "tokens.json"
    tokens.write_text(json.dumps(tw.seed(1000)))
    out: dict[str, object] = {}
    for label, extra in (("1k", 0), ("big", int(cfg["big"]) - 1000)):  # type: ignore[call-overload]
        if extra:
            t0 = time.monotonic()
            tw.filler(extra)
            out["filler_s"] = round(time.monotonic() - t0, 1)
        out[f"{label}_tokens"] = tw.token_count()
        tw.start()
        runs = [load("twofa", tw.url, procs, tokens=tokens, state=gdir / "state", concurrency=c,
                     duration=cfg["duration"], warmup=cfg["warmup"], api_key=tw.api_key, rate=GROWTH_RATE)  # type: ignore[arg-type]
                for c in (1, 8)]
        out[label] = runs
        tw.stop()
    return out


def postgres(cfg: dict[str, object], procs: Procs, work: Path, sqlite: TwofaStack,
             sqlite_tokens: Path) -> dict[str, object]:
    """The PostgreSQL stack at c=1, 8 and 32, then c=8 on each database in turn,
    the SQLite stack started again beside it: the goal compares the two, and on a machine
    whose speed moves within minutes only runs taken in turn compare. A third stack takes
    its turn too: SQLite flushing every commit (``?synchronous=full``), the durability
    PostgreSQL gives by default, so that the report can also compare like with like."""
    db = "bench"
    base = "postgresql+psycopg://postgres@127.0.0.1:5432"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db], check=True, capture_output=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True, capture_output=True)
    pdir = work / "pg"
    pdir.mkdir()
    tw = TwofaStack(pdir, procs, database_url=f"{base}/{db}")
    tw.migrate()
    tokens = pdir / "tokens.json"
    tokens.write_text(json.dumps(tw.seed(int(cfg["twofa_users"]))))  # type: ignore[call-overload]
    tw.start()
    stacks = [tw, sqlite]
    try:
        runs = [load("twofa-pi", tw.url, procs, tokens=tokens, state=pdir / "state", concurrency=c,
                     duration=cfg["duration"], warmup=cfg["warmup"]) for c in (1, 8, 32)]  # type: ignore[arg-type]
        audit, rss = drain(tw, timeout=60, settle=1.0), procs.rss_mb("pg-api")
        fdir = work / "sqlite-full"
        fdir.mkdir()
        flushed = TwofaStack(fdir, procs, database_url=f"sqlite:///{fdir / 'twofa.db'}?synchronous=full",
                             tag="sqlitefull")
        stacks.append(flushed)
        flushed.migrate()
        flushed_tokens = fdir / "tokens.json"
        flushed_tokens.write_text(json.dumps(flushed.seed(int(cfg["twofa_users"]))))  # type: ignore[call-overload]
        sqlite.start()
        flushed.start()
        sides = {"sqlite": (sqlite, sqlite_tokens, work / "twofa.state"),
                 "postgresql": (tw, tokens, pdir / "state"),
                 "sqlite-full": (flushed, flushed_tokens, fdir / "state")}
        order = list(sides)
        turns = []
        for rep in range(int(cfg["pg_rounds"])):  # type: ignore[call-overload]
            for db in order if rep % 2 == 0 else order[::-1]:
                stack, db_tokens, state = sides[db]
                r = load("twofa-pi", stack.url, procs, tokens=db_tokens, state=state, concurrency=8,
                         duration=cfg["duration"], warmup=cfg["warmup"])  # type: ignore[arg-type]
                r.update(db=db, rep=rep)
                turns.append(r)
        # Under the key that runs of two databases were stored with, so older raw results render.
        return {"runs": runs, "pairs": turns, "audit": audit, "rss": rss}
    finally:
        for stack in stacks:
            stack.stop()


def breakdown(timeout: float) -> dict[str, float] | str:
    """In-process CPU per login by layer (bench/compare/breakdown.py), in its own process."""
    try:
        p = subprocess.run([sys.executable, "-m", "bench.compare.breakdown"], capture_output=True, text=True,
                           cwd=ROOT, timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else p.stderr[-1500:]
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return f"failed: {exc}"


def sibling_benches(timeout: float) -> dict[str, str]:
    out = {}
    # Each sibling bench with the arguments its own docstring gives.
    for name, extra in (("push_latency", []), ("sms_throughput", ["--n", "2000", "--concurrency", "64"])):
        path = BENCH / f"{name}.py"
        if not path.exists():
            out[name] = "not available (bench/%s.py is not on this branch)" % name
            continue
        try:
            p = subprocess.run([sys.executable, str(path), *extra], capture_output=True, text=True,
                               cwd=ROOT, timeout=timeout)
            out[name] = f"$ python bench/{name}.py {' '.join(extra)}\n" + (p.stdout[-3000:] or p.stderr[-1500:]).strip()
        except subprocess.TimeoutExpired:
            out[name] = f"timed out after {timeout:.0f}s"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compare")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="profile", const="quick")
    mode.add_argument("--full", action="store_const", dest="profile", const="full")
    mode.add_argument("--smoke", action="store_const", dest="profile", const="smoke", help="seconds-long self-check")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    ap.add_argument("--skip", default="", help="comma-separated: pg,growth,siblings")
    args = ap.parse_args()
    profile = args.profile or "quick"
    cfg = dict(PROFILES[profile])
    skip = set(filter(None, args.skip.split(",")))
    started = time.time()
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    procs = Procs(work / "logs")
    results: dict[str, object] = {"profile": profile, "cfg": cfg, "machine": machine(),
                                  "command": f"python -m bench.compare --{profile}"}
    tw = TwofaStack(work / "sqlite", procs)
    try:
        print("privacyIDEA: virtualenv and data (cached under bench/.cache)", flush=True)
        env = pi.venv(CACHE)
        results["versions"] = versions(env)
        data = pi.configure(env, CACHE, int(cfg["pi_users"]))  # type: ignore[call-overload]
        pi_db = work / "pi"
        shutil.copytree(data, pi_db)  # a fresh copy per run: no state from earlier runs
        pi_url = pi.serve(env, pi_db, free_port(), procs)
        print("twofa: migrate, seed, start", flush=True)
        tw.migrate()
        tw_tokens = work / "twofa-tokens.json"
        t0 = time.monotonic()
        tw_tokens.write_text(json.dumps(tw.seed(int(cfg["twofa_users"]))))  # type: ignore[call-overload]
        results["seed_s"] = round(time.monotonic() - t0, 1)
        tw.start()
        print("hello-world ceiling", flush=True)
        hello_url = start_hello(work, procs)
        results["hello"] = [load("hello", hello_url, procs, tokens=None, state=None, concurrency=c,
                                 duration=cfg["duration"], warmup=cfg["warmup"]) for c in (8, 32)]  # type: ignore[arg-type]
        results["hello_wrk"] = wrk_hello(hello_url, float(cfg["duration"]))  # type: ignore[arg-type]
        procs.stop("hello")
        print("A/B runs on SQLite", flush=True)
        results["ab"] = ab_runs(cfg, procs, pi_url, pi_db / "tokens.json", tw, tw_tokens, work)
        print("paced: 100 logins/s", flush=True)
        results["paced"] = paced(cfg, procs, tw, tw_tokens, work)
        print("profile: one twofa API worker under c=8 (py-spy)", flush=True)
        results["pyspy"] = profile_run(cfg, procs, tw, tw_tokens, work)
        results["rss"] = {"twofa api": procs.rss_mb("sqlite-api"), "privacyidea": procs.rss_mb("privacyidea")}
        results["rss_file"] = {"twofa api": procs.file_backed_mb("sqlite-api"),
                               "privacyidea": procs.file_backed_mb("privacyidea")}
        results["audit"] = drain(tw, settle=1.0)
        tw.stop()
        print("breakdown: CPU per login by layer, in process", flush=True)
        results["breakdown"] = breakdown(timeout=300)
        procs.stop("privacyidea")
        if "growth" not in skip:
            print(f"cost growth: 1k vs {cfg['big']} tokens", flush=True)
            results["growth"] = growth(cfg, procs, work)
        if "pg" not in skip:
            print("twofa on PostgreSQL", flush=True)
            results["pg"] = postgres(cfg, procs, work, tw, tw_tokens)
        if "siblings" not in skip:
            results["siblings"] = sibling_benches(timeout=300)
    finally:
        tw.stop()
        procs.stop_all()
        results["elapsed_s"] = round(time.time() - started)
        time.sleep(1)
        leftover = sorted(set(subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True).stdout.split())
                          | {str(p) for p in procs.survivors()})
        results["leftover_processes"] = leftover
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"raw results: {work / 'results.json'}", flush=True)
    Path(args.out).write_text(report.render(results))
    print(f"wrote {args.out}; leftover processes: {leftover or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
