"""The privacyIDEA login plugins against the real service: the API, push/audit/expiry
workers and the relay as processes, the broker, the emulated privacyIDEA Authenticator for
PUSH. Every plugin of pi-validate.md §1 runs the flows it supports (§5): one step,
challenge-response, triggerchallenge with a service account, push with polling and
finalize; the native API and the plugins' events end in one verified audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from services.core.plumbing.context import Context
from services.core.privacyidea import accounts
from services.core.plumbing.settings import Settings
from tests.e2e.stack import Stack
from tests.e2e.test_totp_e2e import audit_types, enroll_totp, oathtool, wait_for
from tests.fakes.pi_app import PiAuthenticatorApp
from tests.pi_plugins import PLUGINS, PluginClient, client_for

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


@pytest.fixture
def pi_stack(settings: Settings, broker_url: str) -> Iterator[Stack]:
    stack = Stack(settings, broker_url)
    stack.extra_env.update(
        TWOFA_PUBLIC_URL=stack.url, TWOFA_PUSH_SERVER_KEY_BITS="2048", TWOFA_LOG_LEVEL="WARNING"
    )
    stack.start(queues=("audit", "expiry", "push"))
    yield stack
    stack.stop()


def approved(client: PluginClient, tid: str) -> bool:
    return client.poll(tid).result["value"] is True


def next_code(secret: str) -> str:
    """The next time step's code: the step just used to confirm the enrollment is spent."""
    return oathtool(secret, seconds_ago=-30)


def enroll_push(http: httpx.Client, app: PiAuthenticatorApp, user: str) -> None:
    r = http.post(f"/v1/users/{user}/tokens", json={"type": "push", "description": "phone"})
    assert r.status_code == 201, r.text
    token = app.scan(r.json()["details"]["enrollment_url"])
    app.register(token, key_size=2048)
    assert http.put(f"/v1/users/{user}/areas/sso", json={"protected": True}).status_code in (
        200,
        403,
    )


def test_every_plugin_logs_in_through_the_real_service(
    pi_stack: Stack, ctx: Context, admin_key: str
) -> None:
    native = httpx.Client(
        base_url=pi_stack.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=20
    )
    plain = httpx.Client(base_url=pi_stack.url, timeout=20)
    with ctx.sessions.begin() as session:
        password = accounts.create(session, "keycloak", ctx.clock.now()).password
    app = PiAuthenticatorApp(plain)
    try:
        for name, plugin in PLUGINS.items():
            client = client_for(plain, name)
            # one step: the code alone
            user = f"{name}.one"
            token_secret = enroll_totp(native, user)[1]
            reply = client.check(user, next_code(token_secret))
            assert reply.decision == "success", (name, reply.body)
            if plugin.two_step:  # challenge-response: the password starts it, the code answers
                user = f"{name}.two"
                token_secret = enroll_totp(native, user)[1]
                challenge = client.check(user, "the user's password")
                assert challenge.decision == "challenge", (name, challenge.body)
                answer = client.answer(user, next_code(token_secret), challenge.transaction_id)
                assert answer.decision == "success", (name, answer.body)
            if plugin.service_account:  # triggerchallenge with the /auth JWT
                user = f"{name}.trigger"
                token_secret = enroll_totp(native, user)[1]
                jwt = client.auth("keycloak", password).result["value"]["token"]
                triggered = client.trigger(jwt, user)
                assert triggered.result["value"] == 1 and triggered.decision == "challenge", (
                    name,
                    triggered.body,
                )
                assert (
                    client.answer(user, next_code(token_secret), triggered.transaction_id).decision
                    == "success"
                )
            if plugin.polls:  # push: poll until the phone said yes, then finalize
                user = f"{name}.push"
                enroll_push(native, app, user)
                challenge = client.check(user, "")
                (entry,) = challenge.detail["multi_challenge"]
                assert entry["type"] == "push" and entry["client_mode"] == "poll"
                tid = challenge.transaction_id
                assert client.poll(tid).detail["challenge_status"] == "pending"
                token = next(t for t in app.tokens.values() if t.serial == entry["serial"])
                (req,) = wait_for(partial(app.poll_requests, token), timeout=20)
                assert app.accept(req, entry["presence_answer"])["result"]["value"] is True
                wait_for(partial(approved, client, tid), timeout=20, every=0.3)
                assert client.answer(user, "", tid).decision == "success", name
                assert client.answer(user, "", tid).decision == "failure"  # a finalize counts once
    finally:
        native.close()
        plain.close()

    # the plugins' logins and the native enrollments, in one chain the auditor can verify
    wait_for(
        lambda: (
            "challenge.approved" in audit_types(ctx, "keycloak.push")
            and "challenge.verified" in audit_types(ctx, "keycloak.two")
        ),
        timeout=60,
    )
    assert "enrollment.confirmed" in audit_types(ctx, "keycloak.two")
    with httpx.Client(
        base_url=pi_stack.url, headers={"Authorization": f"Bearer {admin_key}"}
    ) as auditor:
        verdict = auditor.get("/v1/audit/verify").json()
    assert verdict["ok"] is True, verdict
