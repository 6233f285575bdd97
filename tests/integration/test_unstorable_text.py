"""Text no database can store (NUL, which PostgreSQL refuses in text; a lone surrogate,
which cannot be encoded) is refused with a 4xx on every kind of input, and changes nothing.
Runs on SQLite and on PostgreSQL (where it used to fail at the INSERT with a 500)."""

from __future__ import annotations

import json

import pytest

from services.core.models import Token, WebhookSubscription

BAD = ["x\u0000y", "x\ud800y"]


def raw_json(value: dict) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, as a client's JSON would carry it
    return json.dumps(value).encode()


@pytest.mark.parametrize("bad", BAD)
def test_an_enrollment_description(api, enroll_headers, ctx, bad):
    r = api.post("/v1/users/alice/tokens", content=raw_json({"type": "totp", "description": bad}),
                 headers={**enroll_headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_characters"
    with ctx.sessions() as s:
        assert s.query(Token).count() == 0


@pytest.mark.parametrize("bad", BAD)
def test_a_webhook_subscription(api, make_key, ctx, bad):
    headers = {"Authorization": f"Bearer {make_key('admin')}", "Content-Type": "application/json"}
    r = api.post("/v1/webhooks", content=raw_json({"url": "https://hooks.example.org/x", "description": bad}),
                 headers=headers)
    assert r.status_code == 422, r.text
    r = api.post("/v1/webhooks", content=raw_json({"url": "https://hooks.example.org/x", "event_types": [],
                                                   "description": "ok", bad: 1}), headers=headers)
    assert r.status_code == 422, r.text  # a key counts too
    with ctx.sessions() as s:
        assert s.query(WebhookSubscription).count() == 0


@pytest.mark.parametrize("field", ["serial", "nonce", "fbtoken"])
def test_the_push_endpoint(api, field):
    form = {"serial": "PIPU0001", "nonce": "n", "fbtoken": "f", "pubkey": "k", "enrollment_credential": "c"}
    form[field] = "x\u0000y"
    r = api.post("/ttype/push", data=form)
    assert r.status_code == 400, r.text
    assert r.json()["result"]["error"]["code"] == 905


@pytest.mark.parametrize("body", [
    {"data": {"user": "al\u0000ice", "pass": ""}},
    {"content": b'{"user": "alice", "pass": "1\\u00002"}', "headers": {"Content-Type": "application/json"}},
    {"content": b'{"user": "alice\\ud800", "pass": ""}', "headers": {"Content-Type": "application/json"}},
])
def test_the_privacyidea_api(api, body):
    r = api.post("/validate/check", **body)
    assert r.status_code == 400, r.text
    assert r.json()["result"]["error"]["code"] == 905
