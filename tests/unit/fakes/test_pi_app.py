"""Self-test of the privacyIDEA Authenticator emulation, without our server (push-protocol.md)."""

from __future__ import annotations

import base64
import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jcs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.pi_app import (
    NO_FIREBASE_TOKEN,
    AppRejected,
    AppToken,
    PiAuthenticatorApp,
    PollError,
    challenge_sign_string,
)
from tests.fakes.pi_crypto import (
    b32_nonce,
    dart_uri_to_string,
    dart_utc_iso,
    pkcs1_b64,
    pooled_key,
    sign,
    spki_b64,
    verify,
)

SPEC_URL = ("otpauth://pipush/PIPU0000C0B9?url=http%3A//127.0.0.1%3A5002/ttype/push&ttl=10"
            "&issuer=privacyIDEA&enrollment_credential=ad3cb103648d9eb4b876419d9855b14d51129b5f"
            "&v=1&serial=PIPU0000C0B9&sslverify=0&poll_only=True")
PUSH_URL = "http://127.0.0.1:5002/ttype/push"
SERIAL = "PIPU0000C0B9"
NONCE = "WIC6CLJBJWRRL5ZSCGSHPKVNLPRO5DER"
QUESTION = "Do you want to confirm the login?"


@dataclass
class StubResponse:
    status_code: int
    body: Any

    def json(self) -> Any:
        if isinstance(self.body, str):
            return json.loads(self.body)
        return self.body


@dataclass
class StubHttp:
    """Records calls; answers from a queue of StubResponse (httpx-like post/get)."""

    replies: deque[StubResponse] = field(default_factory=deque)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, *, data: dict[str, str]) -> StubResponse:
        self.calls.append(("POST", url, dict(data)))
        return self.replies.popleft()

    def get(self, url: str, *, params: dict[str, str]) -> StubResponse:
        self.calls.append(("GET", url, dict(params)))
        return self.replies.popleft()


@pytest.fixture(scope="module")
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def enrolled(public_key: str) -> StubResponse:
    return StubResponse(200, {"jsonrpc": "2.0", "id": 1, "version": "privacyIDEA 3.14",
                              "result": {"status": True, "value": True},
                              "detail": {"public_key": public_key, "rollout_state": "enrolled",
                                         "serial": SERIAL}})


def challenge(key: rsa.RSAPrivateKey, url: str = PUSH_URL, signed_url: str | None = None,
              presence: str | None = None, caps: bool = True) -> dict[str, str]:
    """A challenge dict built the way the 3.14 server builds it (§0, §4)."""
    d = {"nonce": NONCE, "question": QUESTION, "serial": SERIAL, "title": "privacyIDEA",
         "sslverify": "1", "url": url}
    parts = [NONCE, signed_url or url, SERIAL, QUESTION, "privacyIDEA", "1"]
    if presence is not None:
        d |= {"require_presence": presence, "version": "2"}
        parts.append(presence)
    d["signature"] = sign(key, "|".join(parts))
    if caps:
        d["capabilities"] = json.dumps({"decline_reason": True})
        d["capabilities_signature"] = sign(key, jcs.canonicalize(
            {"capabilities": {"decline_reason": True}, "nonce": NONCE}).decode())
    return d


@pytest.fixture
def rolled(server_key: rsa.RSAPrivateKey) -> tuple[PiAuthenticatorApp, StubHttp, AppToken]:
    http = StubHttp(deque([enrolled(pkcs1_b64(server_key.public_key()))]))
    app = PiAuthenticatorApp(http)
    token = app.scan(SPEC_URL)
    app.register(token, key_size=2048)
    http.calls.clear()
    return app, http, token


def app_pub(token: AppToken) -> rsa.RSAPublicKey:
    assert token.private_key is not None
    return token.private_key.public_key()


# -- §1 QR code ---------------------------------------------------------------------------------
def test_scan_parses_the_spec_example_url() -> None:
    t = PiAuthenticatorApp(StubHttp()).scan(SPEC_URL)
    assert (t.serial, t.label, t.issuer, t.url) == (SERIAL, SERIAL, "privacyIDEA", PUSH_URL)
    assert (t.ttl_minutes, t.sslverify, t.poll_only, t.pin) == (10, False, True, False)
    assert t.enrollment_credential == "ad3cb103648d9eb4b876419d9855b14d51129b5f"
    assert not t.rolled_out


def test_scan_pia_scheme_issuer_in_label_and_defaults() -> None:
    app = PiAuthenticatorApp(StubHttp())
    t = app.scan("pia://PIPUSH/ACME%20Corp%3Aalice?url=pi.example.test/ttype/push"
                 "&issuer=ignored&enrollment_credential=ab&v=1&serial=PIPU1")
    assert (t.issuer, t.label, t.url) == ("ACME Corp", "alice", "https://pi.example.test/ttype/push")
    assert (t.ttl_minutes, t.sslverify, t.poll_only) == (3, True, False)
    assert app.tokens == {"PIPU1": t}


@pytest.mark.parametrize("url", [
    SPEC_URL.replace("&v=1", "&v=2"), SPEC_URL.replace("&v=1", ""),
    SPEC_URL.replace("url=http%3A//127.0.0.1%3A5002/ttype/push&", ""),
    SPEC_URL.replace("ttl=10", "ttl=0"), SPEC_URL.replace("ttl=10", "ttl=ten"),
    SPEC_URL.replace("sslverify=0", "sslverify=yes"), SPEC_URL.replace("&serial=PIPU0000C0B9", ""),
    SPEC_URL.replace("otpauth://pipush", "otpauth://totp"), SPEC_URL.replace("otpauth:", "http:"),
])
def test_scan_refuses_what_the_app_refuses(url: str) -> None:
    with pytest.raises(AppRejected):
        PiAuthenticatorApp(StubHttp()).scan(url)


# -- §2 enrollment step 2 -----------------------------------------------------------------------
def test_register_sends_the_app_fields(server_key: rsa.RSAPrivateKey) -> None:
    http = StubHttp(deque([enrolled(pkcs1_b64(server_key.public_key()))]))
    app = PiAuthenticatorApp(http)
    token = app.scan(SPEC_URL)
    body = app.register(token, fbtoken="ignored-for-poll-only", key_size=2048)
    assert body["result"]["value"] is True
    ((method, url, form),) = http.calls
    assert (method, url) == ("POST", PUSH_URL)
    assert list(form) == ["enrollment_credential", "serial", "fbtoken", "pubkey", "capabilities"]
    assert form["enrollment_credential"] == token.enrollment_credential
    assert form["fbtoken"] == NO_FIREBASE_TOKEN and form["capabilities"] == '["decline_reason"]'
    assert "\n" not in form["pubkey"] and "-" not in form["pubkey"]
    spki = serialization.load_der_public_key(base64.b64decode(form["pubkey"], validate=True))
    assert isinstance(spki, rsa.RSAPublicKey)
    assert spki.public_numbers() == app_pub(token).public_numbers()
    assert token.server_public_key is not None
    assert token.server_public_key.public_numbers() == server_key.public_key().public_numbers()


def test_register_with_firebase_and_without_capabilities(server_key: rsa.RSAPrivateKey) -> None:
    http = StubHttp(deque([enrolled(pkcs1_b64(server_key.public_key()))]))
    app = PiAuthenticatorApp(http)
    token = app.scan(SPEC_URL.replace("poll_only=True", "poll_only=False"))
    app.register(token, fbtoken="fcm-token-1", key_size=2048, capabilities=False)
    form = http.calls[0][2]
    assert form["fbtoken"] == "fcm-token-1" and "capabilities" not in form


def _spki_b64_lines(key: rsa.RSAPrivateKey) -> str:
    b64 = spki_b64(key.public_key())
    return "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))


@pytest.mark.parametrize("bad", ["spki", "pem", "garbage", "http400", "status_false"])
def test_register_rejects_what_breaks_the_app(server_key: rsa.RSAPrivateKey, bad: str) -> None:
    pem = server_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.PKCS1).decode()
    reply = {"spki": enrolled(_spki_b64_lines(server_key)), "pem": enrolled(pem),
             "garbage": enrolled("not base64!"),
             "http400": StubResponse(400, {"result": {"status": False, "error": {
                 "code": 905, "message": "ERR905: Invalid enrollment credential."}}}),
             "status_false": StubResponse(200, {"result": {"status": False}})}[bad]
    app = PiAuthenticatorApp(StubHttp(deque([reply])))
    token = app.scan(SPEC_URL)
    with pytest.raises(AppRejected):
        app.register(token, key_size=2048)
    assert not token.rolled_out


def test_register_after_ttl_is_refused_client_side() -> None:
    http = StubHttp()
    app = PiAuthenticatorApp(http)
    token = app.scan(SPEC_URL, now=1_000_000.0)
    with pytest.raises(AppRejected, match="ttl"):
        app.register(token, key_size=2048, now=1_000_000.0 + 10 * 60 + 1)
    assert http.calls == []


# -- §0/§4 challenges ---------------------------------------------------------------------------
def test_sign_string_matches_the_spec_example() -> None:
    d = {"nonce": NONCE, "url": PUSH_URL, "serial": SERIAL, "question": QUESTION,
         "title": "privacyIDEA", "sslverify": "1"}
    assert challenge_sign_string(d) == (
        "WIC6CLJBJWRRL5ZSCGSHPKVNLPRO5DER|http://127.0.0.1:5002/ttype/push|PIPU0000C0B9|"
        "Do you want to confirm the login?|privacyIDEA|1")


def test_sign_and_verify_round_trip(server_key: rsa.RSAPrivateKey) -> None:
    sig = sign(server_key, "a|b")
    assert re.fullmatch(r"[A-Z2-7]+=*", sig) and len(sig) % 8 == 0
    assert verify(server_key.public_key(), "a|b", sig)
    assert not verify(server_key.public_key(), "a|c", sig)
    with pytest.raises(ValueError):
        verify(server_key.public_key(), "a|b", sig.lower())
    assert len(b32_nonce(bytes(20))) == 32


def test_verify_challenge_accepts_a_server_challenge(rolled: Any, server_key: Any) -> None:
    app, _, token = rolled
    req = app.verify_challenge(token, challenge(server_key))
    assert (req.nonce, req.serial, req.question, req.title, req.url) == (
        NONCE, SERIAL, QUESTION, "privacyIDEA", PUSH_URL)
    assert req.sslverify and req.options is None and req.decline_reason_supported
    assert app.verify_challenge(None, challenge(server_key, caps=False)).capabilities is None


@pytest.mark.parametrize("tamper", [
    {"question": "Something else?"}, {"sslverify": "true"}, {"sslverify": "0"},
    {"serial": "PIPU_UNKNOWN"}, {"nonce": 5}, {"title": None}, {"signature": "!!"},
    {"url": "http://127.0.0.1:notaport/ttype/push"},
])
def test_verify_challenge_rejects(rolled: Any, server_key: Any, tamper: dict[str, Any]) -> None:
    app, _, _ = rolled
    data: dict[str, Any] = challenge(server_key) | tamper
    with pytest.raises(AppRejected):
        app.verify_challenge(None, data)


def test_signed_url_must_be_dart_canonical(rolled: Any, server_key: Any) -> None:
    app, _, token = rolled
    raw = "HTTP://127.0.0.1:80/ttype/push"
    ok = challenge(server_key, url=raw, signed_url="http://127.0.0.1/ttype/push")
    assert app.verify_challenge(token, ok).url == raw
    with pytest.raises(AppRejected):
        app.verify_challenge(token, challenge(server_key, url=raw, signed_url=raw))


def test_capabilities_signature_rules(rolled: Any, server_key: Any) -> None:
    app, _, token = rolled
    good = challenge(server_key)
    forged = good | {"capabilities_signature": sign(server_key, '{"capabilities":{},"nonce":"x"}')}
    with pytest.raises(AppRejected, match="capabilities"):
        app.verify_challenge(token, forged)
    no_sig = {k: v for k, v in good.items() if k != "capabilities_signature"}
    for absent in (no_sig, good | {"capabilities": "{not json"},
                   good | {"capabilities_signature": "not base32"}):
        req = app.verify_challenge(token, absent)
        assert req.capabilities is None and not req.decline_reason_supported


@pytest.mark.parametrize("url,expected", [
    ("HTTP://Example.COM:80/ttype/push", "http://example.com/ttype/push"),
    ("https://PI.example.com:443/ttype/push?a=B#F", "https://pi.example.com/ttype/push?a=B#F"),
    ("https://pi.example.com:8443/ttype/push", "https://pi.example.com:8443/ttype/push"),
    ("http://pi.example.com:443/x", "http://pi.example.com:443/x"),
    ("https://User@[::1]:443/Path", "https://User@[::1]/Path"),
])
def test_dart_uri_to_string(url: str, expected: str) -> None:
    assert dart_uri_to_string(url) == expected


# -- §5 answers ---------------------------------------------------------------------------------
def test_accept_presence_answer(rolled: Any, server_key: Any) -> None:
    app, http, token = rolled
    req = app.verify_challenge(token, challenge(server_key, presence="74,36,86,63"))
    assert req.options == ["74", "36", "86", "63"]
    with pytest.raises(AppRejected):
        app.accept(req)
    with pytest.raises(AppRejected):
        app.accept(req, presence_answer="99")
    http.replies.append(StubResponse(200, {"result": {"status": True, "value": True}}))
    assert app.accept(req, presence_answer="36")["result"]["value"] is True
    ((method, url, form),) = http.calls
    assert (method, url, list(form)) == ("POST", PUSH_URL,
                                         ["serial", "nonce", "signature", "presence_answer"])
    assert verify(app_pub(token), f"{NONCE}|{SERIAL}|36", form["signature"])


@pytest.mark.parametrize("caps,expected_fields,signed", [
    (True, {"decline": "1", "decline_reason": "cancelled"}, f"{NONCE}|{SERIAL}|decline|cancelled"),
    (False, {"decline": "1"}, f"{NONCE}|{SERIAL}|decline"),
])
def test_decline_reason_only_with_verified_capability(
        rolled: Any, server_key: Any, caps: bool, expected_fields: dict[str, str],
        signed: str) -> None:
    app, http, token = rolled
    req = app.verify_challenge(token, challenge(server_key, caps=caps))
    http.replies.append(StubResponse(200, {"result": {"status": True, "value": True}}))
    app.decline(req, reason="cancelled")
    form = http.calls[0][2]
    assert {k: v for k, v in form.items() if k.startswith("decline")} == expected_fields
    assert (form["serial"], form["nonce"]) == (SERIAL, NONCE)
    assert verify(app_pub(token), signed, form["signature"])


def test_request_expires_on_the_phone_after_two_minutes(rolled: Any, server_key: Any) -> None:
    app, _, token = rolled
    req = app.verify_challenge(token, challenge(server_key), now=5000.0)
    with pytest.raises(AppRejected, match="expired"):
        app.accept(req, now=5000.0 + 121)


def test_answer_raw_posts_fields_verbatim(rolled: Any) -> None:
    app, http, _ = rolled
    http.replies.append(StubResponse(200, {"result": {"status": True, "value": False}}))
    assert app.answer_raw(PUSH_URL, {"serial": SERIAL, "signature": "AAAA"})["result"] == {
        "status": True, "value": False}
    assert http.calls == [("POST", PUSH_URL, {"serial": SERIAL, "signature": "AAAA"})]


# -- §6 polling, §7 Firebase-token update -------------------------------------------------------
def test_poll_signs_serial_and_timestamp(rolled: Any, server_key: Any) -> None:
    app, http, token = rolled
    http.replies.append(StubResponse(200, {"result": {"status": True,
                                                      "value": [challenge(server_key)]}}))
    (req,) = app.poll_requests(token)
    assert req.nonce == NONCE
    ((method, url, params),) = http.calls
    assert (method, url, list(params)) == ("GET", PUSH_URL,
                                           ["serial", "timestamp", "signature", "capabilities"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(\d{3})?Z", params["timestamp"])
    assert params["capabilities"] == '["decline_reason"]'
    assert verify(app_pub(token), f"{SERIAL}|{params['timestamp']}", params["signature"])


@pytest.mark.parametrize("status,code", [(400, 10), (403, 303)])
def test_poll_error(rolled: Any, status: int, code: int) -> None:
    app, http, token = rolled
    http.replies.append(StubResponse(status, {"result": {"status": False, "error": {
        "code": code, "message": "nope"}}}))
    with pytest.raises(PollError) as ei:
        app.poll(token, timestamp="2026-11-28T20:25:44.641474Z")
    assert (ei.value.status, ei.value.code, ei.value.message) == (status, code, "nope")


def test_update_firebase_token(rolled: Any) -> None:
    app, http, token = rolled
    http.replies.append(StubResponse(200, {"result": {"status": True, "value": True}}))
    ts = "2026-11-28T20:25:44.641474Z"
    app.update_firebase_token(token, "fcm-new", timestamp=ts)
    form = http.calls[0][2]
    assert list(form) == ["new_fb_token", "serial", "timestamp", "signature", "capabilities"]
    assert verify(app_pub(token), f"fcm-new|{SERIAL}|{ts}", form["signature"])
    assert token.fbtoken == "fcm-new"


def test_dart_utc_iso_and_key_pool() -> None:
    t = datetime(2026, 11, 28, 20, 25, 44, 641474, tzinfo=UTC)
    assert dart_utc_iso(t) == "2026-11-28T20:25:44.641474Z"
    assert dart_utc_iso(t.replace(microsecond=641000)) == "2026-11-28T20:25:44.641Z"
    keys = [pooled_key(1024) for _ in range(5)]
    assert len({id(k) for k in keys}) == 3
