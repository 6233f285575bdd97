"""The speed report's goals read the right rows: identical requests against privacyIDEA,
never the native API's rows beside them."""

from __future__ import annotations

from bench.compare.report import goals, render


def run(target: str, conc: int, rate: float, p99: float = 5.0, flow: int = 1) -> dict[str, object]:
    return {"target": target, "flow": flow, "concurrency": conc, "logins_per_s": rate, "p50_ms": 1.0,
            "p99_ms": p99, "loadgen_cores": 0.1, "unexpected": 0, "errors": 0, "starved": 0, "rep": 0,
            "server_cores": {}}


RESULTS = {
    "ab": [run("pi", 8, 30.0), run("twofa-pi", 8, 600.0, p99=25.0), run("twofa", 8, 9000.0),
           run("twofa", 8, 9000.0, flow=2), run("pi", 32, 30.0), run("twofa-pi", 32, 780.0)],
    "paced": {"logins_per_s": 100.0, "p99_ms": 8.0, "p50_ms": 2.0, "unexpected": 0, "errors": 0, "rate": 100},
    "pg": {"runs": [run("twofa-pi", 8, 500.0)], "audit": {}},
    "rss": {"twofa api": {1: 40.0, 2: 101.0, 3: 90.0}},
    "audit": {"behind_at_end": 0, "settle_s": 1.0, "events": 10, "drain_s": 0.0, "behind_after_drain": 0},
}


def _page(results: dict[str, object]) -> str:
    return render({**results, "machine": {"nproc": "2", "cpu": "x", "memory": "1 GiB", "kernel": "k",
                                          "python": "3.11", "load_before": "0"},
                   "cfg": {"duration": 1, "warmup": 1, "reps": 1, "pi_users": 1, "twofa_users": 1},
                   "profile": "smoke", "command": "python -m bench.compare --smoke"})


def test_each_goal_is_judged_on_its_own_figure():
    lines = "\n".join(goals(RESULTS))
    assert "identical requests at c=8: 20.00× privacyIDEA's logins/s (goal ≥ 25×): **missed**" in lines
    assert "identical requests at c=32: 26.00× privacyIDEA's logins/s (goal ≥ 25×): **met**" in lines
    assert "twofa p99 at c=8: 25.0 ms (goal ≤ 20 ms): **missed**" in lines
    assert "paced 100 logins/s: 8.0 ms (goal ≤ 10 ms): **met**" in lines
    assert "PostgreSQL at c=8: 0.83× twofa's SQLite logins/s (against the A/B runs) (goal ≥ 0.8×): **met**" in lines
    assert "API worker RSS after the run: 101.0 MiB at most (goal ≤ 100 MiB): **missed**" in lines
    assert "0 events behind 1 s after the load stopped (goal 0): **met**" in lines


def test_the_native_rows_are_shown_apart():
    page = _page(RESULTS)
    assert "| 8 | 1 | 9,000.0 |" in page and "| 8 | 2 | 9,000.0 |" in page
    assert "| 8 | 30.0 | 1.0 | 5.0 | 600.0 | 1.0 | 25.0 | **20.00×** |" in page


def test_postgresql_is_judged_on_the_runs_taken_in_turn_when_there_are_some():
    pairs = [{**run("twofa-pi", 8, rate), "db": db, "rep": rep}
             for rep, db, rate in ((0, "sqlite", 700.0), (0, "postgresql", 400.0),
                                   (1, "postgresql", 450.0), (1, "sqlite", 600.0))]
    results = {**RESULTS, "pg": {**RESULTS["pg"], "pairs": pairs}}
    lines = "\n".join(goals(results))
    assert ("PostgreSQL at c=8: 0.65× twofa's SQLite logins/s (2 round(s) of runs, each database in turn) "
            "(goal ≥ 0.8×): **missed**") in lines
    assert "synchronous=full" not in lines  # no such runs: no such line
    page = _page(results)
    assert "| 2 | postgresql | 450.0 | 1.00 | 5.00 | 0 |" in page


def test_postgresql_is_also_set_against_sqlite_flushing_every_commit():
    turns = [{**run("twofa-pi", 8, rate), "db": db, "rep": rep}
             for rep, db, rate in ((0, "sqlite", 700.0), (0, "postgresql", 400.0), (0, "sqlite-full", 440.0),
                                   (1, "sqlite-full", 360.0), (1, "postgresql", 440.0), (1, "sqlite", 600.0))]
    results = {**RESULTS, "pg": {**RESULTS["pg"], "pairs": turns}}
    lines = goals(results)
    goal = next(i for i, line in enumerate(lines) if line.startswith("- PostgreSQL at c=8"))
    # The goal stays judged against the default SQLite; the like-for-like figure follows it.
    assert "0.65× twofa's SQLite logins/s (2 round(s) of runs" in lines[goal]
    assert "**missed**" in lines[goal]
    assert lines[goal + 1].startswith("  - and 1.05× SQLite's with every commit flushed to disk")
    assert lines[goal + 1].endswith("(2 round(s) of runs, each database in turn)")
    assert "| 2 | sqlite-full | 360.0 |" in _page(results)
