"""What ``/validate/check``, ``/validate/triggerchallenge`` and ``/validate/polltransaction``
decide, in twofa's terms.

Every step is a call of the challenge service the native ``/v1/challenges`` routes use
(``create``, ``select_factor``, ``verify``, ``get``), in units of work of the same shape, so
the verification, throttles, back-off, attempts, events and audit entries are theirs.
What is added here is only the mapping:

* ``pass`` is the one-time code alone (twofa has no token PINs: privacyIDEA's
  ``otppin=none``). A pass shaped like a TOTP code, for a user with a TOTP factor, is
  checked as one (one-step login). Any other pass — empty, the user's password sent by a
  two-step plugin, a static string — starts challenge-response, as privacyIDEA's
  ``challenge_response`` policy does.
* Challenge-response sends at most one out-of-band factor per login: a push when the user
  has a PUSH token, else an SMS when the user has no TOTP factor. The TOTP factor is
  offered beside a push; answering it takes the challenge away from the phone.
* A push is a login only after the plugin's *finalize* (an empty pass with the
  transaction id, once the phone said yes), and only once.
* A user with no usable factor for the area (the native ``not_required``, which unknown
  users get too) is accepted or rejected as ``TWOFA_PI_NO_TOKEN`` says
  (privacyIDEA's ``passOnNoToken``); a user with no token at all may instead be asked to
  enroll one (``enrollment``).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.core.challenges import service as challenges
from services.core.errors import DomainError, Throttled
from services.core.models import ChallengeState, Token
from services.core.privacyidea import enrollment, transactions
from services.core.privacyidea.outcome import (
    ACCEPTED_NO_TOKEN,
    CONFIRM_PUSH,
    ENTER_SMS,
    ENTER_TOTP,
    FOUND_CHALLENGE,
    MATCHED_ONE,
    NO_MATCH,
    NO_TOKEN,
    WRONG_OTP,
    Entry,
    Outcome,
    serial_of,
)
from services.core.privacyidea.users import PiUser

if TYPE_CHECKING:
    from services.core.challenges.rules import Factor
    from services.core.plumbing.context import Context

def _looks_like_totp(ctx: Context, passw: str) -> bool:
    return re.fullmatch(rf"[0-9]{{{ctx.settings.totp_digits}}}", passw) is not None


def _no_factor(ctx: Context, user: PiUser) -> Outcome:
    if ctx.settings.pi_no_token == "accept":
        return Outcome(True, ACCEPTED_NO_TOKEN, user=user)
    return Outcome(False, NO_TOKEN)


def _create(
    ctx: Context, correlation: str | None, user: PiUser
) -> tuple[challenges.ChallengeView, str | None]:
    view = challenges.create(ctx, user.user_id, user.area, correlation)
    if view.challenge is None:
        return view, None
    with ctx.uow(correlation) as uow:
        tid = transactions.attach(uow, view.challenge.id)
        uow.commit()
    return view, tid


# -- /validate/check without a transaction id, /validate/triggerchallenge ------------------


def check(
    ctx: Context, correlation: str | None, user: PiUser, passw: str, push_wait: bool = False
) -> Outcome:
    if _looks_like_totp(ctx, passw):
        one_step = _one_step(ctx, correlation, user, passw)
        if one_step is not None:
            return one_step
    try:
        view, tid = _create(ctx, correlation, user)
    except DomainError as exc:  # every factor locked: fail closed, as the native API does
        return Outcome(False, exc.message)
    if view.challenge is None or tid is None:
        if enrollment.wanted(ctx, user):
            return enrollment.begin(ctx, correlation, user)
        return _no_factor(ctx, user)
    return _challenge_response(
        ctx if not push_wait else _without_presence(ctx), correlation, view, tid
    )


def _one_step(ctx: Context, correlation: str | None, user: PiUser, passw: str) -> Outcome | None:
    """A pass shaped like a TOTP code, checked in the one unit of work of the native
    one-request login; None when the user has no TOTP factor (challenge-response then)."""
    try:
        login = challenges.login(ctx, user.user_id, user.area, passw, None, correlation)
    except Throttled as exc:
        return Outcome(False, exc.message)
    except DomainError as exc:  # every factor locked: fail closed, as the native API does
        return Outcome(False, exc.message)
    if login is None:
        return None
    if login.view.challenge is None:
        if enrollment.wanted(ctx, user):
            return enrollment.begin(ctx, correlation, user)
        return _no_factor(ctx, user)
    token = login.token
    assert token is not None
    serial = serial_of(token.id, token.type, token.serial)
    otplen = ctx.settings.totp_digits
    if login.verified:
        return Outcome(True, MATCHED_ONE, serial=serial, type=token.type, otplen=otplen, user=user)
    return Outcome(False, WRONG_OTP, serial=serial, type=token.type, otplen=otplen)


def trigger(ctx: Context, correlation: str | None, user: PiUser) -> Outcome:
    """``value`` is the number of challenges created, 0 for a user without any."""
    try:
        view, tid = _create(ctx, correlation, user)
    except DomainError as exc:
        return Outcome(0, exc.message)
    if view.challenge is None or tid is None:
        return Outcome(0)
    outcome = _challenge_response(ctx, correlation, view, tid)
    outcome.value = len(outcome.entries)
    return outcome


def _first(factors: Any, token_type: str) -> Factor | None:
    return next((f for f in factors if f.type == token_type), None)


def _without_presence(ctx: Context) -> Context:
    """push_wait: the plugin cannot show a number to match, so none is asked (privacyIDEA
    turns presence off for push_wait as well)."""
    return dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"push_presence_options": 0})
    )


def _challenge_response(
    ctx: Context, correlation: str | None, view: challenges.ChallengeView, tid: str
) -> Outcome:
    assert view.challenge is not None
    challenge_id = view.challenge.id
    totp, push, sms = (_first(view.factors, t) for t in ("totp", "push", "sms"))
    entries: list[Entry] = []
    refusal: str | None = None
    sender = push if push is not None else (sms if totp is None else None)
    if sender is not None:
        try:
            selected = challenges.select_factor(ctx, challenge_id, sender.id, correlation)
            serial = _serial(ctx, sender.id, sender.type)
            if sender.type == "push":
                answer = selected.extras.get("presence_answer")
                entries.append(
                    Entry(
                        tid,
                        serial,
                        "push",
                        "poll",
                        CONFIRM_PUSH,
                        {"hideResponseInput": True},
                        answer,
                    )
                )
            else:
                entries.append(Entry(tid, serial, "sms", "interactive", ENTER_SMS))
        except DomainError as exc:  # throttled, blocked after a fraud report, …
            refusal = exc.message
    if totp is not None:
        serial = serial_of(totp.id, "totp", totp.serial)
        entries.insert(0, Entry(tid, serial, "totp", "interactive", ENTER_TOTP))
    if not entries:
        return Outcome(False, refusal or NO_TOKEN)
    return Outcome(False, transaction_id=tid, entries=entries)


# -- /validate/check with a transaction id -------------------------------------------------


def answer(
    ctx: Context, correlation: str | None, user: PiUser, transaction_id: str, passw: str
) -> Outcome:
    """The second step: a code for the challenge, or (empty pass) the push finalize."""
    if enrollment.owns(ctx, transaction_id):
        return enrollment.answer(ctx, correlation, user, transaction_id, passw)
    challenge = _challenge_of(ctx, user, transaction_id)
    if challenge is None:
        return Outcome(False, NO_MATCH)
    if passw == "":
        return _finalize(ctx, correlation, user, transaction_id, challenge)
    if challenges.state_now(ctx, challenge) != ChallengeState.PENDING:
        return Outcome(
            False, NO_MATCH
        )  # answered, failed or expired: privacyIDEA has forgotten it too
    if challenge.token_type in ("sms", "totp"):
        token_id = challenge.token_id
    else:  # none selected, or the push: a typed code is the TOTP factor's
        token_id = _totp_factor_of(ctx, challenge.user_id) or challenge.token_id
    if token_id is None:
        return Outcome(False, NO_MATCH)
    token_type = challenge.token_type if token_id == challenge.token_id else "totp"
    serial = _serial(ctx, token_id, token_type or "totp")
    if challenge.token_type == "push" and token_id != challenge.token_id:
        try:
            # the TOTP answer takes the challenge from the phone
            challenges.select_factor(ctx, challenge.id, token_id, correlation)
        except DomainError:
            return Outcome(False, NO_MATCH, serial=serial, type=token_type)
    return _verify(
        ctx,
        correlation,
        user,
        challenge.id,
        passw,
        token_id if challenge.token_id is None else None,
        serial=serial,
        token_type=token_type or "totp",
    )


def _serial(ctx: Context, token_id: uuid.UUID, token_type: str) -> str:
    with ctx.uow() as uow:
        own = uow.session.scalar(select(Token.serial).where(Token.id == token_id))
    return serial_of(token_id, token_type, own)


def _challenge_of(ctx: Context, user: PiUser, transaction_id: str) -> Any:
    """The transaction's challenge if it belongs to this user and area; else None, so a
    foreign or unknown transaction id reads the same as a wrong answer."""
    challenge_id = challenge_id_for(ctx, transaction_id)
    if challenge_id is None:
        return None
    challenge = challenges.get(ctx, challenge_id)
    if challenge.user_id != user.user_id or challenge.area != user.area:
        return None
    return challenge


def _totp_factor_of(ctx: Context, user_id: str) -> uuid.UUID | None:
    with ctx.uow() as uow:
        return uow.session.scalar(
            select(Token.id)
            .where(Token.user_id == user_id, Token.type == "totp", Token.state == "active")
            .order_by(Token.created_at, Token.id)
            .limit(1)
        )


def _verify(
    ctx: Context,
    correlation: str | None,
    user: PiUser,
    challenge_id: uuid.UUID,
    code: str,
    token_id: uuid.UUID | None,
    *,
    serial: str,
    token_type: str,
) -> Outcome:
    """``challenges.verify`` of an answer to a challenge, told in privacyIDEA's words."""
    try:
        challenges.verify(ctx, challenge_id, code, token_id, correlation)
    except Throttled as exc:
        return Outcome(False, exc.message, serial=serial, type=token_type)
    except DomainError:  # a wrong code; expired, closed, factor gone
        return Outcome(False, NO_MATCH, serial=serial, type=token_type)
    return Outcome(True, FOUND_CHALLENGE, serial=serial, user=user)


def _finalize(
    ctx: Context, correlation: str | None, user: PiUser, transaction_id: str, challenge: Any
) -> Outcome:
    serial = _serial(ctx, challenge.token_id, challenge.token_type) if challenge.token_id else None
    token_type = challenge.token_type if challenge.token_id else None
    if challenge.state != ChallengeState.APPROVED:
        return Outcome(False, NO_MATCH, serial=serial, type=token_type)
    with ctx.uow(correlation) as uow:
        won = transactions.finalize(uow, transaction_id, ctx.clock.now())
        uow.commit()
    if not won:
        return Outcome(False, NO_MATCH, serial=serial, type=token_type)
    return Outcome(True, FOUND_CHALLENGE, serial=serial, user=user)


# -- /validate/polltransaction -------------------------------------------------------------


def poll(ctx: Context, transaction_id: str) -> Outcome:
    """``value`` True while an approved push waits for its finalize; an unknown, open,
    finalized or otherwise closed transaction reads as pending, as in privacyIDEA."""
    if enrollment.owns(ctx, transaction_id):
        return enrollment.poll(ctx, transaction_id)
    with ctx.uow() as uow:
        row = transactions.transaction_of(uow.session, transaction_id)
        challenge = challenges.get(ctx, row.challenge_id) if row is not None else None
        if challenge is None or row is None:
            return Outcome(False, challenge_status="pending")
        state = challenges.state_now(ctx, challenge)
        if state == ChallengeState.APPROVED and row.finalized_at is None:
            return Outcome(True, challenge_status="accept")
        if state == ChallengeState.DECLINED:
            return Outcome(
                False,
                challenge_status="cancelled" if challenge.reason == "cancelled" else "declined",
            )
        return Outcome(False, challenge_status="pending")


def challenge_id_for(ctx: Context, transaction_id: str) -> uuid.UUID | None:
    """For waiters: the challenge to watch."""
    with ctx.uow() as uow:
        return transactions.challenge_id_of(uow.session, transaction_id)
