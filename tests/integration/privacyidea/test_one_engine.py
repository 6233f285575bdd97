"""The privacyIDEA-compatible API is an adapter: the same wrong codes through either API
count, throttle and audit alike, in one audit chain."""

from __future__ import annotations

from services.core.audit.service import record_many_in, verifier_for
from services.core.audit.verify import verify_chain
from services.core.models import AuditEntry, Token, UserProfile
from tests.integration.helpers import active_totp, totp_code
from tests.pi_plugins import client_for

WRONG = 7


def _state(ctx, user):
    with ctx.sessions() as s:
        token = s.query(Token).filter_by(user_id=user).one()
        profile = s.get(UserProfile, user)
        return (
            token.failures,
            token.backoff_until,
            token.state,
            profile.failures,
            profile.backoff_until,
        )


def _event_types(envelopes, user):
    return [e["type"] for e in envelopes if e["user_id"] == user]


def test_failing_through_either_api_is_throttled_alike_and_audited_in_one_chain(
    api, ctx, clock, publisher, enroll_headers, challenge_headers
):
    _, native_secret = active_totp(api, enroll_headers, clock, user="native")
    _, pi_secret = active_totp(api, enroll_headers, clock, user="plugin")
    start = len(publisher.published)
    keycloak = client_for(api, "keycloak")
    native_answers, pi_answers = [], []
    for _ in range(WRONG):
        wrong_native = f"{(int(totp_code(native_secret, clock)) + 1) % 10**6:06d}"
        r = api.post(  # the login in one request: the unit of work /validate/check runs
            "/v1/challenges",
            json={"user_id": "native", "area": "sso", "code": wrong_native},
            headers=challenge_headers,
        )
        native_answers.append(r.status_code)
        wrong_pi = f"{(int(totp_code(pi_secret, clock)) + 1) % 10**6:06d}"
        reply = keycloak.check("plugin", wrong_pi)
        pi_answers.append(
            "throttled" if "try again later" in reply.detail["message"] else reply.detail["message"]
        )
        assert reply.decision == "failure"

    assert _state(ctx, "native") == _state(ctx, "plugin")
    failures, backoff_until, _, _, _ = _state(ctx, "plugin")
    assert failures == ctx.settings.free_failures + 1 and backoff_until is not None
    # the same answers, each in its API's words: a counted wrong code, then the back-off
    assert native_answers == [422] * (failures) + [429] * (WRONG - failures)
    assert pi_answers == ["wrong otp value"] * failures + ["throttled"] * (WRONG - failures)
    # one event per counted wrong code, and nothing at all for a refusal in the back-off
    after = publisher.published[start:]
    assert _event_types(after, "native") == _event_types(after, "plugin")
    assert _event_types(after, "plugin") == ["challenge.failed"] * failures

    record_many_in(ctx, publisher.published)
    with ctx.sessions() as s:
        assert verify_chain(s, verifier_for(ctx)).ok
        users = {e.user_id for e in s.query(AuditEntry).all()}
    assert {"native", "plugin"} <= users
    assert len(publisher.published) > start
