"""The back-off policy: free failures, doubling delays, a cap, a lock at the limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.core.plumbing.settings import Settings
from services.core.lockout import ThrottlePolicy, next_backoff, wait_seconds

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
