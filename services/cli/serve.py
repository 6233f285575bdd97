"""``twofa serve``: the API under uvicorn, and with several processes one listening socket each.

With one socket shared by every process, the process whose event loop woke first accepted
every connection that was waiting, often all of a client's keep-alive connections, and the
others idled. Each process here listens on a socket of its own, bound with ``SO_REUSEPORT``
beside its siblings', and the kernel spreads new connections over them by their addresses.
uvicorn's supervisor still starts, watches and restarts the processes.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "services.api.asgi:app"
BACKLOG = 2048  # uvicorn's default


def listening_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class OwnListener:
    """Handed to uvicorn's supervisor in place of a shared socket. The supervisor sends it to
    each process it starts (by pickling); there it becomes that process's own listening
    socket, so a restarted process gets a new one too."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, ...]:
        return (listening_socket, (self.host, self.port))


def run(host: str, port: int, workers: int, log_level: str) -> None:
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=log_level,
        log_config=None,  # uvicorn's lines go through twofa's handler (JSON in production)
    )
    if workers <= 1:
        uvicorn.run(APP, **options)
        return
    # Bound but not listening: it takes no connections, fails here (not in every process,
    # restarted forever) when the port is taken, fixes the port when 0 was asked for, and
    # keeps the port while a process restarts.
    with listening_socket(host, port, listen=False) as reserved:
        options["port"] = reserved.getsockname()[1]
        config = uvicorn.Config(APP, workers=workers, **options)
        own = OwnListener(host, options["port"])
        Multiprocess(config, sockets=[own]).run()  # type: ignore[list-item]
