"""privacyIDEA's ``enroll_via_multichallenge`` (pi-validate.md §5 flow 6) for TOTP: a user
without a token is asked to scan a QR code inside the login and answers with one code;
optional enrollments can be skipped with ``cancel_enrollment``."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from services.core.models import AuditEntry, PiEnrollment, Token
from services.core.plumbing.settings import Settings
from tests.conftest import make_settings
from tests.integration.helpers import active_totp, secret_of, totp_code
from tests.pi_plugins import PLUGINS

TWO_STEP = [name for name, p in PLUGINS.items() if p.two_step]


@pytest.fixture
def enroll_policy() -> dict[str, object]:
    return {"pi_enroll_via_multichallenge": "totp"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, enroll_policy: dict[str, object]) -> Settings:
    return make_settings(tmp_path, database_url, **enroll_policy)


def tokens_of(ctx, user: str = "alice") -> list[Token]:
    with ctx.sessions() as s:
        return list(s.query(Token).filter(Token.user_id == user).order_by(Token.created_at))


@pytest.mark.parametrize("name", TWO_STEP)
def test_a_user_without_a_token_scans_a_qr_code_and_answers_with_one_code(plugin, ctx, clock, publisher, name):
    client = plugin(name)
    reply = client.check("alice", "")
    assert reply.decision == "challenge"
    assert reply.result == {"status": True, "value": False, "authentication": "CHALLENGE"}
    assert reply.detail["enroll_via_multichallenge"] is True
    assert reply.detail["enroll_via_multichallenge_optional"] is False
    assert "preferred_client_mode" not in reply.detail  # privacyIDEA names none here
    (entry,) = reply.detail["multi_challenge"]
    assert entry["type"] == "totp" and entry["client_mode"] == "interactive"
    assert entry["message"] == "Please scan the QR code and enter the OTP value!"
    assert entry["image"].startswith("data:image/png;base64,")
    assert base64.b64decode(entry["image"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert entry["link"].startswith("otpauth://totp/")
    secret = secret_of(entry["link"])

    wrong = client.answer("alice", f"{(int(totp_code(secret, clock)) + 1) % 10**6:06d}", reply.transaction_id)
    assert wrong.decision == "failure" and wrong.detail["message"] == "Response did not match the challenge."
    ok = client.answer("alice", totp_code(secret, clock), reply.transaction_id)
    assert ok.decision == "success" and ok.result["authentication"] == "ACCEPT", ok.body
    (token,) = tokens_of(ctx)
    assert token.state == "active" and token.description == "enrolled at login"
    again = client.answer("alice", totp_code(secret, clock, 1), reply.transaction_id)
    assert again.decision == "failure"  # one login per enrollment

    # from now on the user logs in with the new token like any other
    clock.advance(60)
    assert client.check("alice", totp_code(secret, clock)).decision == "success"
    kinds = [e["type"] for e in publisher.published]
    assert {"enrollment.started", "enrollment.scanned", "enrollment.activated", "enrollment.confirmed"} <= set(kinds)


def test_no_secret_is_in_the_events_or_the_audit_log(plugin, ctx, publisher):
    reply = plugin("keycloak").check("alice", "")
    secret = secret_of(reply.detail["multi_challenge"][0]["link"])
    assert all(secret not in str(e) for e in publisher.published)
    with ctx.sessions() as s:
        assert all(secret not in str(row.data) for row in s.query(AuditEntry))


def test_a_user_with_a_token_is_not_asked_to_enroll(plugin, api, enroll_headers, clock):
    _, secret = active_totp(api, enroll_headers, clock)
    client = plugin("credential-provider")
    reply = client.check("alice", "")
    assert "enroll_via_multichallenge" not in reply.detail
    assert [e["message"] for e in reply.detail["multi_challenge"]] == ["please enter otp: "]
    r = api.put("/v1/users/alice/areas/sso", json={"protected": False, "code": totp_code(secret, clock)},
                headers=enroll_headers)
    assert r.status_code == 200, r.text
    unprotected = client.check("alice", "")  # a token, but not for this area: no new token either
    assert unprotected.decision == "success" and "enroll_via_multichallenge" not in unprotected.detail


def test_a_second_login_replaces_the_unfinished_enrollment(plugin, ctx):
    client = plugin("credential-provider")
    first = client.check("alice", "")
    second = client.check("alice", "")
    assert first.transaction_id != second.transaction_id
    (token,) = tokens_of(ctx)  # the first half-made token is gone
    assert token.state == "scanned"
    with ctx.sessions() as s:
        assert [r.transaction_id for r in s.query(PiEnrollment)] == [second.transaction_id]
    assert client.answer("alice", "123456", first.transaction_id).decision == "failure"


def test_cancel_is_refused_when_the_enrollment_is_required(plugin, ctx):
    client = plugin("credential-provider")
    reply = client.check("alice", "")
    cancelled = client.answer("alice", "", reply.transaction_id, cancel_enrollment="true")
    assert cancelled.decision == "failure"
    assert [t.state for t in tokens_of(ctx)] == ["scanned"]


@pytest.mark.parametrize("enroll_policy", [{"pi_enroll_via_multichallenge": "totp",
                                            "pi_enroll_via_multichallenge_optional": True}])
def test_an_optional_enrollment_can_be_skipped_once(plugin, ctx):
    client = plugin("credential-provider")
    reply = client.check("alice", "")
    assert reply.detail["enroll_via_multichallenge_optional"] is True
    skipped = client.answer("alice", "", reply.transaction_id, cancel_enrollment="true")
    assert skipped.decision == "success" and skipped.result["authentication"] == "ACCEPT"
    assert tokens_of(ctx) == []
    again = client.answer("alice", "", reply.transaction_id, cancel_enrollment="true")
    assert again.decision == "failure"


@pytest.mark.parametrize("enroll_policy", [{"pi_enroll_via_multichallenge": "totp", "pi_no_token": "reject"}])
def test_no_enrollment_where_a_user_without_a_token_is_rejected(plugin, ctx):
    reply = plugin("credential-provider").check("alice", "")
    assert reply.decision == "failure" and tokens_of(ctx) == []


def test_another_users_transaction_is_no_match(plugin, ctx):
    client = plugin("credential-provider")
    reply = client.check("alice", "")
    assert client.answer("bob", "", reply.transaction_id, cancel_enrollment="true").decision == "failure"
    assert client.answer("bob", "123456", reply.transaction_id).decision == "failure"
    assert [t.state for t in tokens_of(ctx)] == ["scanned"]
