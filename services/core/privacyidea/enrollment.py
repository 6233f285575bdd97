"""Enrolling a first token inside a login: privacyIDEA's ``enroll_via_multichallenge``.

With ``TWOFA_PI_ENROLL_VIA_MULTICHALLENGE=totp|push``, a ``/validate/check`` that would be
accepted because the user has no token (``TWOFA_PI_NO_TOKEN=accept``, privacyIDEA's
``passOnNoToken``) answers with a challenge instead: a QR code for a new token. The plugin
answers it like any challenge: TOTP with one code from the app (the code activates the
token), PUSH with the finalize once the app has registered (an empty pass, after
``polltransaction`` said yes). With ``…_OPTIONAL=true`` the user may skip it
(``cancel_enrollment``): the login goes through and the half-made token is deleted.

The token is made by the same use cases as a portal enrollment (same events, audit,
expiry and limits); only the transaction id that names it is kept here.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from services.core.errors import DomainError
from services.core.factors.base import EnrollRequest
from services.core.models import PiEnrollment, Token, TokenState
from services.core.plumbing.db import affected_rows
from services.core.privacyidea import transactions
from services.core.privacyidea.outcome import (
    ENROLL_PUSH,
    ENROLL_TOTP,
    FOUND_CHALLENGE,
    NO_MATCH,
    Entry,
    Outcome,
    serial_of,
)
from services.core.tokens import service as tokens

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.privacyidea.users import PiUser

DESCRIPTION = "enrolled at login"


def wanted(ctx: Context, user: PiUser) -> bool:
    """Whether this login enrolls a token: the policy is on, a user without a token would be
    accepted, and the user has no token that is (or was) a factor."""
    s = ctx.settings
    if not s.pi_enroll_via_multichallenge or s.pi_no_token != "accept":
        return False
    with ctx.sessions() as session:
        factor = session.scalar(
            select(Token.id)
            .where(Token.user_id == user.user_id, Token.state.not_in(TokenState.ENROLLING))
            .limit(1)
        )
    return factor is None


def begin(ctx: Context, correlation: str | None, user: PiUser) -> Outcome:
    kind = ctx.settings.pi_enroll_via_multichallenge
    _drop_unfinished(ctx, user, correlation)
    try:
        started = tokens.start_enrollment(
            ctx, user.user_id, EnrollRequest(type=kind, description=DESCRIPTION), correlation
        )
        token = started.token
        if kind == "totp":  # the QR code is shown now: the scan step is this challenge
            tokens.mark_scanned(ctx, user.user_id, token.id, correlation)
    except DomainError as exc:  # too many tokens, …: no enrollment, and no free pass either
        return Outcome(False, exc.message)
    optional = ctx.settings.pi_enroll_via_multichallenge_optional
    with ctx.uow(correlation) as uow:
        tid = transactions.new_id()
        uow.session.add(
            PiEnrollment(
                transaction_id=tid, token_id=token.id, area=user.area, optional=optional
            )
        )
        uow.commit()
    details = started.details
    entry = Entry(
        tid,
        serial_of(token.id, kind, token.serial),
        kind,
        "interactive" if kind == "totp" else "poll",
        ENROLL_TOTP if kind == "totp" else ENROLL_PUSH,
        image=details["qr_png"],
        link=details["provisioning_uri"] if kind == "totp" else details["enrollment_url"],
    )
    return Outcome(
        False,
        transaction_id=tid,
        entries=[entry],
        enroll="optional" if optional else "required",
    )


def _drop_unfinished(ctx: Context, user: PiUser, correlation: str | None) -> None:
    """An earlier login's enrollment that was never finished makes way for this one, so
    repeated logins do not pile up half-made tokens."""
    with ctx.sessions() as session:
        stale = list(
            session.scalars(
                select(Token.id)
                .join(PiEnrollment, PiEnrollment.token_id == Token.id)
                .where(Token.user_id == user.user_id, Token.state.in_(TokenState.ENROLLING))
            )
        )
    for token_id in stale:
        # Gone meanwhile, or finished meanwhile: either way not in the way.
        with contextlib.suppress(DomainError):
            tokens.delete_token(ctx, user.user_id, token_id, "", correlation_id=correlation)


def _of(ctx: Context, user: PiUser, transaction_id: str) -> tuple[PiEnrollment, Token] | None:
    """The enrollment a transaction id names, if it is this user's (for the same area)."""
    if not transactions.well_formed(transaction_id):
        return None
    with ctx.sessions() as session:
        row = session.get(PiEnrollment, transaction_id)
        token = session.get(Token, row.token_id) if row is not None else None
        if row is None or token is None or token.user_id != user.user_id or row.area != user.area:
            return None
    return row, token


def owns(ctx: Context, transaction_id: str) -> bool:
    if not transactions.well_formed(transaction_id):
        return False
    with ctx.sessions() as session:
        return session.get(PiEnrollment, transaction_id) is not None


def answer(
    ctx: Context, correlation: str | None, user: PiUser, transaction_id: str, passw: str
) -> Outcome:
    """A code (TOTP) or the finalize (PUSH, empty pass); either is a login once."""
    found = _of(ctx, user, transaction_id)
    if found is None:
        return Outcome(False, NO_MATCH)
    row, token = found
    serial = serial_of(token.id, token.type, token.serial)
    if row.finalized_at is not None:
        return Outcome(False, NO_MATCH, serial=serial, type=token.type)
    if token.type == "totp" and passw:
        try:
            tokens.activate(ctx, user.user_id, token.id, passw, correlation, confirm=True)
        except DomainError:  # wrong code (counted on the token), expired, …
            return Outcome(False, NO_MATCH, serial=serial, type=token.type)
    elif token.type != "push" or passw or token.state != TokenState.ACTIVE:
        return Outcome(False, NO_MATCH, serial=serial, type=token.type)
    if not _finalize(ctx, transaction_id, correlation):
        return Outcome(False, NO_MATCH, serial=serial, type=token.type)
    return Outcome(True, FOUND_CHALLENGE, serial=serial, user=user)


def cancel(ctx: Context, correlation: str | None, user: PiUser, transaction_id: str) -> Outcome:
    """Skip an optional enrollment: the login goes through once, the token is deleted."""
    found = _of(ctx, user, transaction_id)
    if found is None:
        return Outcome(False, NO_MATCH)
    row, token = found
    if not row.optional or token.state not in TokenState.ENROLLING:
        return Outcome(False, NO_MATCH)
    if not _finalize(ctx, transaction_id, correlation):
        return Outcome(False, NO_MATCH)
    tokens.delete_token(ctx, user.user_id, token.id, "", correlation_id=correlation)
    return Outcome(True, user=user)


def poll(ctx: Context, transaction_id: str) -> Outcome:
    """True once the app has registered the PUSH token and until the plugin finalizes."""
    with ctx.sessions() as session:
        row = session.get(PiEnrollment, transaction_id)
        token = session.get(Token, row.token_id) if row is not None else None
        ready = (
            row is not None
            and token is not None
            and row.finalized_at is None
            and token.state == TokenState.ACTIVE
        )
    return Outcome(True, challenge_status="accept") if ready else Outcome(
        False, challenge_status="pending"
    )


def _finalize(ctx: Context, transaction_id: str, correlation: str | None) -> bool:
    """Compare-and-set: of two answers racing for one enrollment, one logs in."""
    with ctx.uow(correlation) as uow:
        won = affected_rows(
            uow.session,
            update(PiEnrollment)
            .where(
                PiEnrollment.transaction_id == transaction_id,
                PiEnrollment.finalized_at.is_(None),
            )
            .values(finalized_at=ctx.clock.now())
            .execution_options(synchronize_session=False),
        )
        uow.commit()
    return won == 1
