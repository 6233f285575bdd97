"""PiAuthenticatorApp over the two transports tests inject: httpx.Client and FastAPI TestClient.

A throw-away push endpoint stands in for our server; it only echoes what a real one would need.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tests.fakes._http import FakeHTTPServer, RecordedRequest, Reply
from tests.fakes.pi_app import PiAuthenticatorApp
from tests.fakes.pi_crypto import pkcs1_b64, verify
from tests.unit.fakes.test_pi_app import SERIAL, SPEC_URL, challenge, enrolled


@pytest.fixture(scope="module")
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class EchoPush(FakeHTTPServer):
    """POST → enrollment success; GET → one signed challenge."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        super().__init__()
        self.key = key

    def handle(self, req: RecordedRequest) -> Reply:
        if req.method == "POST":
            return Reply(200, enrolled(pkcs1_b64(self.key.public_key())).body)
        return Reply(200, {"result": {"status": True, "value": [challenge(self.key)]}})


def _flow(app: PiAuthenticatorApp, push_url: str) -> tuple[Any, Any]:
    token = app.scan(SPEC_URL.replace("http%3A//127.0.0.1%3A5002/ttype/push", push_url))
    app.register(token, key_size=2048)
    (req,) = app.poll_requests(token)
    assert token.private_key is not None
    return req, token.private_key.public_key()


def test_over_real_http_with_httpx(server_key: rsa.RSAPrivateKey) -> None:
    with EchoPush(server_key) as fake, httpx.Client(timeout=5) as client:
        req, app_key = _flow(PiAuthenticatorApp(client), f"{fake.url}/ttype/push")
        post, get = fake.requests
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert post.form["serial"] == SERIAL and post.form["capabilities"] == '["decline_reason"]'
    assert get.path == "/ttype/push"
    assert verify(app_key, f"{SERIAL}|{get.query['timestamp']}", get.query["signature"])
    assert req.serial == SERIAL


@pytest.fixture
def asgi(server_key: rsa.RSAPrivateKey) -> Iterator[tuple[TestClient, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    api = FastAPI()

    @api.post("/ttype/push")
    async def post(request: Request) -> dict[str, Any]:
        seen.append({k: str(v) for k, v in (await request.form()).items()})
        body: dict[str, Any] = enrolled(pkcs1_b64(server_key.public_key())).body
        return body

    @api.get("/ttype/push")
    async def get(request: Request) -> dict[str, Any]:
        seen.append(dict(request.query_params))
        return {"result": {"status": True, "value": [challenge(server_key)]}}

    with TestClient(api) as client:
        yield client, seen


def test_through_fastapi_testclient(asgi: tuple[TestClient, list[dict[str, str]]]) -> None:
    client, seen = asgi
    req, app_key = _flow(PiAuthenticatorApp(client), "http://testserver/ttype/push")
    form, query = seen
    assert list(form) == ["enrollment_credential", "serial", "fbtoken", "pubkey", "capabilities"]
    assert verify(app_key, f"{SERIAL}|{query['timestamp']}", query["signature"])
    assert req.url == "http://127.0.0.1:5002/ttype/push"
