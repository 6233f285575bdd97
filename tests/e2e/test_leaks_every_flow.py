"""Every flow of the user guide on the real service — API, workers and relay as processes,
the real broker — and then a search of everything observable from outside the database:
every process's log, every event (the audit log holds them all) and every message the
broker carried (Redis MONITOR). No seed, code, recovery token, enrollment credential,
nonce, API key or full phone number may appear in any of them.

The console providers' outbox files (``var/outbox/sms.log``, ``push.log``) are the
developer's phone and are read here as a phone would; they are not searched.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from sqlalchemy import select

from services.core.plumbing.context import Context
from services.core.models import AuditEntry, OutboxEvent
from tests.e2e.stack import Stack
from tests.fakes.pi_app import PiAuthenticatorApp
from tests.leakcheck import Sensitive, assert_no_leaks

pytestmark = [pytest.mark.e2e]
PHONE = "+4915112345678"


def oathtool(secret: str, seconds_ago: int = 0) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() - seconds_ago))
    return subprocess.run(["oathtool", "--totp", "-b", "--now", when, secret],
                          check=True, capture_output=True, text=True).stdout.strip()


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class BrokerTap:
    """Every command the Redis broker executed, message bodies included (MONITOR)."""

    def __init__(self, url: str) -> None:
        self.lines: list[str] = []
        self._client = redis.Redis.from_url(url.replace("redis+socket://", "unix://"), socket_timeout=None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self._client.monitor() as m:
                for command in m.listen():
                    self.lines.append(command["command"])
                    if self._stop.is_set():
                        return
        except (redis.RedisError, OSError) as exc:  # the test asserts the tap saw messages
            self.lines.append(f"tap stopped: {type(exc).__name__}")

    def start(self) -> "BrokerTap":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._client.ping()  # one more command, so the listener wakes up and sees the flag
        self._thread.join(5)


def last_sms_code(stack: Stack, after: int) -> tuple[str, int]:
    path = stack.settings.var_dir / "outbox" / "sms.log"

    def read():
        lines = path.read_text().splitlines() if path.exists() else []
        return lines if len(lines) > after else None

    lines = wait_for(read)
    return re.findall(r"(?<!\d)\d{6}(?!\d)", lines[-1])[-1], len(lines)


def test_every_flow_leaves_no_secret_behind(settings, ctx: Context, broker_url: str, admin_key: str):
    if not broker_url.startswith(("redis://", "redis+socket://")):
        pytest.skip("the broker tap reads Redis MONITOR; this run's broker is not Redis")
    stack = Stack(settings, broker_url)
    stack.extra_env.update(TWOFA_PUBLIC_URL=stack.url, TWOFA_PUSH_SERVER_KEY_BITS="2048",
                           TWOFA_SMS_RESEND_INTERVAL_SECONDS="0",  # enrollment and login SMS close together
                           TWOFA_LOG_FORMAT="json")  # the production format is what is searched
    tap = BrokerTap(broker_url).start()
    stack.start(queues=("audit", "expiry", "sms", "push"))
    used = Sensitive(secrets={admin_key}, phones={PHONE})
    try:
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=15) as http:
            # 1 Activation (TOTP): description, QR, scanned, two codes, recovery file, overview
            r = http.post("/v1/users/alice/tokens", json={"type": "totp", "description": "Pixel 8"})
            totp_id = r.json()["token"]["id"]
            secret = parse_qs(urlsplit(r.json()["details"]["provisioning_uri"]).query)["secret"][0]
            used.secrets |= {secret}
            base = f"/v1/users/alice/tokens/{totp_id}"
            http.post(f"{base}/scanned")
            for path, ago in (("activate", 30), ("confirm", 0)):
                code = oathtool(secret, ago)
                used.codes.add(code)
                assert http.post(f"{base}/{path}", json={"code": code}).status_code == 200
            recovery_file = http.get("/v1/users/alice/recovery-token")
            assert recovery_file.status_code == 200
            recovery = re.search(r"[0-9A-F]{4}(?:-[0-9A-F]{4}){7}", recovery_file.text).group(0)
            used.secrets.add(recovery)
            wrong = "000000" if oathtool(secret) != "000000" else "111111"
            used.codes.add(wrong)

            # SMS token: the code arrives on the "phone" (the console outbox file)
            r = http.post("/v1/users/alice/tokens", json={"type": "sms", "description": "mobile", "phone": PHONE})
            sms_id = r.json()["token"]["id"]
            code, seen = last_sms_code(stack, 0)
            used.codes.add(code)
            step_up = {"code": oathtool(secret, -30)}  # the next step: a fresh TOTP code
            used.codes.add(step_up["code"])
            assert http.post(f"/v1/users/alice/tokens/{sms_id}/activate", json={"code": code}).status_code == 200

            # PUSH token through the emulated privacyIDEA Authenticator app, poll-only
            r = http.post("/v1/users/alice/tokens", json={"type": "push", "description": "iPhone"})
            push_url = r.json()["details"]["enrollment_url"]
            used.secrets.add(parse_qs(urlsplit(push_url).query)["enrollment_credential"][0])
            app = PiAuthenticatorApp(http)
            app_token = app.scan(push_url)
            app.register(app_token, fbtoken=None, key_size=2048)

            # 3 Usage: a login with each factor
            assert http.put("/v1/users/alice/areas/portal-security", json={"protected": True, **step_up}).status_code == 200
            def login():
                c = http.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}).json()
                assert c["status"] == "pending", c
                return c["challenge_id"], {f["type"]: f["token_id"] for f in c["factors"]}

            cid, factors = login()
            http.post(f"/v1/challenges/{cid}/select", json={"token_id": factors["totp"]})
            assert http.post(f"/v1/challenges/{cid}/verify", json={"code": wrong}).status_code == 422
            # the step-up code used the next step; wait for it to become current, then use the one after
            time.sleep(30 - time.time() % 30 + 0.5)
            code = oathtool(secret, -30)
            used.codes.add(code)
            assert http.post(f"/v1/challenges/{cid}/verify", json={"code": code}).json()["status"] == "verified"

            cid, factors = login()
            assert http.post(f"/v1/challenges/{cid}/select", json={"token_id": factors["sms"]}).status_code == 200
            code, seen = last_sms_code(stack, seen)
            used.codes.add(code)
            assert http.post(f"/v1/challenges/{cid}/verify", json={"code": code}).json()["status"] == "verified"

            cid, factors = login()
            sel = http.post(f"/v1/challenges/{cid}/select", json={"token_id": factors["push"]}).json()
            requests = wait_for(lambda: app.poll_requests(app_token))
            used.secrets |= {req.nonce for req in requests}
            app.accept(requests[0], presence_answer=sel.get("presence_answer"))
            assert http.get(f"/v1/challenges/{cid}").json()["status"] == "approved"

            # 4 Deactivation: the recovery token resets 2FA
            assert http.post("/v1/users/alice/recovery", json={"recovery_token": recovery}).status_code == 200

        with ctx.sessions() as s:
            written = len(list(s.scalars(select(OutboxEvent.event_id))))
        wait_for(lambda: len(audit_envelopes(ctx)) >= written, timeout=30)
        time.sleep(1)
    finally:
        tap.stop()
        stack.stop()
    envelopes = audit_envelopes(ctx)
    assert {"sms.sent", "challenge.approved", "recovery.used", "challenge.verified"} <= {e["type"] for e in envelopes}
    assert any("twofa.sms.send" in line for line in tap.lines)  # the tap did see the messages
    assert '"correlation_id": ' in stack.log_text()  # the logs searched are the JSON lines
    assert_no_leaks(used, logs=stack.log_text(), envelopes=envelopes, messages=tap.lines)


def audit_envelopes(ctx: Context) -> list[dict]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry.envelope).order_by(AuditEntry.position)))
