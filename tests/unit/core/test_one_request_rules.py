"""Which factor a code sent with the login itself is checked against, and the one event of
each outcome: the rules, without a database."""

from __future__ import annotations

import uuid

import pytest

import services.core.bootstrap  # noqa: F401  (registers the factor types)
from services.core.challenges.rules import Protection, code_factor, failed_at_once, verified_at_once
from services.core.errors import Conflict, NotFound
from services.core.factors.base import TokenSnapshot

SMS = TokenSnapshot(id=uuid.UUID(int=1), user_id="alice", type="sms", state="active")
TOTP_OLD = TokenSnapshot(id=uuid.UUID(int=2), user_id="alice", type="totp", state="active")
TOTP_NEW = TokenSnapshot(id=uuid.UUID(int=3), user_id="alice", type="totp", state="active")
PUSH = TokenSnapshot(id=uuid.UUID(int=4), user_id="alice", type="push", state="active")
CHALLENGE = uuid.UUID(int=9)


def test_without_a_name_the_oldest_code_ready_factor_is_checked():
    assert code_factor(Protection(True, [SMS, TOTP_OLD, TOTP_NEW]), None) == TOTP_OLD


def test_without_a_code_ready_factor_the_login_needs_a_challenge():
    assert code_factor(Protection(True, [SMS, PUSH]), None) is None


def test_a_named_factor_is_checked_even_if_not_the_oldest():
    assert code_factor(Protection(True, [TOTP_OLD, TOTP_NEW]), TOTP_NEW.id) == TOTP_NEW


@pytest.mark.parametrize("named, error, code", [
    (SMS.id, Conflict, "select_first"),
    (PUSH.id, Conflict, "select_first"),
    (uuid.UUID(int=77), NotFound, "factor_not_found"),
])
def test_a_named_factor_must_be_the_users_and_code_ready(named, error, code):
    with pytest.raises(error) as caught:
        code_factor(Protection(True, [SMS, TOTP_OLD, PUSH]), named)
    assert caught.value.code == code


def test_only_locked_factors_fail_closed():
    assert Protection(True, [], any_locked=True).fails_closed
    assert not Protection(True, [], any_locked=False).fails_closed
    assert not Protection(True, [TOTP_OLD], any_locked=True).fails_closed


def test_a_right_code_is_one_verified_event():
    event = verified_at_once(CHALLENGE, "sso", TOTP_OLD)
    assert event.TYPE == "challenge.verified"
    assert (event.challenge_id, event.area, event.token_id, event.token_type) == (
        CHALLENGE, "sso", TOTP_OLD.id, "totp")


@pytest.mark.parametrize("max_attempts, reason, left", [(5, "invalid_code", 4), (1, "exhausted", 0)])
def test_a_wrong_code_is_one_failed_event(max_attempts, reason, left):
    [event] = failed_at_once(CHALLENGE, "sso", TOTP_OLD, 2, False, max_attempts)
    assert event.TYPE == "challenge.failed"
    assert (event.reason, event.attempts_left, event.token_id) == (reason, left, TOTP_OLD.id)


def test_the_failure_that_locks_the_token_says_so_too():
    events = failed_at_once(CHALLENGE, "sso", TOTP_OLD, 100, True, 5)
    assert [e.TYPE for e in events] == ["challenge.failed", "token.locked"]
    assert events[1].consecutive_failures == 100
