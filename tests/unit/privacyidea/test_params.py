"""pi-validate.md §7: how a value sent by each plugin reaches twofa, byte for byte."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.api.privacyidea import params
from tests.pi_plugins import PLUGINS, PluginClient

PIN = "p%41 +x"


@pytest.fixture
def echo() -> TestClient:
    app = FastAPI()

    @app.api_route("/echo", methods=["GET", "POST"])
    async def _echo(request: Request) -> dict[str, str]:
        return await params.read(request)

    return TestClient(app)


@pytest.mark.parametrize(
    "name, seen",
    [
        ("simplesamlphp", PIN),
        ("credential-provider", PIN),
        ("ldap-proxy", PIN),
        ("freeradius", PIN),
        ("keycloak", "p%41++x"),
        ("shibboleth", "p%41++x"),
        ("pam", "pA +x"),
        ("adfs", "pA +x"),
        ("pam-python", "pA +x"),
    ],
)
def test_what_each_plugin_sends_is_what_privacyidea_would_see(echo, name, seen):
    client = PluginClient(echo, PLUGINS[name])
    response = client.http.post("/echo", **_request(client, {"pass": PIN}))
    assert response.json()["pass"] == seen


def _request(client: PluginClient, values: dict[str, str]) -> dict:
    from tests.pi_plugins import encode_value

    if client.plugin.encoding == "multipart":
        return {
            "files": {k: (None, v) for k, v in values.items()},
            "headers": {"User-Agent": client.plugin.user_agent},
        }
    body = "&".join(f"{k}={encode_value(v, client.plugin.encoding)}" for k, v in values.items())
    return {
        "content": body.encode(),
        "headers": {
            "User-Agent": client.plugin.user_agent,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    }


@pytest.mark.parametrize(
    "agent, unquotes",
    [
        ("privacyidea-cp/3.8.0 Windows/WS01", False),
        ("PrivacyIDEA-CP", False),
        ("simpleSAMLphp", False),
        ("privacyIDEA-LDAP-Proxy", False),
        ("privacyIDEA-Keycloak/1.8.0 Keycloak/26", True),
        ("FreeRADIUS", True),
        ("", True),
        ("(weird)", True),
        ("Mozilla/5.0 (X11)", True),
    ],
)
def test_the_user_agent_name_decides(agent, unquotes):
    assert params.unquotes(agent) is unquotes


def test_json_values_are_never_unquoted_and_get_ignores_a_body(echo):
    r = echo.post(
        "/echo", json={"pass": "p%41", "n": 5, "b": True}, headers={"User-Agent": "PAM/1.1.0"}
    )
    assert r.json() == {"pass": "p%41", "n": "5", "b": "True"}
    r = echo.request(
        "GET",
        "/echo?user=a",
        content=b"pass=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json() == {"user": "a"}
