"""PUSH enrollment with the emulated privacyIDEA Authenticator app (push-protocol.md §1, §2)."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.core.models import PushToken
from tests.fakes.pi_app import AppRejected
from tests.fakes.pi_crypto import pooled_key, spki_b64


def test_step1_url_has_the_exact_parameters_order_and_encoding(world):
    body = world.start()
    d = body["details"]
    serial = d["serial"]
    assert body["token"]["state"] == "clientwait" and body["token"]["serial"] == serial
    assert serial.startswith("PIPU") and len(serial) == 12
    assert d["ttl_minutes"] == 10
    query = dict(parse_qsl(urlsplit(d["enrollment_url"]).query))
    cred = query["enrollment_credential"]
    assert len(cred) == 40 and int(cred, 16) >= 0
    assert d["enrollment_url"] == (
        f"otpauth://pipush/{serial}?url=http%3A//127.0.0.1%3A8000/ttype/push&ttl=10&issuer=twofa"
        f"&enrollment_credential={cred}&v=1&serial={serial}&sslverify=1&poll_only=True")
    assert d["qr_svg"].startswith("data:image/svg+xml") and d["qr_png"].startswith("data:image/png")
    # only a keyed hash of the credential is stored
    with world.ctx.sessions() as s:
        stored = s.get(PushToken, uuid.UUID(body["token"]["id"])).credential_hash
    assert stored != cred and cred not in stored


@pytest.mark.parametrize("push_settings", [{"public_url": "HTTPS://Auth.Example.COM:443/2fa/",
                                            "push_server_key_bits": 2048, "push_poll_only": False}])
def test_the_advertised_url_is_dart_canonical_and_served_under_its_prefix(world):
    body = world.start()
    query = dict(parse_qsl(urlsplit(body["details"]["enrollment_url"]).query))
    assert query["url"] == "https://auth.example.com/2fa/ttype/push"
    assert query["poll_only"] == "False"
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    token.url = "http://testserver/2fa/ttype/push"  # TestClient transport; same path
    world.app.register(token, fbtoken="fcm-x", now=world.now)
    assert world.api.post("/elsewhere/ttype/push", data={}).status_code == 404


def test_step2_with_a_4096_bit_app_key_answers_a_pkcs1_server_key_in_64_char_lines(world, ctx, publisher):
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    answer = world.app.register(token, key_size=4096, now=world.now)
    assert answer["result"] == {"status": True, "value": True}
    assert answer["detail"]["rollout_state"] == "enrolled"
    lines = answer["detail"]["public_key"].split("\n")
    assert all(len(line) == 64 for line in lines[:-1]) and 0 < len(lines[-1]) <= 64
    assert token.server_public_key is not None and token.private_key.key_size == 4096
    tokens = world.api.get("/v1/users/alice/tokens", headers=world.enroll_headers).json()["tokens"]
    assert tokens[0]["state"] == "active"
    assert "enrollment.confirmed" in publisher.types()
    with ctx.sessions() as s:
        pt = s.get(PushToken, uuid.UUID(body["token"]["id"]))
        assert pt.credential_hash is None and pt.poll_only is True and pt.server_key_enc
        assert "PRIVATE KEY" not in pt.server_key_enc  # encrypted at rest


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 4096}])
def test_default_server_key_is_rsa_4096(world):
    token = world.enroll(key_size=2048)
    assert token.server_public_key.key_size == 4096


def test_url_safe_app_key_is_accepted(world):
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    key = pooled_key(2048)
    urlsafe = spki_b64(key.public_key()).replace("+", "-").replace("/", "_").rstrip("=")
    form = {"enrollment_credential": token.enrollment_credential, "serial": token.serial,
            "fbtoken": "no_firebase_token", "pubkey": urlsafe}
    r = world.api.post(token.url, data=form)
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["detail"]["public_key"].replace("\n", ""))


def test_wrong_credential_is_error_905_and_leaves_the_token_waiting(world):
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    good = token.enrollment_credential
    token.enrollment_credential = "0" * 40
    with pytest.raises(AppRejected) as exc:
        world.app.register(token, key_size=2048, now=world.now)
    assert exc.value.status == 400
    assert exc.value.body["result"]["status"] is False
    assert exc.value.body["result"]["error"]["code"] == 905
    assert exc.value.body["result"]["error"]["message"].startswith("ERR905: Invalid enrollment credential")
    assert exc.value.body["error"]["code"] == "invalid_enrollment_credential"
    token.enrollment_credential = good
    world.app.register(token, key_size=2048, now=world.now)  # the right one still works


def test_second_step2_is_error_601(world):
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    world.app.register(token, key_size=2048, now=world.now)
    token.server_public_key = None  # a second phone with the same QR code
    with pytest.raises(AppRejected) as exc:
        world.app.register(token, key_size=2048, now=world.now)
    assert exc.value.status == 404
    assert exc.value.body["result"]["error"]["code"] == 601


def test_step2_after_the_qr_ttl_is_refused_by_the_server(world, clock):
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    clock.advance(10 * 60 + 1)
    with pytest.raises(AppRejected) as exc:  # now=scan time: the app itself would still try
        world.app.register(token, key_size=2048, now=token.scanned_at)
    assert exc.value.status == 404 and exc.value.body["result"]["error"]["code"] == 601
    tokens = world.api.get("/v1/users/alice/tokens", headers=world.enroll_headers).json()["tokens"]
    assert tokens[0]["state"] == "clientwait"


def test_missing_parameters_and_bad_key_are_clear_400s(world, api):
    r = api.post("/ttype/push", data={"serial": "PIPU00000000"})
    assert r.status_code == 400 and r.json()["result"]["error"]["code"] == 905
    body = world.start()
    token = world.app.scan(body["details"]["enrollment_url"], now=world.now)
    r = api.post("/ttype/push", data={"enrollment_credential": token.enrollment_credential,
                                      "serial": token.serial, "fbtoken": "x", "pubkey": "bm90IGEga2V5"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_public_key"
    world.app.register(token, key_size=2048, now=world.now)  # nothing was consumed


def test_push_tokens_refuse_typed_codes_and_count_nothing(world, enrolled):
    enrolled()
    sel = world.login()
    r = world.api.post(f"/v1/challenges/{sel['challenge_id']}/verify", json={"code": "123456"},
                       headers=world.challenge_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_code_factor"
    outcome = world.outcome(sel["challenge_id"])
    assert outcome["status"] == "pending" and outcome["attempts_left"] == sel["attempts_left"]
