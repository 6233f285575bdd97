"""privacyIDEA 3.14 and twofa, set up alike, for the side-by-side run (marker ``sidebyside``).

privacyIDEA comes from PyPI into its own virtualenv (``bench/.cache/pi-venv``, made once
and reused, as ``bench.compare`` does) and runs under gunicorn on a fresh data directory:
a flat-file realm of users, the same TOTP seeds as twofa's tokens, a service account
(an admin), and the policies the mapping in docs/privacyidea-api.md stands for —
``otppin=none``, ``challenge_response=hotp totp``, ``passOnNoToken``,
``add_user_in_response``. twofa runs in process on a SQLite file with the system clock,
so the same TOTP code is valid on both.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from bench.compare import pi
from bench.compare.procs import Procs, free_port
from services.api.app import create_app
from services.core.bootstrap import build_context
from services.core.models import AreaProtection, Token
from services.core.plumbing.clock import SystemClock
from services.core.plumbing.db import Base, make_engine
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from services.core.privacyidea import accounts
from services.core.privacyidea.validate import serial_of
from tests.pi_plugins import PLUGINS

CACHE = Path(__file__).resolve().parents[2] / "bench" / ".cache"
SERVICE_ACCOUNT = "sidebyside"
USERS = [f"u{i}" for i in range(len(PLUGINS))]  # one TOTP user per plugin
NO_TOKEN_USER = "bob"


@dataclass
class Side:
    name: str
    http: httpx.Client
    password: str  # of the service account


@dataclass
class Seeds:
    secret_b32: dict[str, str]  # user -> TOTP secret

    def code(self, user: str, offset_steps: int = 0) -> str:
        from services.core.factors.totp import otp

        step = otp.time_step(SystemClock().now().timestamp(), 30) + offset_steps
        return otp.code_at_step(self.secret_b32[user], step, otp.TotpParams())


def _policy(env: Path, data: Path, name: str, scope: str, action: dict[str, object]) -> None:
    path = data / f"policy-{name}.py"
    path.write_text(repr({"name": name, "scope": scope, "active": True, "action": action}))
    pi.manage(env, data, "config", "policy", "create", "-f", str(path), name, scope, "-")


@dataclass
class PiSetup:
    """What the privacyIDEA data directory was made with, kept beside it (``setup.json``)."""

    token_ids: dict[str, uuid.UUID]
    seeds: Seeds
    password: str


def _setup(env: Path, data: Path) -> PiSetup:
    """The data directory, made once and kept with a pristine copy of its database: every
    run starts from that copy (failure counters and used steps of the last run are gone),
    and only the first run pays for the pi-manage calls."""
    saved = data / "setup.json"
    if not saved.exists() or not (data / "pi.sqlite.pristine").exists():
        token_ids = {u: uuid.uuid4() for u in USERS}
        secrets_b32 = {u: base64.b32encode(secrets.token_bytes(20)).decode() for u in USERS}
        password = secrets.token_urlsafe(16)
        pi.init_data_dir(env, data, [*USERS, NO_TOKEN_USER])
        pi.manage(env, data, "admin", "add", SERVICE_ACCOUNT, "-p", password)
        pi.import_totp(
            env,
            data,
            [
                {
                    "user": u,
                    "token_id": serial_of(token_ids[u], "totp"),
                    "secret_hex": base64.b32decode(secrets_b32[u]).hex(),
                }
                for u in USERS
            ],
        )
        _policy(
            env,
            data,
            "twofa_mapping",
            "authentication",
            {"otppin": "none", "challenge_response": "hotp totp", "passOnNoToken": True},
        )
        _policy(
            env,
            data,
            "twofa_user_in_response",
            "authorization",
            {"add_user_in_response": True, "add_resolver_in_response": True},
        )
        shutil.copyfile(data / "pi.sqlite", data / "pi.sqlite.pristine")
        saved.write_text(
            json.dumps(
                {
                    "token_ids": {u: str(t) for u, t in token_ids.items()},
                    "secrets": secrets_b32,
                    "password": password,
                }
            )
        )
    for suffix in ("-wal", "-shm"):
        (data / f"pi.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copyfile(data / "pi.sqlite.pristine", data / "pi.sqlite")
    raw = json.loads(saved.read_text())
    return PiSetup(
        {u: uuid.UUID(t) for u, t in raw["token_ids"].items()},
        Seeds(raw["secrets"]),
        raw["password"],
    )


@pytest.fixture(scope="session")
def pi_setup() -> PiSetup:
    CACHE.mkdir(parents=True, exist_ok=True)
    env = pi.venv(CACHE)
    return _setup(env, CACHE / "pi-sidebyside")


@pytest.fixture(scope="session")
def seeds(pi_setup: PiSetup) -> Seeds:
    return pi_setup.seeds


@pytest.fixture(scope="session")
def token_ids(pi_setup: PiSetup) -> dict[str, uuid.UUID]:
    return pi_setup.token_ids


@pytest.fixture(scope="session")
def privacyidea(tmp_path_factory: pytest.TempPathFactory, pi_setup: PiSetup) -> Iterator[Side]:
    env = pi.venv(CACHE)
    procs = Procs(tmp_path_factory.mktemp("pi-logs"))
    try:
        url = pi.serve(env, CACHE / "pi-sidebyside", free_port(), procs, workers=1)
        with httpx.Client(base_url=url, timeout=30) as http:
            yield Side("privacyIDEA", http, pi_setup.password)
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def twofa(
    tmp_path_factory: pytest.TempPathFactory, seeds: Seeds, token_ids: dict[str, uuid.UUID]
) -> Iterator[Side]:
    work = tmp_path_factory.mktemp("twofa")
    url = f"sqlite:///{work / 'twofa.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    settings = Settings(
        env="test",
        var_dir=work / "var",
        database_url=url,
        encryption_keys=Fernet.generate_key().decode(),
    )
    ctx = build_context(
        settings, publisher=RecordingPublisher(), background=False, clock=SystemClock()
    )
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        for user, token_id in token_ids.items():
            session.add(
                Token(
                    id=token_id,
                    user_id=user,
                    type="totp",
                    description="side by side",
                    state="active",
                    drift=0,
                    failures=0,
                    created_at=now,
                    secret_enc=ctx.keyring.encrypt(seeds.secret_b32[user]),
                )
            )
            session.add(AreaProtection(user_id=user, area="sso", protected=True, updated_at=now))
        password = accounts.create(session, SERVICE_ACCOUNT, now).password
    try:
        with TestClient(create_app(ctx=ctx), base_url="http://twofa") as http:
            yield Side("twofa", http, password)
    finally:
        ctx.engine.dispose()
