"""``twofa serve --workers 2``: every process takes a share of the keep-alive connections a
client opens at once, and a killed process is replaced and takes connections again."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import psutil
import pytest

from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

CONNECTIONS = 24


def api_processes(master: int) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(master).children():
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                found.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass  # killed, not yet reaped by its supervisor
    return found


def listening(stack: Stack, master: int, processes: int = 2, seconds: float = 60) -> None:
    """Until ``processes`` API processes each listen on the port (a new one does so only
    once it has imported the app)."""
    deadline = time.monotonic() + seconds
    while True:
        ready = [p for p in api_processes(master)
                 if any(c.status == psutil.CONN_LISTEN and c.laddr.port == stack.port
                        for c in _connections(p))]
        if len(ready) >= processes:
            return
        assert time.monotonic() < deadline, stack.log_text()
        time.sleep(0.2)


def _connections(p: psutil.Process) -> list[object]:
    try:
        return list(p.net_connections(kind="tcp"))
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return []


def serving(stack: Stack, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{stack.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, stack.log_text()
        time.sleep(0.2)


def connections_per_process(stack: Stack, master: int) -> dict[int, int]:
    """Opens CONNECTIONS keep-alive connections at once, as a client's pool does when load
    begins (the kernel completes each handshake before any process accepts it), makes one
    request on each, and counts the established ones each API process holds."""
    conns = [socket.create_connection(("127.0.0.1", stack.port), timeout=5)
             for _ in range(CONNECTIONS)]
    try:
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        for conn in conns:
            assert conn.recv(64).startswith(b"HTTP/1.1 200")
        return {
            p.pid: sum(1 for c in p.net_connections(kind="tcp")
                       if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == stack.port)
            for p in api_processes(master)
        }
    finally:
        for conn in conns:
            conn.close()


def test_two_processes_share_one_clients_connections_and_a_killed_one_comes_back(
    settings: Settings, broker_url: str
) -> None:
    stack = Stack(settings, broker_url)
    stack.logs = settings.var_dir / "logs"
    stack.logs.mkdir(parents=True, exist_ok=True)
    master = stack.spawn("api", "serve", "--port", str(stack.port), "--workers", "2").pid
    try:
        serving(stack)
        listening(stack, master)
        shares = connections_per_process(stack, master)
        assert len(shares) == 2 and sum(shares.values()) == CONNECTIONS
        assert all(n > 0 for n in shares.values()), shares

        victim = min(shares)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while {p.pid for p in api_processes(master)} & {victim} or len(api_processes(master)) < 2:
            assert time.monotonic() < deadline, stack.log_text()
            time.sleep(0.2)
        listening(stack, master)
        serving(stack)
        shares = connections_per_process(stack, master)
        assert victim not in shares and all(n > 0 for n in shares.values()), shares
    finally:
        stack.stop()
