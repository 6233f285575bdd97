"""PUSH through the privacyIDEA-compatible API (pi-validate.md §5 flow 4): the plugin
triggers, polls ``/validate/polltransaction``, and finalizes with an empty pass; the
emulated privacyIDEA Authenticator answers on ``/ttype/push``."""

from __future__ import annotations

import pytest

from tests.pi_plugins import PLUGINS, client_for

POLLING = [name for name, p in PLUGINS.items() if p.polls]


def push_challenge(world, client, user="alice"):
    reply = client.check(user, "")
    assert reply.decision == "challenge"
    (entry,) = [e for e in reply.detail["multi_challenge"] if e["type"] == "push"]
    return reply, entry


@pytest.mark.parametrize("name", POLLING)
def test_approve_poll_finalize(world, enrolled, name):
    token = enrolled()
    client = client_for(world.api, name)
    reply, entry = push_challenge(world, client)
    tid = reply.transaction_id
    assert entry["client_mode"] == "poll" and entry["attributes"] == {"hideResponseInput": True}
    assert entry["message"] == "Please confirm the authentication on your mobile device!"
    assert entry["serial"] == token.serial and entry["transaction_id"] == tid
    assert reply.detail["preferred_client_mode"] == "poll" and reply.detail["type"] == "push"
    answer = entry["presence_answer"]  # number matching: the login page shows it

    pending = client.poll(tid)
    assert pending.result == {"status": True, "value": False, "authentication": "REJECT"}
    assert pending.detail["challenge_status"] == "pending"
    early = client.answer("alice", "", tid)  # finalizing before the phone said yes: harmless
    assert early.decision == "failure"

    (req,) = world.requests(token)
    assert world.app.accept(req, answer, now=world.now)["result"]["value"] is True
    accepted = client.poll(tid)
    assert accepted.result == {"status": True, "value": True, "authentication": "ACCEPT"}
    assert accepted.detail["challenge_status"] == "accept"
    assert world.api.get(f"/validate/polltransaction/{tid}").json()["result"]["value"] is True

    final = client.answer("alice", "", tid)
    assert final.decision == "success" and final.detail["message"] == "Found matching challenge"
    assert client.answer("alice", "", tid).decision == "failure"  # a second finalize
    assert client.poll(tid).result["value"] is False


@pytest.mark.parametrize(
    "reason, status",
    [(None, "declined"), ("unknown_trigger", "declined"), ("cancelled", "cancelled")],
)
def test_a_declined_push_reads_declined_and_never_finalizes(world, enrolled, reason, status):
    token = enrolled()
    client = client_for(world.api, "keycloak")
    reply, _ = push_challenge(world, client)
    (req,) = world.requests(token)
    world.app.decline(req, reason, now=world.now)
    polled = client.poll(reply.transaction_id)
    assert polled.result == {"status": True, "value": False, "authentication": "DECLINED"}
    assert polled.detail["challenge_status"] == status
    assert client.answer("alice", "", reply.transaction_id).decision == "failure"


def test_a_totp_answer_takes_the_challenge_from_the_phone(world, enrolled):
    from tests.integration.helpers import active_totp, totp_code

    token = enrolled()
    _, secret = active_totp(world.api, world.enroll_headers, world.clock)
    client = client_for(world.api, "credential-provider")
    reply = client.check("alice", "")
    assert [e["type"] for e in reply.detail["multi_challenge"]] == ["totp", "push"]
    assert reply.detail["type"] == "push"  # the last challenge, flat
    assert reply.detail["preferred_client_mode"] == "interactive"
    (req,) = world.requests(token)
    assert (
        client.answer("alice", totp_code(secret, world.clock), reply.transaction_id).decision
        == "success"
    )
    assert (
        world.app.accept(req, reply.detail["multi_challenge"][1]["presence_answer"], now=world.now)[
            "result"
        ]["value"]
        is False
    )
    assert client.poll(reply.transaction_id).result["value"] is False


def test_triggerchallenge_sends_the_push(world, enrolled, ctx):
    from services.core.privacyidea import accounts

    enrolled()
    with ctx.sessions.begin() as session:
        password = accounts.create(session, "keycloak", ctx.clock.now()).password
    client = client_for(world.api, "keycloak")
    jwt = client.auth("keycloak", password).result["value"]["token"]
    reply = client.trigger(jwt, "alice")
    assert reply.result == {"status": True, "value": 1, "authentication": "CHALLENGE"}
    assert reply.detail["multi_challenge"][0]["type"] == "push"


def test_push_wait_answers_once_the_phone_said_yes(world, enrolled, ctx, monkeypatch):
    """push_wait: the one check waits; the phone answers meanwhile (here: the waiter's
    first re-read happens after the app's answer, run from the waiting thread)."""
    import services.api.privacyidea.routes as routes

    token = enrolled()
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(update={"pi_push_wait": 5}))
    real_poll = routes.validate.poll
    answered: list[bool] = []

    def poll_after_the_phone(ctx_, tid):
        if not answered:
            (req,) = world.requests(token)
            assert req.options is None  # no number to match: the RP cannot show one
            answered.append(world.app.accept(req, now=world.now)["result"]["value"])
        return real_poll(ctx_, tid)

    monkeypatch.setattr(routes.validate, "poll", poll_after_the_phone)
    reply = client_for(world.api, "ldap-proxy").check("alice", "")
    assert answered == [True]
    assert reply.decision == "success" and reply.detail.get("transaction_id") is None


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "pi_enroll_via_multichallenge": "push"}])
@pytest.mark.parametrize("name", POLLING)
def test_a_push_token_enrolled_inside_the_login(world, name):
    """enroll_via_multichallenge=push: the QR code is shown in the login, the app registers,
    polltransaction says yes, the finalize logs in once; the next login is an ordinary push."""
    client = client_for(world.api, name)
    reply = client.check("alice", "")
    assert reply.decision == "challenge" and reply.detail["enroll_via_multichallenge"] is True
    (entry,) = reply.detail["multi_challenge"]
    assert entry["type"] == "push" and entry["client_mode"] == "poll"
    assert entry["message"] == "Please scan the QR code!"
    assert entry["image"].startswith("data:image/png;base64,")
    tid = reply.transaction_id

    assert client.poll(tid).result["value"] is False
    assert client.answer("alice", "", tid).decision == "failure"  # nothing registered yet
    token = world.app.scan(entry["link"], now=world.now)
    assert token.serial == entry["serial"]
    world.app.register(token, fbtoken="fcm-1", key_size=2048, now=world.now)
    polled = client.poll(tid)
    assert polled.result["value"] is True and polled.detail["challenge_status"] == "accept"
    final = client.answer("alice", "", tid)
    assert final.decision == "success" and final.result["authentication"] == "ACCEPT"
    assert client.answer("alice", "", tid).decision == "failure"
    assert client.poll(tid).result["value"] is False

    login = client.check("alice", "")
    (push,) = login.detail["multi_challenge"]
    assert push["message"] == "Please confirm the authentication on your mobile device!"
    (req,) = world.requests(token)
    assert world.app.accept(req, push["presence_answer"], now=world.now)["result"]["value"] is True
    assert client.answer("alice", "", login.transaction_id).decision == "success"
