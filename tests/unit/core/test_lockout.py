"""The lockout rules: free failures, doubling delays, a cap, a lock only at the ceiling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.core.lockout import (
    ThrottlePolicy,
    UserPolicy,
    _until_params,
    next_backoff,
    token_policy,
    user_policy,
    wait_seconds,
)
from services.core.plumbing.settings import Settings

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def test_delays_grow_after_the_free_failures_and_stop_at_the_cap() -> None:
    p = ThrottlePolicy(free_failures=3, base_seconds=1, max_seconds=60, max_failures=50)
    assert [p.delay_after(n) for n in range(1, 11)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]
    assert p.delay_after(49) == 60


def test_lock_only_at_max_failures() -> None:
    p = ThrottlePolicy(max_failures=10)
    assert not p.should_lock(9)
    assert p.should_lock(10)


def test_next_backoff_and_wait_seconds() -> None:
    p = ThrottlePolicy(free_failures=0, base_seconds=2, max_seconds=60)
    until = next_backoff(p, 1, NOW)
    assert until == NOW + timedelta(seconds=2)
    assert wait_seconds(until, NOW) == 2
    assert wait_seconds(until, NOW + timedelta(seconds=1.5)) == 1
    assert wait_seconds(until, NOW + timedelta(seconds=3)) == 0
    assert next_backoff(ThrottlePolicy(free_failures=3), 1, NOW) is None


def test_settings_refuse_a_cap_above_nist_100() -> None:
    with pytest.raises(ValidationError):
        Settings(max_failures=101)
    assert Settings(max_failures=100).max_failures == 100


def test_defaults_back_off_at_most_15_minutes_and_lock_only_at_the_nist_ceiling() -> None:
    s = Settings(env="test")
    token, user = token_policy(s), user_policy(s)
    assert token.max_failures == 100 and not token.should_lock(99)
    assert max(token.delay_after(n) for n in range(1, 101)) == 900
    assert max(user.delay_after(n) for n in range(1, 1000)) == 900


@pytest.mark.parametrize("policy", [ThrottlePolicy(), ThrottlePolicy(free_failures=0, base_seconds=7, max_seconds=60),
                                    UserPolicy(), UserPolicy(cap=5, max_seconds=64)])
def test_the_sql_schedule_binds_the_wait_of_every_count(policy: ThrottlePolicy | UserPolicy) -> None:
    """The conditional write picks ``b_until_<n>`` for count n, ``b_until_cap`` from the
    cap on, NULL while free: together they give exactly ``delay_after`` for every count."""
    capped = policy.capped_from()
    params = _until_params(policy, NOW)
    for n in range(1, capped + 30):
        expected = policy.delay_after(n)
        bound = params.get(f"b_until_{n}") if n < capped else params["b_until_cap"]
        if expected == 0:
            assert bound is None
        else:
            assert bound == NOW + timedelta(seconds=expected)


def test_a_user_is_never_locked_and_waits_longest_at_the_cap() -> None:
    p = UserPolicy(cap=30, max_seconds=900)
    assert p.delay_after(18) == 0 and p.delay_after(29) == 450 and p.delay_after(30) == 900
    assert p.delay_after(100) == 900
