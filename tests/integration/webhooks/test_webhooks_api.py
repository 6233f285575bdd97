"""The admin API of webhook subscriptions: the secret shown once, bad targets refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api.app import create_app
from services.core.bootstrap import build_context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.models import WebhookSubscription
from tests.conftest import make_settings


@pytest.fixture
def admin(make_key):
    return {"Authorization": f"Bearer {make_key('admin')}"}


def test_create_shows_the_secret_once_and_stores_it_encrypted(api, ctx, admin, receiver):
    r = api.post("/v1/webhooks", json={"url": receiver.url + "/hook", "event_types": ["push.fraud_reported"],
                                       "description": "security team"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["state"] == "active" and created["event_types"] == ["push.fraud_reported"]
    listed = api.get("/v1/webhooks", headers=admin).json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert secret not in api.get("/v1/webhooks", headers=admin).text
    assert secret not in api.get(f"/v1/webhooks/{created['id']}", headers=admin).text
    with ctx.sessions() as session:
        stored = session.scalars(select(WebhookSubscription.secret_enc)).one()
    assert secret not in stored and ctx.keyring.decrypt(stored) == secret


def test_disable_enable_replay_delete(api, admin, receiver, chain12):
    sub = api.post("/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
    assert sub["next_position"] == 13  # from now on
    base = f"/v1/webhooks/{sub['id']}"
    r = api.post(f"{base}/disable", headers=admin)
    assert (r.status_code, r.json()["state"], r.json()["disabled_reason"]) == (
        200, "disabled", "disabled by an administrator")
    assert api.post(f"{base}/enable", headers=admin).json()["state"] == "active"
    assert api.post(f"{base}/replay", json={"from_position": 5}, headers=admin).json()["next_position"] == 5
    assert api.delete(base, headers=admin).status_code == 204
    assert api.get(base, headers=admin).status_code == 404
    assert api.delete(base, headers=admin).status_code == 404


@pytest.mark.parametrize("body,code", [
    ({"url": "ftp://example.org/hook"}, "webhook_target_refused"),
    ({"url": "https://user:pw@example.org/hook"}, "webhook_target_refused"),
    ({"url": "https://example.org/hook", "event_types": ["token.renamed"]}, "unknown_event_type"),
    ({"url": "https://example.org/hook", "event_types": ["Not A Type"]}, "invalid_input"),
    ({"url": "https://example.org/hook", "secret": "whsec_mine"}, "invalid_input"),
    ({"url": "https://example.org/hook", "from_position": 0}, "invalid_input"),
])
def test_bad_input_is_a_422_and_creates_nothing(api, admin, body, code):
    r = api.post("/v1/webhooks", json=body, headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (422, code)
    assert api.get("/v1/webhooks", headers=admin).json()["subscriptions"] == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
                                 "http://[::ffff:192.168.0.1]/hook", "http://0.0.0.0/hook"])
def test_private_and_loopback_targets_are_refused_by_default(tmp_path, database_url, url):
    ctx = build_context(make_settings(tmp_path, database_url), publisher=RecordingPublisher(), background=False)
    try:
        from services.core import apikeys

        with ctx.sessions.begin() as session:
            key = apikeys.create_key(session, "t", ("admin",), ctx.clock.now()).plaintext
        with TestClient(create_app(ctx=ctx)) as client:
            r = client.post("/v1/webhooks", json={"url": url}, headers={"Authorization": f"Bearer {key}"})
    finally:
        ctx.engine.dispose()
    assert (r.status_code, r.json()["error"]["code"]) == (422, "webhook_target_refused")


def test_only_admin_keys_manage_webhooks(api, make_key):
    for scope in ("enroll", "challenge", "audit:read"):
        r = api.get("/v1/webhooks", headers={"Authorization": f"Bearer {make_key(scope)}"})
        assert r.status_code == 403
