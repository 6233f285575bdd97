"""Where the CPU of one twofa login goes, measured in one process without sockets.

``python -m bench.compare.breakdown [--logins N]`` prints one JSON line with CPU ms per
login (the login in one request, half of them with a wrong code) for these layers:

- ``domain``: ``challenges.login`` (one unit of work), with a recording publisher (the
  outbox row is written and marked, nothing goes to a broker);
- ``asgi``: the same as ``POST /v1/challenges {user_id, area, code}`` through the FastAPI
  app (routing, auth, validation, JSON), still with the recording publisher;
- ``asgi_pi``: the same login as privacyIDEA's ``POST /validate/check`` (form body);
- ``asgi_broker``: ``asgi`` with the real Celery publisher to a local embedded broker;

and the CPU of one ``publish_many`` of a login's event on that broker. The
difference between layers is what each costs; what the full stack adds beyond
``asgi_broker`` is uvicorn and the HTTP parsing. CPU is process time, so the dispatcher
and marker threads count too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.compare.loadgen import totp_code, wrong_code
from bench.compare.procs import Procs
from bench.compare.twofa import TwofaStack
from services.api.app import create_app
from services.cli.embedded_broker import EmbeddedBroker
from services.core.challenges import service as challenges
from services.core.bootstrap import build_context
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import CeleryPublisher, RecordingPublisher
from services.core.plumbing.settings import Settings


def _code(row: dict[str, str], valid: bool) -> str:
    key, step = bytes.fromhex(row["secret_hex"]), int(time.time()) // 30
    return totp_code(key, step) if valid else wrong_code(key, step)


def domain_login(ctx: Context, row: dict[str, str], valid: bool) -> None:
    login = challenges.login(ctx, row["user"], "sso", _code(row, valid))
    assert login is not None and login.verified == valid


class AsgiDriver:
    """Calls the ASGI app directly: one request, one response, no socket."""

    def __init__(self, ctx: Context, api_key: str) -> None:
        self.app = create_app(ctx=ctx)
        self.auth = f"Bearer {api_key}".encode()

    async def call(self, path: str, body: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
        form = isinstance(body, bytes)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        kind = b"application/x-www-form-urlencoded" if form else b"application/json"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"bench"), (b"content-type", kind),
                             (b"authorization", self.auth), (b"content-length", str(len(raw)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)
            return {}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
            else:
                out["body"] += msg.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], json.loads(out["body"])

    async def login(self, row: dict[str, str], valid: bool) -> None:
        status, body = await self.call("/v1/challenges",
                                       {"user_id": row["user"], "area": "sso", "code": _code(row, valid)})
        assert status == (200 if valid else 422), body

    async def pi_login(self, row: dict[str, str], valid: bool) -> None:
        status, body = await self.call("/validate/check",
                                       f"user={row['user']}&realm=bench&pass={_code(row, valid)}".encode())
        assert status == 200 and body["result"]["value"] == valid, body


def _per_login(fn: Any, rows: list[dict[str, str]]) -> float:
    start = time.process_time()
    for i, row in enumerate(rows):
        fn(row, i % 2 == 0)
    return round((time.process_time() - start) * 1000 / len(rows), 3)


def measure(logins: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-breakdown-"))
    stack = TwofaStack(work, Procs(work / "logs"))
    stack.migrate()
    rows = stack.seed(4 * logins + 300)
    broker = EmbeddedBroker(work / "broker", persistent=False).start()
    out: dict[str, float] = {}
    try:
        settings = Settings(env="dev", database_url=stack.database_url, broker_url=broker.url,
                            encryption_keys=stack.keys, var_dir=work / "var", pi_realms="bench=sso")
        recording = build_context(settings, publisher=RecordingPublisher())
        real = build_context(settings)
        for r in rows[:100]:  # warm caches and compiled statements
            domain_login(recording, r, False)
        out["domain"] = _per_login(lambda r, v: domain_login(recording, r, v), rows[100:100 + logins])

        async def through(ctx: Context, batch: list[dict[str, str]], pi: bool = False) -> float:
            driver = AsgiDriver(ctx, stack.api_key)
            login = driver.pi_login if pi else driver.login
            async with driver.app.router.lifespan_context(driver.app):
                for r in batch[:50]:
                    await login(r, False)
                start = time.process_time()
                for i, r in enumerate(batch[50:]):
                    await login(r, i % 2 == 0)
                return round((time.process_time() - start) * 1000 / (len(batch) - 50), 3)

        out["asgi"] = asyncio.run(through(recording, rows[100 + logins:150 + 2 * logins]))
        out["asgi_pi"] = asyncio.run(through(recording, rows[150 + 2 * logins:200 + 3 * logins], pi=True))
        out["asgi_broker"] = asyncio.run(through(real, rows[200 + 3 * logins:250 + 4 * logins]))
        publisher = real.publisher
        assert isinstance(publisher, CeleryPublisher)
        events = [{"event_id": str(uuid.uuid4()), "type": "challenge.verified", "data": {}}]
        start = time.process_time()
        for _ in range(500):
            publisher.publish_many(events)
        out["publish_login_events_ms"] = round((time.process_time() - start) * 1000 / 500, 3)
        for ctx in (recording, real):
            ctx.dispatcher.close()  # type: ignore[attr-defined]
            ctx.engine.dispose()
    finally:
        broker.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.compare.breakdown")
    ap.add_argument("--logins", type=int, default=1000)
    print(json.dumps(measure(ap.parse_args().logins)))


if __name__ == "__main__":
    main()
