"""Moving off a real privacyIDEA 3.14 without re-enrolment (``twofa import privacyidea``).

privacyIDEA from PyPI (``bench/.cache/pi-venv``, as the side-by-side) gets three users: alice
with a TOTP token she has just logged in with, bob with an SMS token, carol with a PUSH token
rolled out by the emulated privacyIDEA Authenticator. ``pi-tokenjanitor`` exports them
(``--format pskc``: the TOTP token; ``--format pi``: all three), ``twofa import`` imports
both files, and the same users log in through
twofa's privacyIDEA-compatible API: alice's code already used on privacyIDEA is refused and
the next one accepted, bob's code reaches the same number through the fake Twilio, and
carol's phone answers the push with the key it registered at privacyIDEA. The push URL in
the app is the same before and after; only where it leads changes (``Switch``), as a DNS or
proxy change would do it. Run: ``pytest -m sidebyside tests/sidebyside``.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from bench.compare import pi
from bench.compare.procs import Procs, free_port
from services.api.app import create_app
from services.cli.main import main
from services.core.bootstrap import build_context
from services.core.factors.totp import otp
from services.core.plumbing.clock import SystemClock
from services.core.plumbing.db import Base, make_engine
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from tests.fakes.fake_twilio import FakeTwilio
from tests.fakes.pi_app import PiAuthenticatorApp
from tests.pi_plugins import client_for
from tests.sidebyside.conftest import CACHE

pytestmark = [pytest.mark.sidebyside, pytest.mark.timeout(600)]

PUBLIC = "https://pi.example.test"  # the address the phones and the plugins know
PHONE = "+49 151 12345678"


class Switch:
    """The public address: privacyIDEA before the move, twofa after it."""

    def __init__(self, privacyidea: str) -> None:
        self.privacyidea, self.twofa = privacyidea, None
        self.http = httpx.Client(timeout=60)

    def _where(self, url: str) -> tuple[Any, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return (self.twofa, path) if self.twofa is not None else (self.http, self.privacyidea + path)

    def post(self, url: str, data: Any = None) -> Any:
        client, target = self._where(url)
        return client.post(target, data=data)

    def get(self, url: str, params: Any = None) -> Any:
        client, target = self._where(url)
        return client.get(target, params=params)


def _policy(env: Path, data: Path, name: str, scope: str, action: dict[str, object]) -> None:
    path = data / f"policy-{name}.py"
    path.write_text(repr({"name": name, "scope": scope, "active": True, "action": action}))
    pi.manage(env, data, "config", "policy", "create", "-f", str(path), name, scope, "-")


@pytest.fixture(scope="module")
def privacyidea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """A fresh privacyIDEA with realm ``bench`` (alice, bob, carol); (venv, data dir, URL)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    env = pi.venv(CACHE)
    data = CACHE / "pi-import"
    pi.init_data_dir(env, data, ["alice", "bob", "carol"])
    _policy(env, data, "push", "enrollment", {
        "push_firebase_configuration": "poll only", "push_registration_url": f"{PUBLIC}/ttype/push",
        "push_ssl_verify": "1"})
    procs = Procs(tmp_path_factory.mktemp("pi-import-logs"))
    try:
        port = int(os.environ.get("TWOFA_TEST_PI_PORT") or free_port())
        yield env, data, pi.serve(env, data, port, procs, workers=1)
    finally:
        procs.stop_all()


def _admin(http: httpx.Client, env: Path, data: Path) -> dict[str, str]:
    password = secrets.token_urlsafe(12)
    pi.manage(env, data, "admin", "add", "importer", "-p", password)
    r = http.post("/auth", data={"username": "importer", "password": password})
    return {"Authorization": r.json()["result"]["value"]["token"]}


def _init(http: httpx.Client, admin: dict[str, str], **form: Any) -> dict[str, Any]:
    r = http.post("/token/init", headers=admin, data={"realm": "bench", **form})
    assert r.status_code == 200 and r.json()["result"]["status"], r.text
    return r.json()["detail"]  # type: ignore[no-any-return]


def _export(env: Path, data: Path, out: Path, format_: str) -> str:
    """``pi-tokenjanitor find export --format pi|pskc``; returns the key it prints."""
    proc = subprocess.run(
        [str(env / "bin" / "pi-tokenjanitor"), "find", "export", "--format", format_, "--file", str(out)],
        env=dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(data / "pi.cfg")), cwd=data, input="n\n",
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = "The key to import the tokens is:" if format_ == "pi" else "import the tokens again:"
    match = re.search(re.escape(said) + r"\s+(\S+)", proc.stderr)
    assert match, proc.stderr[-2000:]
    return match.group(1)


def test_tokens_move_from_privacyidea_and_keep_working(
    privacyidea: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env, data, url = privacyidea
    seed = secrets.token_bytes(20)
    seed_b32 = base64.b32encode(seed).decode()
    switch = Switch(url)
    phone_app = PiAuthenticatorApp(switch)

    # -- on privacyIDEA: enroll, and alice logs in once
    with httpx.Client(base_url=url, timeout=60) as http:
        admin = _admin(http, env, data)
        _init(http, admin, type="totp", user="alice", otpkey=seed.hex(), serial="TOTP0001IMP",
              description="Pixel 8")
        _init(http, admin, type="sms", user="bob", phone=PHONE, serial="PISM0001IMP",
              description="work phone")
        detail = _init(http, admin, type="push", user="carol", genkey="1", description="iPhone")
        push_token = phone_app.scan(detail["pushurl"]["value"])
        phone_app.register(push_token, key_size=2048)  # step 2 at privacyIDEA
        used = otp.code_at_step(seed_b32, otp.time_step(SystemClock().now().timestamp(), 30),
                                otp.TotpParams())
        r = http.post("/validate/check", data={"user": "alice", "realm": "bench", "pass": used})
        assert r.json()["result"]["value"] is True, r.text

    # -- the move: export there, import here
    export, pskc = tmp_path / "tokens.pi", tmp_path / "tokens.pskc"
    key = _export(env, data, export, "pi")
    psk = _export(env, data, pskc, "pskc")  # TOTP only, lower-case names, no owners
    owners = tmp_path / "owners.csv"
    owners.write_text("serial,user\nTOTP0001IMP,alice@bench\n")
    with FakeTwilio() as twilio:
        work = tmp_path / "twofa"
        db = f"sqlite:///{work / 'twofa.db'}"
        work.mkdir()
        engine = make_engine(db)
        Base.metadata.create_all(engine)
        engine.dispose()
        encryption_key = Fernet.generate_key().decode()
        settings = Settings(
            env="test", var_dir=work / "var", database_url=db, encryption_keys=encryption_key,
            pi_realms="bench=sso", public_url=PUBLIC, sms_provider="twilio",
            TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_FROM_NUMBER="+15005550006", twilio_api_url=twilio.url,
        )
        for name, value in {"TWOFA_ENV": "test", "TWOFA_DATABASE_URL": db, "TWOFA_VAR_DIR": str(work / "var"),
                            "TWOFA_ENCRYPTION_KEYS": encryption_key, "TWOFA_PI_REALMS": "bench=sso"}.items():
            monkeypatch.setenv(name, value)
        # the TOTP token from the PSKC file first; the pi file then adds the others
        assert main(["import", "pskc", str(pskc), "--psk", psk, "--assign", str(owners)]) == 0
        report = capsys.readouterr().out
        assert report.splitlines()[-1] == "imported 1 (totp 1); skipped 0; refused 0", report
        assert main(["import", "privacyidea", str(export), "--key", key]) == 0
        report += capsys.readouterr().out
        assert report.splitlines()[-1] == "imported 2 (push 1, sms 1); skipped 1 (totp 1); refused 0", report
        assert seed.hex() not in report and seed_b32.rstrip("=") not in report and psk not in report
        assert main(["import", "privacyidea", str(export), "--key", key]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "imported 0; skipped 3 (push 1, sms 1, totp 1); refused 0"

        publisher = RecordingPublisher()
        ctx = build_context(settings, publisher=publisher, background=False, clock=SystemClock())
        try:
            with TestClient(create_app(ctx=ctx), base_url=PUBLIC) as api:
                switch.twofa = api
                _log_in_through_twofa(ctx, api, publisher, twilio, phone_app, push_token, seed_b32, used)
        finally:
            ctx.engine.dispose()


def _log_in_through_twofa(ctx: Any, api: TestClient, publisher: RecordingPublisher, twilio: FakeTwilio,
                          phone_app: PiAuthenticatorApp, push_token: Any, seed_b32: str, used: str) -> None:
    plugin = client_for(api, "keycloak")

    # TOTP: the code used on privacyIDEA is refused, the next one is accepted
    assert plugin.check("alice", used).decision == "failure"
    step = otp.time_step(SystemClock().now().timestamp(), 30)
    following = otp.code_at_step(seed_b32, max(step, _step_of(seed_b32, used, step)) + 1, otp.TotpParams())
    assert plugin.check("alice", following).decision == "success"

    # SMS: a code to the same number, through Twilio
    from services.workers import app as worker_app
    from services.workers.tasks import sms as sms_tasks

    worker_app.configure(ctx.settings, ctx=ctx)
    sms_tasks.reset()
    try:
        challenge = plugin.check("bob", "")
        assert challenge.decision == "challenge"
        for event in publisher.published:
            if event["type"] == "sms.requested":
                sms_tasks.send.apply(args=[event])
    finally:
        sms_tasks.reset()
    (message,) = twilio.messages
    assert message["to"] == PHONE.replace(" ", "")
    assert plugin.answer("bob", message["body"][:6], challenge.transaction_id).decision == "success"

    # PUSH: the same phone, the same key, no new enrollment
    challenge = plugin.check("carol", "")
    (entry,) = [e for e in challenge.detail["multi_challenge"] if e["type"] == "push"]
    assert entry["serial"] == push_token.serial
    (request,) = phone_app.poll_requests(push_token)
    assert phone_app.accept(request, entry.get("presence_answer"))["result"]["value"] is True
    assert plugin.answer("carol", "", challenge.transaction_id).decision == "success"


def _step_of(seed_b32: str, code: str, around: int) -> int:
    for step in range(around - 2, around + 3):
        if otp.code_at_step(seed_b32, step, otp.TotpParams()) == code:
            return step
    raise AssertionError("the used code is of no nearby step")
