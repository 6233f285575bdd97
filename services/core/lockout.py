"""Growing back-off after consecutive failures, rather than a lock a stranger can trigger.

The first ``free_failures`` failures cost nothing; after that each failure doubles
the wait, up to ``backoff_max_seconds``. At ``max_failures`` (at most 100, NIST SP
800-63B 5.2.2) the token is locked. A success resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.core.plumbing.clock import as_utc


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    base_seconds: float = 1.0
    max_seconds: float = 300.0
    max_failures: int = 50

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.max_seconds, self.base_seconds * 2.0 ** (over - 1))

    def should_lock(self, failures: int) -> bool:
        return failures >= self.max_failures


def wait_seconds(backoff_until: datetime | None, now: datetime) -> int:
    """Whole seconds left before another attempt is allowed (0 if none)."""
    if backoff_until is None:
        return 0
    left = (as_utc(backoff_until) - now).total_seconds()
    return max(0, int(left + 0.999))


def next_backoff(policy: ThrottlePolicy, failures: int, now: datetime) -> datetime | None:
    delay = policy.delay_after(failures)
    return now + timedelta(seconds=delay) if delay > 0 else None
