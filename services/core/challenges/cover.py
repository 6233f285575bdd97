"""One answer for several areas: a sign-in that needs two protected areas at once (the
relying service's sign-in and its security settings, say) asks for one factor, not two.

The login challenge that was answered (a code verified or a push approved) covers another
open login challenge of the same user when that one was already open at the moment of the
answer and the answering token is one of its factors. A challenge opened after the answer
is never covered by it, so an answer cannot be replayed into a later sign-in. Each covered
area gets its own ``challenge.covered`` event, so the audit shows every area's outcome.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from services.core.challenges import rules, store
from services.core.errors import Conflict, NotFound
from services.core.models import Challenge, ChallengeState
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import read_only
from shared.events.challenge import ChallengeCovered

if TYPE_CHECKING:
    from services.core.plumbing.context import Context


def cover(
    ctx: Context,
    challenge_id: uuid.UUID,
    answered_id: uuid.UUID,
    correlation_id: str | None = None,
) -> Challenge:
    """Close ``challenge_id`` with the success of ``answered_id``; 409 ``not_covered``
    when the answer cannot stand for it (other user, not a login, not passed, opened after
    the answer, or its token is not a factor of this area)."""
    now = ctx.clock.now()
    with read_only(ctx.engine) as conn:
        target, answer = store.get(conn, challenge_id), store.get(conn, answered_id)
        if target is None or answer is None:
            raise NotFound("no such challenge", code="challenge_not_found")
        rules.refuse_if_closed(target.state, target.expires_at, now)
        _refuse_unless_covered(target, answer)
        factors = store.protected_factors(conn, target.user_id, target.area).tokens
    factor = next((f for f in factors if f.id == answer.token_id), None)
    if factor is None:
        raise Conflict("the answering token is not a factor of this area", code="not_covered")
    with ctx.uow(correlation_id) as uow:
        conn = uow.connection
        if not store.close_covered(conn, target.id, factor.id, factor.type, answer.state, now):
            raise Conflict("the challenge is closed", code="challenge_closed")
        uow.emit(
            ChallengeCovered(
                challenge_id=target.id,
                area=target.area,
                token_id=factor.id,
                token_type=factor.type,
                by_challenge_id=answer.id,
            ),
            user_id=target.user_id,
        )
        uow.commit()
    target.state, target.token_id, target.token_type = answer.state, factor.id, factor.type
    target.completed_at = now
    return target


def _refuse_unless_covered(target: Challenge, answer: Challenge) -> None:
    if answer.id == target.id or answer.user_id != target.user_id:
        raise Conflict("the answer is for another challenge's user", code="not_covered")
    if answer.purpose != "login" or target.purpose != "login":
        raise Conflict("only login challenges cover each other", code="not_covered")
    if answer.state not in ChallengeState.SUCCESS or answer.completed_at is None:
        raise Conflict("that challenge has not been answered", code="not_covered")
    if as_utc(target.created_at) > as_utc(answer.completed_at):
        raise Conflict("the challenge was opened after the answer", code="not_covered")
