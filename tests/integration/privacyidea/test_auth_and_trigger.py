"""``POST /auth`` for service accounts and ``/validate/triggerchallenge`` with its JWT."""

from __future__ import annotations

import base64
import json

import pytest

from services.core.privacyidea import accounts


def _payload(jwt: str) -> dict:
    segment = jwt.split(".")[1]
    return json.loads(
        base64.b64decode(segment + "=" * (-len(segment) % 4))
    )  # the standard alphabet, as Java


def test_auth_returns_an_admin_jwt_the_java_client_can_read(plugin, service_account):
    username, password = service_account
    for _ in range(40):  # the nonce is random: many tokens, never a URL-safe character
        reply = plugin("keycloak").auth(username, password, realm="employees")
        token = reply.result["value"]["token"]
        assert "-" not in token.split(".")[1] and "_" not in token.split(".")[1]
        assert token.split(".")[1].isascii()
    assert (
        reply.status == 200 and reply.body["id"] == 2 and reply.result["authentication"] == "ACCEPT"
    )
    assert (
        reply.result["value"]["role"] == "admin" and reply.result["value"]["username"] == "keycloak"
    )
    claims = _payload(token)
    assert isinstance(claims["exp"], int) and claims["exp"] > reply.body["time"]
    assert claims["role"] == "admin"


@pytest.mark.parametrize("password", ["wrong", ""])
def test_wrong_credentials_are_4031(plugin, service_account, password):
    reply = plugin("adfs").auth(service_account[0], password)
    assert reply.status == 401 and reply.result["error"]["code"] == 4031


def test_trigger_counts_the_challenges(plugin, service_account, totp_user):
    client = plugin("keycloak")
    jwt = client.auth(*service_account).result["value"]["token"]
    reply = client.trigger(jwt, "alice")
    assert reply.result == {"status": True, "value": 1, "authentication": "CHALLENGE"}
    assert reply.decision == "challenge"
    assert client.answer("alice", totp_user(), reply.transaction_id).decision == "success"


def test_trigger_for_a_user_without_tokens_is_zero(plugin, service_account):
    client = plugin("shibboleth")
    jwt = client.auth(*service_account).result["value"]["token"]
    reply = client.trigger(jwt, "bob")
    assert reply.result == {"status": True, "value": 0, "authentication": "REJECT"}
    assert reply.detail["multi_challenge"] == []


def test_the_jwt_is_read_from_either_header_raw(api, plugin, service_account, totp_user):
    jwt = plugin("keycloak").auth(*service_account).result["value"]["token"]
    for headers in ({"PI-Authorization": jwt}, {"authorization": jwt}, {"Authorization": jwt}):
        r = api.post("/validate/triggerchallenge", data={"user": "alice"}, headers=headers)
        assert r.status_code == 200 and r.json()["result"]["value"] == 1


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, 4033),
        ({"Authorization": "Bearer x.y.z"}, 4304),
        ({"Authorization": "not-a-jwt"}, 4304),
        ({"Authorization": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.AAAA"}, 4304),
    ],
)
def test_without_a_valid_jwt_triggerchallenge_is_401(api, headers, code, totp_user):
    r = api.post("/validate/triggerchallenge", data={"user": "alice"}, headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert (
        body["result"]["status"] is False
        and body["result"]["error"]["code"] == code
        and body["id"] == 1
    )


def test_a_revoked_account_or_expired_jwt_stops_working(
    api, ctx, clock, plugin, service_account, monkeypatch
):
    jwt = plugin("keycloak").auth(*service_account).result["value"]["token"]
    with ctx.sessions.begin() as session:
        assert accounts.revoke(session, service_account[0], ctx.clock.now())
    r = api.post(
        "/validate/triggerchallenge", data={"user": "alice"}, headers={"Authorization": jwt}
    )
    assert r.status_code == 401
    import services.api.privacyidea.routes as routes

    with ctx.sessions.begin() as session:
        password = accounts.create(session, "keycloak", ctx.clock.now()).password
    jwt = plugin("keycloak").auth("keycloak", password).result["value"]["token"]
    later = routes.time.time() + ctx.settings.pi_jwt_seconds + 1
    monkeypatch.setattr(routes.time, "time", lambda: later)
    r = api.post(
        "/validate/triggerchallenge", data={"user": "alice"}, headers={"Authorization": jwt}
    )
    assert r.status_code == 401


def test_the_cli_creates_lists_and_revokes_accounts(ctx, capsys, monkeypatch):
    from services.cli.main import main

    monkeypatch.setenv("TWOFA_DATABASE_URL", ctx.settings.resolved_database_url)
    monkeypatch.setenv("TWOFA_VAR_DIR", str(ctx.settings.var_dir))
    assert main(["pi-account", "create", "--name", "ssp.idp"]) == 0
    password = capsys.readouterr().out.strip().splitlines()[-1]
    with ctx.sessions() as session:
        assert accounts.authenticate(session, "ssp.idp", password)
        stored = session.get(accounts.PiServiceAccount, "ssp.idp").password_hash
    assert password not in stored
    assert main(["pi-account", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "STATE", "CREATED"]
    assert [r.split()[:2] for r in rows] == [["ssp.idp", "active"]]
    assert main(["pi-account", "revoke", "ssp.idp"]) == 0
    with ctx.sessions() as session:
        assert not accounts.authenticate(session, "ssp.idp", password)
    with pytest.raises(SystemExit):
        main(["pi-account", "create", "--name", "bad_name"])
