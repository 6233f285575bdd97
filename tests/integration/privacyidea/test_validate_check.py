"""``/validate/check`` as each plugin calls it: one step, challenge-response, the answer,
what a user without a second factor gets, and the user/realm mapping."""

from __future__ import annotations

import pytest

from tests.pi_plugins import PLUGINS

TWO_STEP = [name for name, p in PLUGINS.items() if p.two_step]


@pytest.mark.parametrize("name", list(PLUGINS))
def test_one_step_with_the_code_is_a_success_for_every_plugin(plugin, totp_user, name):
    reply = plugin(name).check("alice", totp_user())
    assert reply.status == 200
    assert reply.decision == "success"
    assert reply.result == {"status": True, "value": True, "authentication": "ACCEPT"}
    assert reply.detail["message"] == "matching 1 tokens"
    assert reply.detail["type"] == "totp" and reply.detail["otplen"] == 6
    assert reply.detail["serial"].startswith("TOTP")
    assert reply.body["id"] == 2 and reply.body["version"] == "privacyIDEA 3.14"
    assert reply.body["versionnumber"] == "3.14" and isinstance(reply.body["time"], float)


@pytest.mark.parametrize("name", list(PLUGINS))
def test_a_wrong_or_reused_code_is_rejected(plugin, totp_user, clock, name):
    client = plugin(name)
    wrong = f"{(int(totp_user()) + 1) % 10**6:06d}"
    reply = client.check("alice", wrong)
    assert reply.decision == "failure" and reply.result["authentication"] == "REJECT"
    assert reply.result["value"] is False and reply.detail["message"] == "wrong otp value"
    code = totp_user()
    assert client.check("alice", code).decision == "success"
    reused = client.check("alice", code)
    assert reused.decision == "failure" and reused.result["authentication"] == "REJECT"


@pytest.mark.parametrize("name", TWO_STEP)
@pytest.mark.parametrize("first", ["", "the user's password", "static"])
def test_a_pass_that_is_no_code_starts_a_challenge_and_the_code_answers_it(
    plugin, totp_user, clock, name, first
):
    client = plugin(name)
    challenge = client.check("alice", first)
    assert challenge.decision == "challenge"
    assert challenge.result == {"status": True, "value": False, "authentication": "CHALLENGE"}
    tid = challenge.transaction_id
    assert tid is not None and len(tid) == 20 and tid.isdigit()
    [entry] = challenge.detail["multi_challenge"]
    assert entry == {
        "transaction_id": tid,
        "serial": entry["serial"],
        "type": "totp",
        "client_mode": "interactive",
        "message": "please enter otp: ",
    }
    assert all(isinstance(entry[k], str) for k in ("transaction_id", "serial", "type", "message"))
    assert challenge.detail["message"] == "please enter otp: " and challenge.detail["messages"] == [
        "please enter otp: "
    ]
    assert (
        challenge.detail["transaction_ids"] == [tid]
        and challenge.detail["preferred_client_mode"] == "interactive"
    )
    assert challenge.detail["type"] == "totp" and challenge.detail["client_mode"] == "interactive"

    wrong = client.answer("alice", f"{(int(totp_user()) + 1) % 10**6:06d}", tid)
    assert (
        wrong.decision == "failure"
        and wrong.detail["message"] == "Response did not match the challenge."
    )
    accepted = client.answer("alice", totp_user(), tid)  # the challenge stayed usable
    assert (
        accepted.decision == "success" and accepted.detail["message"] == "Found matching challenge"
    )
    clock.advance(30)
    dead = client.answer("alice", totp_user(), tid)  # an answered transaction is dead
    assert dead.decision == "failure"


def test_get_reads_the_query_only(api, totp_user):
    r = api.request(
        "GET",
        "/validate/check",
        content=b"user=alice&pass=123456",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert r.json()["result"]["error"]["code"] == 905
    r = api.get("/validate/check", params={"user": "alice", "pass": totp_user()})
    assert r.status_code == 200 and r.json()["result"]["authentication"] == "ACCEPT"


def test_json_bodies_and_unknown_parameters_are_taken(api, totp_user):
    r = api.post(
        "/validate/check",
        json={
            "user": "alice",
            "pass": totp_user(),
            "client": "10.0.0.1",
            "resConf": "ldap",
            "whatever": 1,
        },
    )
    assert r.status_code == 200 and r.json()["result"]["value"] is True


@pytest.mark.parametrize(
    "setting, expected", [("accept", ("success", True)), ("reject", ("failure", False))]
)
def test_a_user_without_a_second_factor_passes_unless_configured(
    api, ctx, plugin, setting, expected, monkeypatch
):
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(update={"pi_no_token": setting}))
    for user in ("bob", "nobody.ever.seen"):  # without a token, unknown: the same answer
        reply = plugin("keycloak").check(user, "")
        assert (reply.decision, reply.result["value"]) == expected
        assert reply.status == 200


def test_an_unprotected_area_needs_no_second_factor(api, ctx, plugin, totp_user, monkeypatch):
    settings = ctx.settings.model_copy(update={"pi_realms": "admins=portal-security"})
    monkeypatch.setattr(ctx, "settings", settings)
    assert (
        plugin("keycloak").check("alice@admins", "").decision == "success"
    )  # portal-security unprotected
    assert plugin("keycloak").check("alice", "", realm="admins").decision == "success"
    assert plugin("keycloak").check("alice", "").decision == "challenge"  # sso is protected


def test_user_at_realm_is_split_only_for_a_known_realm(api, ctx, plugin, totp_user, monkeypatch):
    monkeypatch.setattr(
        ctx, "settings", ctx.settings.model_copy(update={"pi_realms": "employees=sso"})
    )
    assert plugin("credential-provider").check("alice@employees", totp_user()).decision == "success"
    assert plugin("credential-provider").check("alice@Employees", "").decision == "challenge"
    # not a realm: the whole name is the user id (an unknown user, so no second factor)
    assert plugin("credential-provider").check("alice@example.org", "").result["value"] is True


def test_an_unknown_realm_or_impossible_name_is_privacyideas_904(plugin, totp_user):
    for user, realm in (("alice", "nope"), ("al ice", ""), ("x" * 200, "")):
        reply = plugin("freeradius").check(user, "", realm=realm)
        assert reply.status == 400
        assert reply.result["status"] is False and reply.result["error"]["code"] == 904
        assert (
            reply.body["detail"] is None
            and "value" not in reply.result
            and "versionnumber" not in reply.body
        )


def test_success_names_the_user_without_secrets(plugin, totp_user):
    reply = plugin("simplesamlphp").check("alice", totp_user())
    assert reply.detail["user"] == {
        "username": "alice",
        "userid": "alice",
        "realm": "",
        "resolver": "twofa",
    }
    assert reply.detail["user-realm"] == "" and reply.detail["user-resolver"] == "twofa"
    assert not {"password", "cryptpass"} & set(reply.detail["user"])


def test_cancel_enrollment_without_an_enrollment_is_rejected(plugin, totp_user):
    client = plugin("keycloak")
    tid = client.check("alice", "").transaction_id
    reply = client.answer("alice", "", tid, cancel_enrollment="true")
    assert reply.decision == "failure" and reply.result["authentication"] == "REJECT"


def test_a_transaction_of_another_user_reads_as_a_wrong_answer(
    api, enroll_headers, clock, plugin, totp_user
):
    from tests.integration.helpers import active_totp, totp_code

    _, bob_secret = active_totp(api, enroll_headers, clock, user="bob")
    tid = plugin("keycloak").check("alice", "").transaction_id
    reply = plugin("keycloak").answer("bob", totp_code(bob_secret, clock), tid)
    assert (
        reply.decision == "failure"
        and reply.detail["message"] == "Response did not match the challenge."
    )
    assert plugin("keycloak").answer("alice", totp_user(), tid).decision == "success"
