"""Plumbing shared by the local HTTP fakes: a threaded stdlib server, recording and scripting.

Every fake binds 127.0.0.1 on an ephemeral port (port 0), so no traffic leaves the machine.
The server is a ``ThreadingHTTPServer`` with daemon threads: ``latency`` and ``Delay`` sleep in
the handler thread of one request and never serialise the others (throughput benchmarks rely on
that). HTTP/1.1 keep-alive is spoken, as the real providers do.

Scripting: ``fake.script(b1, b2, ...)`` queues one-shot behaviours. Each scriptable request
pops the next one; when the queue is empty the fake answers normally, unless ``fake.failing``
is set: then every scriptable request gets that behaviour (an outage) until it is cleared.
"""

from __future__ import annotations

import json as _json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Reply:
    """Answer with this status, JSON body (``json``) or raw ``body``, and extra headers."""

    status: int = 500
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Delay:
    """Sleep ``seconds`` before answering (client timeouts); then ``then``, or the normal answer."""

    seconds: float
    then: Reply | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without writing any answer (the client sees a disconnect)."""


Behaviour = Reply | Delay | Drop


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it. ``form`` is the last value per key of a form body."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]
    json: Any
    t_perf: float
    t_wall: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The stdlib default backlog of 5 drops SYNs under a burst; the client retries after 1 s.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client went away (timeout, Drop): expected in these tests, so stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeHTTPServer:
    """Base of the fakes: start/stop, ``url``, ``requests``, ``script()``, ``latency``.

    Subclasses implement :meth:`handle` (the normal answer) and may narrow
    :meth:`scriptable` to the endpoints that scripted behaviours apply to.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._script: deque[Behaviour] = deque()
        self.latency: float = 0.0
        self.failing: Behaviour | None = None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"{type(self).__name__}-server",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("fake server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- recording and scripting --------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot (copy) of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def script(self, *behaviours: Behaviour) -> None:
        """Queue one-shot behaviours for the next scriptable requests, in order."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def scripted_left(self) -> int:
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget recorded requests and pending scripted behaviours."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self.failing = None

    def _record(self, req: RecordedRequest) -> Behaviour | None:
        with self._lock:
            self._requests.append(req)
            if self.scriptable(req):
                if self._script:
                    return self._script.popleft()
                return self.failing
        return None

    # -- to override ------------------------------------------------------------------------
    def scriptable(self, req: RecordedRequest) -> bool:
        return True

    def handle(self, req: RecordedRequest) -> Reply:
        raise NotImplementedError


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, json=body, headers=dict(headers or {}))


def _make_handler(fake: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "twofa-fake/1.0"
        # One write per answer and no Nagle: split header/body writes on a keep-alive
        # connection otherwise cost ~40 ms each (Nagle + delayed ACK).
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            ctype = self.headers.get("Content-Type", "")
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)) \
                if "x-www-form-urlencoded" in ctype else {}
            try:
                body_json = _json.loads(raw) if "json" in ctype and raw else None
            except ValueError:
                body_json = None
            req = RecordedRequest(
                method=self.command, path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k: v for k, v in self.headers.items()}, body=raw, form=form,
                json=body_json, t_perf=time.perf_counter(), t_wall=time.time(),
            )
            behaviour = fake._record(req)
            if fake.latency > 0:
                time.sleep(fake.latency)
            if isinstance(behaviour, Drop):
                self.close_connection = True
                return
            reply: Reply | None = behaviour if isinstance(behaviour, Reply) else None
            if isinstance(behaviour, Delay):
                time.sleep(behaviour.seconds)
                reply = behaviour.then
            self._send(reply if reply is not None else fake.handle(req))

        def _send(self, reply: Reply) -> None:
            body = reply.body if reply.body is not None else (
                b"" if reply.json is None else _json.dumps(reply.json).encode())
            headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
            try:
                self.send_response(reply.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except ConnectionError:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler
