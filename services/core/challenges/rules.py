"""The rules of a challenge, without a database: what a read of it allows (the refusals,
in their order), what a wrong answer costs, and the events of each outcome.

The store decides nothing: it writes what these rules decided, each write a
compare-and-set against the state they were decided from.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from services.core.errors import Conflict, Gone, NotFound
from services.core.factors.base import TokenSnapshot, factor_for
from services.core.models import ChallengeState, TokenState
from services.core.plumbing.clock import as_utc
from shared.envelope import EventData
from shared.events.challenge import (
    ChallengeApproved,
    ChallengeCreated,
    ChallengeDeclined,
    ChallengeExpired,
    ChallengeFactorSelected,
    ChallengeFailed,
    ChallengePurpose,
    ChallengeVerified,
    FactorRef,
)
from shared.events.token import TokenLocked, TokenVerificationFailed
from shared.types import TokenType

EXHAUSTED: Final = "exhausted"
INVALID_CODE: Final = "invalid_code"
UNDELIVERABLE: Final = "undeliverable"
DeclineReason = Literal["declined", "cancelled", "unknown_trigger"]


@dataclass(frozen=True)
class Factor:
    """A usable factor as a challenge lists it."""

    id: uuid.UUID
    type: TokenType
    description: str
    serial: str | None = None  # imported tokens keep the serial their old server gave them


@dataclass(frozen=True)
class ChallengeSnapshot:
    """A challenge as read, with the factor a request names (or the selected one) and the
    user's failure state."""

    id: uuid.UUID
    user_id: str
    area: str
    state: str
    token_id: uuid.UUID | None  # the selected factor
    token_type: TokenType | None
    attempts: int
    max_attempts: int
    expires_at: datetime
    token: TokenSnapshot | None  # None: no such token
    user_backoff_until: datetime | None = None
    user_failures: int = 0
    purpose: str = "login"


@dataclass(frozen=True)
class Protection:
    """What a user's protection of an area allows, as read: the usable factors (oldest
    first), whether a locked one exists, and the user's failure state."""

    protected: bool
    tokens: Sequence[TokenSnapshot] = ()
    any_locked: bool = False
    user_backoff_until: datetime | None = None
    user_failures: int = 0

    @property
    def factors(self) -> list[Factor]:
        return [Factor(t.id, t.type, t.description, t.serial) for t in self.tokens]

    @property
    def fails_closed(self) -> bool:
        """Locking every factor (by guessing) must not switch the second factor off."""
        return self.protected and not self.tokens and self.any_locked


def code_factor(protection: Protection, token_id: uuid.UUID | None) -> TokenSnapshot | None:
    """The factor a code sent with the login itself is checked against: the one named, or
    else the oldest whose code exists before a challenge (TOTP). None: no such factor,
    the login needs a challenge first."""
    if token_id is None:
        return next((t for t in protection.tokens if factor_for(t.type).code_ready), None)
    token = next((t for t in protection.tokens if t.id == token_id), None)
    if token is None:
        raise NotFound("that factor is not available for this challenge", code="factor_not_found")
    if not factor_for(token.type).code_ready:
        raise Conflict("select this factor first; selecting it sends the code", code="select_first")
    return token


def effective_state(state: str, expires_at: datetime, now: datetime) -> str:
    """The state as of now: a pending challenge past its expiry is expired already."""
    if state == ChallengeState.PENDING and as_utc(expires_at) <= now:
        return ChallengeState.EXPIRED
    return state


def refuse_if_closed(state: str, expires_at: datetime, now: datetime) -> None:
    state = effective_state(state, expires_at, now)
    if state == ChallengeState.EXPIRED:
        raise Gone("the challenge has expired", code="challenge_expired")
    if state != ChallengeState.PENDING:
        raise Conflict(f"the challenge is {state}", code="challenge_closed")


def refuse_selection(snap: ChallengeSnapshot | None, now: datetime) -> ChallengeSnapshot:
    """Selecting a factor: the challenge must be open and the factor one of its user's
    active tokens."""
    if snap is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    refuse_if_closed(snap.state, snap.expires_at, now)
    token = snap.token
    if token is None or token.user_id != snap.user_id or token.state != TokenState.ACTIVE:
        raise NotFound("that factor is not available for this challenge", code="factor_not_found")
    return snap


def refuse_code(
    snap: ChallengeSnapshot | None, token_id: uuid.UUID | None, now: datetime
) -> TokenSnapshot:
    """Verifying a code, in this order: the challenge exists and is open; a factor named
    in the request is available (and may be selected by the verify itself only if its
    code exists before selection), or is the one selected; some factor is selected; it
    is still usable and answers with codes. Returns the factor to check."""
    if snap is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    refuse_if_closed(snap.state, snap.expires_at, now)
    token = snap.token
    if token_id is not None and snap.token_id is None:
        same_user = token is not None and token.user_id == snap.user_id
        if same_user and token is not None and not factor_for(token.type).code_ready:
            raise Conflict(
                "select this factor first; selecting it sends the code", code="select_first"
            )
        if not same_user or token is None or token.state != TokenState.ACTIVE:
            raise NotFound(
                "that factor is not available for this challenge", code="factor_not_found"
            )
    elif token_id is not None and snap.token_id != token_id:
        raise Conflict("another factor is selected for this challenge", code="factor_mismatch")
    if snap.token_id is None and token_id is None:
        raise Conflict("select a factor first", code="no_factor_selected")
    if token is None or token.state != TokenState.ACTIVE:
        raise Conflict("the selected factor is no longer usable", code="factor_unusable")
    if not factor_for(token.type).takes_codes:
        raise Conflict(
            "this factor is answered on its device, not with a code", code="not_a_code_factor"
        )
    return token


def attempts_left(attempts: int, max_attempts: int) -> int:
    return max(0, max_attempts - attempts)


def exhausted(attempts: int, max_attempts: int) -> bool:
    """Whether counting one more wrong answer after ``attempts`` ends the challenge (the
    store's compare-and-set applies the same rule in SQL)."""
    return attempts + 1 >= max_attempts


# -- the events of each outcome ------------------------------------------------------------


def created(
    challenge_id: uuid.UUID,
    area: str,
    factors: Sequence[Factor],
    purpose: ChallengePurpose,
    target: str | None = None,
) -> EventData:
    return ChallengeCreated(
        challenge_id=challenge_id,
        area=area,
        factors=[FactorRef(token_id=f.id, token_type=f.type) for f in factors],
        purpose=purpose,
        target=target,
    )


def selected(challenge_id: uuid.UUID, token: TokenSnapshot) -> EventData:
    return ChallengeFactorSelected(
        challenge_id=challenge_id, token_id=token.id, token_type=token.type
    )


def verified(snap: ChallengeSnapshot, token: TokenSnapshot, *, selecting: bool) -> list[EventData]:
    events: list[EventData] = [selected(snap.id, token)] if selecting else []
    events.append(
        ChallengeVerified(
            challenge_id=snap.id, area=snap.area, token_id=token.id, token_type=token.type
        )
    )
    return events


def verified_at_once(challenge_id: uuid.UUID, area: str, token: TokenSnapshot) -> EventData:
    """A login whose code came with it: the one event says who (the envelope), which
    area, which factor and the outcome."""
    return ChallengeVerified(
        challenge_id=challenge_id, area=area, token_id=token.id, token_type=token.type
    )


def failed_at_once(
    challenge_id: uuid.UUID,
    area: str,
    token: TokenSnapshot,
    token_failures: int,
    locked_now: bool,
    max_attempts: int,
) -> list[EventData]:
    """A login whose code came with it and was wrong: the challenge's failed attempt, and
    the token's lock the once this failure reaches it (notifications hang on that)."""
    events = [attempt_failed(challenge_id, area, token.id, token.type, 1, max_attempts)]
    if locked_now:
        events.append(
            TokenLocked(
                token_id=token.id, token_type=token.type, consecutive_failures=token_failures
            )
        )
    return events


def code_failed(
    snap: ChallengeSnapshot,
    token: TokenSnapshot,
    *,
    selecting: bool,
    purpose: str,
    token_failures: int,
    backoff_seconds: int,
    locked_now: bool,
    attempts: int,
    max_attempts: int,
) -> list[EventData]:
    """A wrong code: the factor's failure (and lock, the once it happens) and the
    challenge's failed attempt."""
    events: list[EventData] = [selected(snap.id, token)] if selecting else []
    events += token_failed(
        token,
        purpose=purpose,
        failures=token_failures,
        backoff_seconds=backoff_seconds,
        locked_now=locked_now,
    )
    events.append(attempt_failed(snap.id, snap.area, token.id, token.type, attempts, max_attempts))
    return events


def token_failed(
    token: TokenSnapshot, *, purpose: str, failures: int, backoff_seconds: int, locked_now: bool
) -> list[EventData]:
    events: list[EventData] = [
        TokenVerificationFailed(
            token_id=token.id,
            token_type=token.type,
            purpose=purpose,  # type: ignore[arg-type]
            consecutive_failures=failures,
            backoff_seconds=backoff_seconds,
        )
    ]
    if locked_now:
        events.append(
            TokenLocked(token_id=token.id, token_type=token.type, consecutive_failures=failures)
        )
    return events


def attempt_failed(
    challenge_id: uuid.UUID,
    area: str,
    token_id: uuid.UUID,
    token_type: TokenType,
    attempts: int,
    max_attempts: int,
) -> EventData:
    left = attempts_left(attempts, max_attempts)
    return ChallengeFailed(
        challenge_id=challenge_id,
        area=area,
        token_id=token_id,
        token_type=token_type,
        reason=EXHAUSTED if left == 0 else INVALID_CODE,
        attempts_left=left,
    )


def undeliverable(
    challenge_id: uuid.UUID,
    area: str,
    token_id: uuid.UUID | None,
    token_type: TokenType,
    attempts: int,
    max_attempts: int,
) -> EventData:
    return ChallengeFailed(
        challenge_id=challenge_id,
        area=area,
        token_id=token_id,
        token_type=token_type,
        reason=UNDELIVERABLE,
        attempts_left=attempts_left(attempts, max_attempts),
    )


def approved(challenge_id: uuid.UUID, area: str, token_id: uuid.UUID) -> EventData:
    return ChallengeApproved(
        challenge_id=challenge_id, area=area, token_id=token_id, token_type="push"
    )


def declined(
    challenge_id: uuid.UUID, area: str, token_id: uuid.UUID, reason: DeclineReason
) -> EventData:
    return ChallengeDeclined(
        challenge_id=challenge_id, area=area, token_id=token_id, token_type="push", reason=reason
    )


def expired(challenge_id: uuid.UUID, area: str) -> EventData:
    return ChallengeExpired(challenge_id=challenge_id, area=area)
