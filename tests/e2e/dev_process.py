"""``twofa dev`` as a user runs it, for the tests that check what they see: a child
process in a temp directory (its own ``var/``, SQLite and the embedded broker), its
console read line by line, and a look for anything of it left after it stopped."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.stack import ROOT, free_port

BANNER = "twofa dev: API on "


def dev_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOFA_", "TWILIO_"))}
    env.update(TWOFA_VAR_DIR=str(workdir / "var"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def twofa(workdir: Path, *args: str, env: dict[str, str] | None = None,
          stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """A one-shot ``twofa`` command in ``workdir`` (e.g. ``apikey create``)."""
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=workdir,
                          env=env or dev_env(workdir), input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


@dataclass
class DevProcess:
    workdir: Path
    args: tuple[str, ...]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, workdir: Path, *args: str, **extra_env: str) -> DevProcess:
        dev = cls(workdir, args, dev_env(workdir, **extra_env))
        dev.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "dev", *args], cwd=workdir, env=dev.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=dev._read, daemon=True).start()
        return dev

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = 120.0) -> str:
        """The first console line starting with ``prefix``; fails on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"twofa dev exited before {prefix!r}:\n" + self.console())
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} within {timeout} s:\n" + self.console())

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C (SIGINT to the launcher alone, as ``kill -INT``), then its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill_leftovers()

    def console(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)

    def leftovers(self) -> list[str]:
        """Processes still alive that were started for this run (they carry its var dir)."""
        return [f"{pid} {cmd}" for pid, cmd in processes_with_env("TWOFA_VAR_DIR", self.env["TWOFA_VAR_DIR"])]

    def kill_leftovers(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, _ in processes_with_env("TWOFA_VAR_DIR", self.env["TWOFA_VAR_DIR"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def processes_with_env(name: str, value: str) -> list[tuple[int, str]]:
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().split(") ", 1)[1][:1]
                if state != "Z":  # a zombie is gone already, only not yet reaped
                    found.append((int(entry.name), cmd.strip()))
        except OSError:
            continue
    return found


def listening(port: int) -> bool:
    """True when something on this machine listens on TCP ``port`` (IPv4 or IPv6)."""
    hex_port = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[1].endswith(hex_port) and cols[3] == "0A":  # 0A: LISTEN
                return True
    return False
