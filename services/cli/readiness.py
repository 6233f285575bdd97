"""What ``twofa dev`` checks before it starts anything, and before it says it is ready:
a free port for each server, then an answer from every process it started.

Ports are checked first so that a busy one costs one line and nothing to clean up;
the banner waits for answers because a URL printed before its port accepts
connections sends the reader to a "connection refused".
"""

from __future__ import annotations

import errno
import http.client
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from celery import Celery

_WILDCARDS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class Listener:
    """A server ``twofa dev`` will start: who it is, its port and the flag that moves it."""

    what: str
    port: int
    flag: str


class PortUnavailable(Exception):
    """A port a server needs cannot be listened on; the message is one line for people."""


def url(host: str, port: int, path: str = "") -> str:
    """The URL a client on this machine uses for a server listening on ``host``."""
    if host in _WILDCARDS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def ensure_free(host: str, listeners: Iterable[Listener]) -> None:
    """Raise ``PortUnavailable`` for the first listener whose port is taken.

    Binds the way uvicorn does (``SO_REUSEADDR``), so a port in TIME_WAIT after the
    last run counts as free, as it is for the server itself."""
    for listener in listeners:
        try:
            with socket.create_server((host, listener.port)):
                pass
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(
                    f"port {listener.port} on {host} is in use (wanted for {listener.what}); "
                    f"choose another with {listener.flag}"
                ) from None
            raise PortUnavailable(
                f"cannot listen on {host}:{listener.port} for {listener.what} "
                f"({exc.strerror or exc}); change {listener.flag} or --host"
            ) from None


def http_ok(address: str, timeout: float = 1.0) -> Callable[[], bool]:
    """A check that is true once ``address`` answers 200. Anything else is "not yet",
    an answer that is not HTTP included: while nothing listens on a port of the ephemeral
    range, a connection to it can get that very port as its own and read back its request."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(address, timeout=timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
            return False

    return check


class WorkersAnswer:
    """True once every named Celery worker has answered a remote-control ping."""

    def __init__(self, app: Celery, nodenames: Iterable[str]) -> None:
        self.app = app
        self.waiting = set(nodenames)

    def __call__(self) -> bool:
        if self.waiting:
            try:
                replies = self.app.control.ping(
                    destination=sorted(self.waiting), timeout=1.0, limit=len(self.waiting)
                )
            except Exception:  # the broker may still be starting; ask again next round
                return False
            for reply in replies or ():
                self.waiting.difference_update(reply)
        return not self.waiting
