"""The production shape without containers: the API with two worker processes, the relay and
one worker per queue as processes, on PostgreSQL and Redis, with Twilio and FCM faked over
HTTP. A TOTP, an SMS and a PUSH login (and a PUSH nobody answers); then each process's
metrics show what it did, the logs are JSON lines that carry the login's correlation id into
the worker, and nothing secret is in them.

Every expectation is something this test causes: e.g. the webhooks worker is only expected to
run its sweep (no subscription exists), the notify worker to tell the user about enrollments.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.core import apikeys
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.outbox import RelayDispatcher
from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack, free_port
from tests.fakes.fake_fcm import FakeFCM
from tests.fakes.fake_twilio import FakeTwilio, twilio_error
from tests.fakes.pi_app import PiAuthenticatorApp
from tests.integration.areas.helpers import enroll_active
from tests.integration.operations.helpers import names, value
from tests.leakcheck import Sensitive, assert_no_leaks

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("TWOFA_DATABASE_URL", "").startswith("postgresql"),
                       reason="the production shape runs on PostgreSQL (TWOFA_DATABASE_URL)"),
]

PHONE = "+4915112345678"
WORKERS = {"sms": "threads", "push": "threads", "expiry": "solo", "audit": "solo",
           "webhooks": "threads", "notify": "threads"}
LOGIN_ID = "prodshape-sms-login"


def wait_for(what: str, check: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = check()
        except (httpx.TransportError, KeyError, IndexError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Shape:
    def __init__(self, stack: Stack, twilio: FakeTwilio, fcm: FakeFCM) -> None:
        self.stack, self.twilio, self.fcm = stack, twilio, fcm
        self.metrics_ports: dict[str, int] = {}

    def start(self, name: str, *args: str) -> None:
        port = free_port()
        self.metrics_ports[name] = port
        self.stack.spawn(name, *args, "--metrics-port", str(port))

    def scrape(self, name: str) -> str:
        if name == "api":
            r = httpx.get(f"{self.stack.url}/metrics", timeout=5)
        else:
            r = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5)
        r.raise_for_status()
        return r.text


@pytest.fixture
def shape(settings: Settings, broker_url: str) -> Iterator[Shape]:
    if not broker_url.startswith("redis"):
        pytest.skip("queue ages are read from Redis lists")
    with FakeTwilio() as twilio, FakeFCM() as fcm:
        stack = Stack(settings, broker_url)
        credentials = fcm.write_service_account(settings.var_dir.parent / "fcm.json")
        stack.extra_env.update(
            TWOFA_LOG_FORMAT="json", TWOFA_LOG_LEVEL="INFO",
            TWOFA_PUBLIC_URL=stack.url,
            TWOFA_SMS_PROVIDER="twilio", TWOFA_TWILIO_API_URL=twilio.url,
            TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_FROM_NUMBER="+15005550006", TWOFA_SMS_RESEND_INTERVAL_SECONDS="0",
            TWOFA_PUSH_PROVIDER="fcm", TWOFA_FCM_CREDENTIALS_FILE=str(credentials),
            TWOFA_FCM_API_URL=fcm.url, TWOFA_PUSH_POLL_ONLY="false",
            TWOFA_PUSH_SERVER_KEY_BITS="2048", TWOFA_PUSH_TTL_SECONDS="10",
            TWOFA_AUDIT_CHECKPOINT_ROWS="5",
        )
        stack.logs = settings.var_dir / "logs"
        stack.logs.mkdir(parents=True, exist_ok=True)
        shape = Shape(stack, twilio, fcm)
        try:
            stack.spawn("api", "serve", "--port", str(stack.port), "--workers", "2")
            shape.start("relay", "relay")
            wait_for("the API", lambda: httpx.get(f"{stack.url}/healthz", timeout=1)
                     .status_code == 200, 60)
            yield shape
        finally:
            stack.stop()


def test_the_production_shape_moves_every_metric_on_the_right_process(
    shape: Shape, ctx: Context, settings: Settings
) -> None:
    stack = shape.stack
    with ctx.sessions.begin() as session:
        key = apikeys.create_key(session, "shape", ("enroll", "challenge"),
                                 ctx.clock.now()).plaintext
    headers = {"Authorization": f"Bearer {key}"}
    secrets: set[str] = {key}

    # TOTP enrolled in process on a frozen clock (confirmation needs a later time step); its
    # events reach the broker through the relay, and wait there: no worker runs yet.
    ctx.dispatcher = RelayDispatcher()
    with TestClient(create_app(ctx=ctx)) as local:
        totp_id, totp_secret, _ = enroll_active(local, headers, ctx.clock)
    secrets.add(totp_secret)
    relay = wait_for("the relay to republish and report the backlog", lambda: (
        text if value(text := shape.scrape("relay"), "twofa_queue_depth", queue="audit") >= 1
        and value(text, "twofa_relay_republished_total") >= 1 else None))
    assert value(relay, "twofa_queue_oldest_age_seconds", queue="audit") >= 0
    assert value(relay, "twofa_audit_lag_events") >= 1  # nothing is in the chain yet
    assert {"twofa_outbox_unpublished", "twofa_outbox_oldest_unpublished_age_seconds"} \
        <= names(relay)
    assert {(q, True) for q in QUEUES} == {
        (q, f'twofa_queue_depth{{queue="{q}"}}' in relay) for q in QUEUES}
    time.sleep(1.1)  # the oldest message's age grows while nobody consumes it
    assert value(shape.scrape("relay"), "twofa_queue_oldest_age_seconds", queue="audit") >= 1

    for queue, pool in WORKERS.items():
        shape.start(f"worker-{queue}", "worker", "--queues", queue, "--pool", pool,
                    "--concurrency", "4" if pool == "threads" else "1")
    for name in shape.metrics_ports:
        wait_for(f"{name}'s metrics", lambda name=name: shape.scrape(name), 60)
    wait_for("the audit backlog to drain", lambda: value(
        shape.scrape("relay"), "twofa_queue_depth", queue="audit") == 0, 60)

    http = httpx.Client(base_url=stack.url, headers=headers, timeout=15)
    # SMS and PUSH enrolled through the real processes
    r = http.post("/v1/users/alice/tokens", json={"type": "sms", "description": "m",
                                                  "phone": PHONE})
    assert r.status_code == 201, r.text
    sms_id = r.json()["token"]["id"]
    def codes() -> list[dict[str, Any]]:
        """The code SMS (the notify worker also tells the user of changes by SMS)."""
        return [m for m in shape.twilio.messages if re.match(r"\d{6} is your", m["body"])]

    (sms,) = wait_for("the enrollment SMS", codes, 60)
    enroll_code = sms["body"].split()[0]  # "123456 is your twofa code. …"
    r = http.post(f"/v1/users/alice/tokens/{sms_id}/activate", json={"code": enroll_code})
    assert r.status_code == 200 and r.json()["token"]["state"] == "active", r.text
    phone = PiAuthenticatorApp(httpx.Client(timeout=15))
    r = http.post("/v1/users/alice/tokens", json={"type": "push", "description": "p"})
    assert r.status_code == 201, r.text
    push_token = phone.scan(r.json()["details"]["enrollment_url"])
    phone.register(push_token, fbtoken="device-shape", key_size=2048)
    push_id = r.json()["token"]["id"]

    def login(token_id: str, request_id: str) -> dict[str, Any]:
        r = http.post("/v1/challenges", json={"user_id": "alice", "area": "sso"},
                      headers={"X-Request-ID": request_id})
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
        cid = r.json()["challenge_id"]
        r = http.post(f"/v1/challenges/{cid}/select", json={"token_id": token_id},
                      headers={"X-Request-ID": request_id})
        assert r.status_code == 200, r.text
        return {**r.json(), "challenge_id": cid}

    # a PUSH nobody answers: it expires in TWOFA_PUSH_TTL_SECONDS
    unanswered = login(push_id, "prodshape-push-expires")
    wait_for("the first push", lambda: shape.fcm.wait_for_messages(1, timeout=15))

    # TOTP login
    from services.core.factors.totp import otp

    r = http.post("/v1/challenges", json={"user_id": "alice", "area": "sso"})
    code = otp.code_at_step(totp_secret, otp.time_step(time.time(), 30), otp.TotpParams())
    r = http.post(f"/v1/challenges/{r.json()['challenge_id']}/verify",
                  json={"code": code, "token_id": totp_id})
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text

    # SMS login; Twilio refuses the first try (a retry), then reports delivery. The notify
    # worker tells the user of each enrollment by SMS too: those go first, so that the refusal
    # meets the login's SMS.
    notify = wait_for("the notifications of three enrollments", lambda: (
        t if value(t := shape.scrape("worker-notify"), "twofa_task_duration_seconds_count",
                   task="twofa.notify.send") >= 3 else None))
    shape.twilio.script(twilio_error(503, 20500, "Service unavailable"))
    sms_login = login(sms_id, LOGIN_ID)
    message = wait_for("the login SMS", lambda: codes()[1], 60)
    sms_code = message["body"].split()[0]
    r = http.post(f"/v1/challenges/{sms_login['challenge_id']}/verify",
                  json={"code": sms_code, "token_id": sms_id},
                  headers={"X-Request-ID": LOGIN_ID})
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    params = shape.twilio.status_callback_params(message["sid"], "delivered")
    r = httpx.post(message["status_callback"], data=params, timeout=10, headers={
        "X-Twilio-Signature": shape.twilio.sign_callback(message["status_callback"], params)})
    assert r.status_code in (200, 204), r.text

    # PUSH login, approved on the phone
    push_login = login(push_id, "prodshape-push-login")
    fcm = shape.fcm.wait_for_messages(2, timeout=30)[-1]
    request = phone.verify_challenge(push_token, fcm.data)
    assert phone.accept(request, push_login.get("presence_answer"))["result"]["value"] is True
    r = http.get(f"/v1/challenges/{push_login['challenge_id']}?wait=5")
    assert r.json()["status"] == "approved", r.text

    r = http.get(f"/v1/challenges/{unanswered['challenge_id']}?wait=20")
    assert r.json()["status"] == "expired", r.text
    expiry = wait_for("the expiry worker's count", lambda: (
        t if value(t := shape.scrape("worker-expiry"), "twofa_push_total", outcome="expired")
        else None))
    relay = wait_for("the audit chain to catch up and a checkpoint", lambda: (
        t if value(t := shape.scrape("relay"), "twofa_audit_lag_events") == 0
        and "twofa_audit_checkpoint_age_seconds" in t else None), 60)

    # -- what each process reports ------------------------------------------------------------
    api = [shape.scrape("api") for _ in range(4)]  # each scrape is answered by either worker
    verify = dict(route="/v1/challenges/{challenge_id}/verify", method="POST", status="200")
    assert {value(t, "twofa_http_requests_total", **verify) for t in api} == {2.0}
    text = api[-1]
    assert value(text, "twofa_http_request_duration_seconds_count", route=verify["route"]) == 2
    for factor in ("totp", "sms", "push"):
        assert value(text, "twofa_logins_total", factor=factor, outcome="success") == 1, factor
    assert value(text, "twofa_push_total", outcome="answered") == 1
    assert value(text, "twofa_sms_total", outcome="delivered") == 1
    assert "alice" not in text and PHONE not in text

    # A task's duration is observed when it returns, a moment after its effects committed.
    sms_worker = wait_for("the SMS tasks to return", lambda: (
        t if value(t := shape.scrape("worker-sms"), "twofa_task_duration_seconds_count",
                   task="twofa.sms.send", outcome="success") >= 2 else None))
    assert value(sms_worker, "twofa_sms_total", outcome="sent") == 2  # enrollment and login
    assert value(sms_worker, "twofa_sms_provider_seconds_count", provider="twilio") == 3
    assert value(sms_worker, "twofa_task_retries_total", task="twofa.sms.send") == 1
    assert value(sms_worker, "twofa_task_duration_seconds_count", task="twofa.sms.send",
                 outcome="success") == 2

    push_worker = wait_for("the push tasks to return", lambda: (
        t if value(t := shape.scrape("worker-push"), "twofa_task_duration_seconds_count",
                   task="twofa.push.send") >= 2 else None))
    assert value(push_worker, "twofa_push_total", outcome="sent") == 2  # two push logins
    assert value(push_worker, "twofa_task_duration_seconds_count", task="twofa.push.send") == 2

    assert value(expiry, "twofa_push_total", outcome="expired") == 1
    assert value(expiry, "twofa_logins_total", factor="none", outcome="expired") == 1
    assert value(expiry, "twofa_task_duration_seconds_count", task="twofa.expiry.sweep") >= 1

    audit = shape.scrape("worker-audit")
    assert value(audit, "twofa_task_duration_seconds_count", task="twofa.audit.append_many") >= 1
    webhooks = shape.scrape("worker-webhooks")
    assert value(webhooks, "twofa_task_duration_seconds_count", task="twofa.webhooks.sweep") >= 1
    assert value(notify, "twofa_task_failures_total") == 0

    # published rows are marked in batches, a moment after the publish: the backlog drains
    relay = wait_for("the outbox and the sms queue to drain", lambda: (
        t if value(t := shape.scrape("relay"), "twofa_outbox_unpublished") == 0
        and value(t, "twofa_queue_depth", queue="sms") == 0 else None))
    assert 0 <= value(relay, "twofa_audit_checkpoint_age_seconds") < 120

    # -- logs: JSON lines; the SMS login's id reaches the SMS worker; nothing secret -------------
    stack.stop()
    lines = [json.loads(line) for line in (stack.logs / "worker-sms.log").read_text()
             .splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message", "correlation_id"} <= set(x)
                         for x in lines)
    assert any(x["correlation_id"] == LOGIN_ID for x in lines), "the login's id in the worker"
    assert_no_leaks(Sensitive(secrets=secrets, codes={code, sms_code, enroll_code},
                              phones={PHONE}), logs=stack.log_text())
