"""When to try a provider call again after a transient error: one rule for every worker.

Exponential back-off with full jitter (a random wait between 0 and ``base · 2^retries``),
at least the provider's own ``Retry-After`` hint, and never more than ``cap``. The cap
must stay below the broker's visibility timeout: on Redis a message whose countdown
outlives it is delivered a second time.
"""

from __future__ import annotations

import random


def retry_countdown(
    retries: int,
    *,
    base: float,
    cap: float,
    visibility_timeout: float,
    hint: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``retries + 1``."""
    ceiling = max(0.0, min(cap, visibility_timeout - 1))
    jittered = (rng or random).uniform(0, min(ceiling, base * 2.0**retries))
    return float(min(ceiling, max(jittered, hint or 0)))
