"""The broker and the database of a chaos run: its own redis-server and its own PostgreSQL
cluster, on its own ports, so that scenarios may stop and restart them. The machine's shared
servers (5432, 6379) are never touched.

Both run as children owned by :class:`~bench.compare.procs.Procs` (own process group, dying
with the harness). Redis keeps an append-only file, as in production, so queued messages
survive a stop. PostgreSQL refuses to run as root: when the harness is root, the cluster
belongs to the ``postgres`` OS user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.compare.procs import Procs


def wait_port(port: int, *, up: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} within {timeout}s")


class OwnRedis:
    def __init__(self, procs: Procs, work: Path, port: int) -> None:
        self.procs, self.port = procs, port
        self.dir = work / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.procs.spawn("redis", [
            shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port",
            str(self.port), "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--daemonize", "no"])
        wait_port(self.port, up=True, timeout=20)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the append-only file is flushed)."""
        self.procs.stop("redis", timeout=20)
        wait_port(self.port, up=False, timeout=10)

    def flush(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "flushall"], check=True,
                       capture_output=True, timeout=10)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return Path(found[-1]).parent


class OwnPostgres:
    def __init__(self, procs: Procs, work: Path, port: int) -> None:
        self.procs, self.port = procs, port
        self.bin = _pg_bin()
        self.work = work
        self.data = work / "pg" / "data"
        self.sockets = work / "pg" / "sock"
        self.user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        self.sockets.mkdir(parents=True)
        if self.user is not None:
            os.chmod(self.work, 0o711)  # mkdtemp's 0700 would keep the postgres user out
            entry = pwd.getpwnam(self.user)
            for d in (self.data.parent, self.data, self.sockets):
                os.chown(d, entry.pw_uid, entry.pw_gid)
        cmd = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
               "--no-sync", "-E", "UTF8", "--locale", "C"]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.procs.spawn("postgres", [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-k", str(self.sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "max_connections=200", "-c", "shared_buffers=64MB"], user=self.user)
        wait_port(self.port, up=True, timeout=30)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open sessions are cut, as in a restart by an operator."""
        self.procs.stop("postgres", timeout=30, sig=signal.SIGINT)
        wait_port(self.port, up=False, timeout=10)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                              "postgres", "-d", database, "-tAc", sql],
                             check=True, capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def fresh_database(self, name: str) -> str:
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)
