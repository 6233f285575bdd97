"""Why a step-up cannot be spent on an action: the reasons, most basic first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.core.challenges.step_up import refusal
from services.core.models import Challenge

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FRESH_AFTER = NOW - timedelta(seconds=300)
TOKEN = str(uuid.UUID(int=1))


def step_up(**changes: object) -> Challenge:
    values: dict[str, object] = dict(
        id=uuid.uuid4(), user_id="alice", area="step_up", purpose="delete_token", target=TOKEN,
        state="verified", completed_at=NOW - timedelta(seconds=10), used_at=None,
    )
    values.update(changes)
    return Challenge(**values)


def reason(challenge: Challenge | None, user: str = "alice", purpose: str = "delete_token",
           target: str = TOKEN) -> str:
    return refusal(challenge, user, purpose, target, FRESH_AFTER).code


@pytest.mark.parametrize("challenge, user, expected", [
    (None, "alice", "step_up_not_found"),
    (step_up(), "bob", "step_up_not_found"),
    (step_up(purpose="login", target=None), "alice", "step_up_not_found"),
])
def test_a_missing_or_foreign_step_up_is_not_found(challenge, user, expected):
    assert reason(challenge, user) == expected


def test_another_action_or_target_is_a_mismatch_even_when_used_or_old():
    used_old = step_up(used_at=NOW, completed_at=NOW - timedelta(hours=1))
    assert reason(used_old, purpose="set_area", target="sso") == "step_up_mismatch"
    assert reason(step_up(), target=str(uuid.UUID(int=2))) == "step_up_mismatch"


@pytest.mark.parametrize("changes, expected", [
    ({"used_at": NOW}, "step_up_used"),
    ({"state": "pending", "completed_at": None}, "step_up_not_passed"),
    ({"state": "declined"}, "step_up_not_passed"),
    ({"state": "failed"}, "step_up_not_passed"),
    ({"completed_at": FRESH_AFTER}, "step_up_expired"),
])
def test_each_reason_for_the_right_action(changes, expected):
    assert reason(step_up(**changes)) == expected


def test_an_approved_push_step_up_is_usable_and_a_refusal_after_it_means_a_race():
    # The compare-and-set failed although the read shows nothing wrong: another action won.
    assert reason(step_up(state="approved")) == "step_up_used"
