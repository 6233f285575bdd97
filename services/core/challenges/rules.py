"""Rules of a challenge that need no database: its state as of now, and which factors
can be verified without being selected first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.models import Challenge, ChallengeState
from services.core.plumbing.clock import as_utc

if TYPE_CHECKING:
    from services.core.plumbing.context import Context


# Factors whose code exists before selection (the app shows it), so a login service may
# select and verify in one request: ``verify`` with ``token_id``. SMS and PUSH must be
# selected first, because selecting them is what sends the code or the notification.
CODE_READY_TYPES = frozenset({"totp"})


def effective_state(ctx: Context, challenge: Challenge) -> str:
    """The state as of now: a pending challenge past its expiry is expired already."""
    if challenge.state == ChallengeState.PENDING and as_utc(challenge.expires_at) <= ctx.clock.now():
        return ChallengeState.EXPIRED
    return challenge.state
