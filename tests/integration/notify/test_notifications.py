"""Users are told about changes to their factors on another channel: e-mail through a real
SMTP server, or SMS to another active SMS token; never a code or a secret."""

from __future__ import annotations

import uuid

import pytest

from services.core.models import Token, TokenState
from services.core.notify import service
from services.core.notify.mailer import ConsoleMailer, SmtpMailer
from shared.registry import new_event
from tests.contract.examples import example
from tests.conftest import make_settings
from tests.integration.helpers import active_totp, totp_code
from tests.integration.notify.conftest import RecordingSms, events


def set_contact(api, headers, email, user="alice", **extra):
    return api.put(f"/v1/users/{user}/contact", json={"email": email, **extra}, headers=headers)


def envelope_of(type_, clock, user="alice", **changes):
    data = example(type_)
    if changes:
        data = data.model_copy(update=changes)
    return new_event(data, user_id=user, correlation_id="c-1", occurred_at=clock.now()).model_dump(mode="json")


def sms_token(ctx, user="alice", phone="+4915112345678") -> uuid.UUID:
    with ctx.sessions.begin() as session:
        token = Token(id=uuid.uuid4(), user_id=user, type="sms", description="mobile", state=TokenState.ACTIVE,
                      phone_enc=ctx.keyring.encrypt(phone), phone_masked="+49**********78",
                      created_at=ctx.clock.now(), activated_at=ctx.clock.now(), failures=0, drift=0)
        session.add(token)
        return token.id


def test_a_new_factor_and_its_removal_are_mailed_without_any_secret(api, ctx, enroll_headers, clock, smtp,
                                                                     run_notify, publisher):
    assert set_contact(api, enroll_headers, "Alice@Example.ORG").json()["email"] == "Alice@example.org"
    token_id, secret = active_totp(api, enroll_headers, clock)
    assert run_notify() == ["sent:email"]
    (mail,) = smtp.received
    assert mail.rcpt_tos == ["Alice@example.org"]
    assert mail.message["From"] == "security@twofa.example"
    assert "A new sign-in factor (authenticator app) was added" in mail.message["Subject"]
    assert secret not in mail.raw and token_id not in mail.raw
    r = api.request("DELETE", f"/v1/users/alice/tokens/{token_id}", json={"code": totp_code(secret, clock)},
                    headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert run_notify() == ["sent:email"]
    assert "was removed from your account" in smtp.received[1].message["Subject"]
    sent = events(publisher, "notification.sent")
    assert [e["data"]["channel"] for e in sent] == ["email", "email"]
    assert all("Alice@example.org" not in str(e) for e in publisher.published)


@pytest.mark.parametrize("type_,words", [("token.locked", "was locked"), ("recovery.used", "recovery token was used"),
                                         ("push.fraud_reported", "did not start")])
def test_locks_recovery_and_fraud_reports_are_mailed(api, ctx, enroll_headers, clock, smtp, type_, words):
    set_contact(api, enroll_headers, "alice@example.org")
    outcome = service.notify(ctx, envelope_of(type_, clock), service.Channels(SmtpMailer(ctx.settings), RecordingSms))
    assert outcome == "sent:email"
    assert words in smtp.received[0].message["Subject"]


def test_without_an_address_another_sms_token_is_told_never_the_changed_one(ctx, clock, smtp):
    locked = sms_token(ctx, phone="+4915100000001")
    sms_token(ctx, phone="+4915100000002")
    sms = RecordingSms()
    channels = service.Channels(SmtpMailer(ctx.settings), lambda: sms)
    outcome = service.notify(ctx, envelope_of("token.locked", clock, token_id=locked, token_type="sms"), channels)
    assert outcome == "sent:sms"
    assert [to for to, _ in sms.sent] == ["+4915100000002"]
    assert "was locked" in sms.sent[0][1]
    assert smtp.received == []


def test_with_no_other_channel_the_failure_is_an_event(ctx, clock, publisher):
    only = sms_token(ctx)
    sms = RecordingSms()
    outcome = service.notify(ctx, envelope_of("token.locked", clock, token_id=only, token_type="sms"),
                             service.Channels(SmtpMailer(ctx.settings), lambda: sms))
    assert outcome == "no_channel" and sms.sent == []
    (failed,) = events(publisher, "notification.failed")
    assert failed["data"]["reason"] == "no_channel" and failed["user_id"] == "alice"


def test_a_redelivered_event_is_told_once_and_a_flood_is_throttled(api, ctx, enroll_headers, clock, smtp,
                                                                   publisher, settings):
    set_contact(api, enroll_headers, "alice@example.org")
    channels = service.Channels(SmtpMailer(ctx.settings), RecordingSms)
    first = envelope_of("token.locked", clock)
    assert service.notify(ctx, first, channels) == "sent:email"
    assert service.notify(ctx, first, channels) == "duplicate"
    outcomes = [service.notify(ctx, envelope_of("token.locked", clock), channels) for _ in range(3)]
    assert outcomes == ["sent:email", "sent:email", "throttled"]  # notify_max_per_hour=3
    assert len(smtp.received) == settings.notify_max_per_hour
    clock.advance(3601)
    assert service.notify(ctx, envelope_of("token.locked", clock), channels) == "sent:email"


def test_a_refused_address_is_recorded_as_failed(api, ctx, enroll_headers, clock, smtp, run_notify, publisher):
    set_contact(api, enroll_headers, "bounce@example.org")
    publisher.published.append(envelope_of("token.locked", clock))
    assert run_notify() == ["failed"]
    (failed,) = events(publisher, "notification.failed")
    assert failed["data"]["reason"] == "provider_error" and "550" in failed["data"]["detail"]


def test_events_nobody_is_told_about_are_ignored(ctx, clock):
    channels = service.Channels(SmtpMailer(ctx.settings), RecordingSms)
    assert service.notify(ctx, envelope_of("challenge.verified", clock), channels) == "ignored"
    expired = envelope_of("token.deleted", clock, reason="enrollment_expired")
    assert service.notify(ctx, expired, channels) == "ignored"


def test_the_console_mailer_writes_the_dev_mail_log(tmp_path, database_url, ctx, api, enroll_headers, clock):
    set_contact(api, enroll_headers, "alice@example.org")
    console = ConsoleMailer(make_settings(tmp_path, database_url))
    assert service.notify(ctx, envelope_of("recovery.used", clock), service.Channels(console, RecordingSms)) \
        == "sent:email"
    text = console.path.read_text()
    assert console.path.name == "mail.log" and console.path.parent.name == "outbox"
    assert "To: alice@example.org" in text and "recovery token was used" in text


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "a@@example.org", "a b@example.org",
                                   "alice@example..org", "alice@-example.org", "x" * 65 + "@example.org",
                                   "alice@example.org\r\nBcc: eve@example.org", ""])
def test_a_malformed_address_is_refused_and_changes_nothing(api, enroll_headers, email):
    set_contact(api, enroll_headers, "alice@example.org")
    r = set_contact(api, enroll_headers, email)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_email")
    assert api.get("/v1/users/alice/contact", headers=enroll_headers).json()["email"] == "alice@example.org"


def test_changing_the_address_needs_a_step_up_once_the_user_has_a_factor(api, enroll_headers, clock):
    token_id, secret = active_totp(api, enroll_headers, clock)
    r = set_contact(api, enroll_headers, "mallory@example.org")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "step_up_required")
    assert api.get("/v1/users/alice/contact", headers=enroll_headers).json()["email"] is None
    r = set_contact(api, enroll_headers, "alice@example.org", code=totp_code(secret, clock))
    assert r.status_code == 200 and r.json()["email"] == "alice@example.org"
    clock.advance(30)
    r = set_contact(api, enroll_headers, None, code=totp_code(secret, clock))
    assert r.status_code == 200 and r.json()["email"] is None
