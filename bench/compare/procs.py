"""Every process the benchmark starts, owned in one place and stopped at the end.

Each server runs in its own session (process group) so that its workers are stopped with
it; each also gets PR_SET_PDEATHSIG so that nothing outlives a killed benchmark. CPU
seconds and RSS are read per process tree with psutil, so the report can say who used
the two cores during a run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from services.cli.embedded_broker import _die_with_parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, timeout: float, ok: Sequence[int] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


def _start_owned() -> None:
    os.setsid()
    _die_with_parent()


def _start_owned_as(user: str) -> Callable[[], None]:
    """Like ``_start_owned`` but as ``user`` (PostgreSQL refuses to run as root). The
    parent-death signal is set after the uid change, which would clear it."""
    import pwd

    entry = pwd.getpwnam(user)

    def start() -> None:
        os.setsid()
        os.setgid(entry.pw_gid)
        os.initgroups(user, entry.pw_gid)
        os.setuid(entry.pw_uid)
        _die_with_parent()

    return start


@dataclass
class Procs:
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # every pid of every tree, for the final check

    def spawn(self, name: str, cmd: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: Path | str | None = None, user: str | None = None) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{name}.log", "ab")
        start = _start_owned if user is None else _start_owned_as(user)
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=start)
        out.close()
        self.procs[name] = proc
        self.seen.add(proc.pid)
        return proc

    def tree(self, name: str) -> list[psutil.Process]:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return []
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
            self.seen.update(p.pid for p in tree)
            return tree
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each named process tree (live processes only)."""
        out: dict[str, float] = {}
        for name in self.procs:
            total = 0.0
            for p in self.tree(name):
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            out[name] = total
        return out

    def rss_mb(self, name: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for p in self.tree(name):
            try:
                out[p.pid] = p.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                pass
        return out

    def file_backed_mb(self, name: str) -> dict[int, float]:
        """The part of each RSS that is file pages (``RssFile``: shared libraries, and the
        pages of SQLite's memory-mapped database the process has read)."""
        out: dict[int, float] = {}
        for p in self.tree(name):
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    line = next(x for x in f if x.startswith("RssFile:"))
                out[p.pid] = int(line.split()[1]) / 1024
            except (OSError, StopIteration):
                pass
        return out

    def stop(self, name: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)  # the group we created for it
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        try:  # workers left behind in the group, if any
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)

    def survivors(self) -> list[int]:
        """Pids this benchmark started that still run (should be none after stop_all)."""
        alive = []
        for pid in sorted(self.seen):
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive
