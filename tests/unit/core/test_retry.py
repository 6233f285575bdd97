"""The one retry rule of the SMS and push workers."""

from __future__ import annotations

import random

from services.core.plumbing.providers.retry import retry_countdown


def test_the_wait_grows_with_full_jitter_and_stops_at_the_cap() -> None:
    rng = random.Random(7)
    waits = [[retry_countdown(n, base=1, cap=60, visibility_timeout=300, rng=rng) for _ in range(200)]
             for n in range(8)]
    for n, sample in enumerate(waits):
        assert all(0 <= w <= min(60, 2**n) for w in sample)
        assert max(sample) > 0.8 * min(60, 2**n)  # the whole range is used, not just its top


def test_a_provider_hint_is_honoured_but_never_past_the_visibility_timeout() -> None:
    assert retry_countdown(0, base=1, cap=60, visibility_timeout=300, hint=25) == 25
    assert retry_countdown(0, base=1, cap=60, visibility_timeout=300, hint=999) == 60
    assert retry_countdown(9, base=1, cap=60, visibility_timeout=10, hint=999) == 9
