"""The recovery token: one reset of 2FA when every other factor is lost.

Contract:

* Issued when the user's first token becomes active (and again at the next first
  token after a reset, replacing any older one): 128 bits from ``secrets``, shown
  as 32 upper-case hex digits in 8 groups of 4 (``1A2B-…``). Hex has no letters
  that look like digits, and the groups make it easy to copy by hand.
* Stored as SHA-256 of the canonical form (enough for 128 random bits: there is
  nothing to brute-force offline) and compared in constant time. Its ciphertext is
  kept only until the one download, which deletes it in the same transaction.
* Redeeming it removes all the user's tokens and clears the hash, so it never
  works again. Wrong guesses are counted per user with a growing back-off.
* The token itself never appears in an event or a log line.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from services.core.errors import Gone, InvalidCode, NotFound, Throttled
from services.core.lockout import ThrottlePolicy, next_backoff, wait_seconds
from services.core.models import Token, UserProfile
from services.core.plumbing.crypto import constant_time_equal, sha256_hex
from services.core.plumbing.db import affected_rows
from services.core.tokens.lifecycle import on_first_activation
from shared.events.recovery import (
    RecoveryFailed,
    RecoveryFailureReason,
    RecoveryIssued,
    RecoveryUsed,
)
from shared.events.token import TokenDeleted

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

TOKEN_BYTES = 16  # 128 bits
GROUP = 4
_SEPARATORS = re.compile(r"[\s\-_]")
_CANONICAL = re.compile(r"^[0-9A-F]{32}$")


@dataclass(frozen=True)
class Download:
    filename: str
    text: str


def generate() -> str:
    """A new recovery token in its display form."""
    raw = secrets.token_bytes(TOKEN_BYTES).hex().upper()
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def canonical(supplied: str) -> str:
    """Separators and case do not matter: ``1a2b 3c4d…`` equals ``1A2B-3C4D-…``."""
    return _SEPARATORS.sub("", supplied).upper()


def _hash(supplied: str) -> str:
    return sha256_hex(canonical(supplied))


def profile_for(ctx: Context, uow: UnitOfWork, user_id: str) -> UserProfile:
    profile = uow.session.get(UserProfile, user_id)
    if profile is None:
        profile = UserProfile(
            user_id=user_id, created_at=ctx.clock.now(), failures=0, recovery_failures=0
        )
        uow.session.add(profile)
        uow.session.flush()
    return profile


def issue(ctx: Context, uow: UnitOfWork, user_id: str) -> None:
    """Issue a fresh recovery token for ``user_id``, replacing any earlier one."""
    profile = profile_for(ctx, uow, user_id)
    token = generate()
    profile.recovery_id = uuid.uuid4()
    profile.recovery_hash = _hash(token)
    profile.recovery_pending_enc = ctx.keyring.encrypt(token)
    profile.recovery_failures = 0
    profile.recovery_backoff_until = None
    uow.emit(RecoveryIssued(recovery_id=profile.recovery_id), user_id=user_id)


@on_first_activation
def issue_on_first_token(ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
    issue(ctx, uow, token.user_id)
    return {
        "recovery_token_available": True,
        "recovery_token_url": f"/v1/users/{token.user_id}/recovery-token",
    }


@dataclass(frozen=True)
class Status:
    issued: bool  # a recovery token exists and can be redeemed
    # Its one download has not happened yet: a portal offers it until then (an imported
    # user gets one without ever passing through an enrollment page).
    downloadable: bool


def status(ctx: Context, user_id: str) -> Status:
    with ctx.uow() as uow:
        profile = uow.session.get(UserProfile, user_id)
        issued = profile is not None and profile.recovery_hash is not None
        return Status(issued, issued and profile is not None
                      and profile.recovery_pending_enc is not None)


def safe_filename(user_id: str) -> str:
    """``twofa-recovery-<user>.txt`` with anything unusual in the user id replaced."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", user_id).strip(".")[:64] or "user"
    return f"twofa-recovery-{cleaned}.txt"


def download(ctx: Context, user_id: str, correlation_id: str | None = None) -> Download:
    with ctx.uow(correlation_id) as uow:
        file = _download(ctx, uow, user_id)
        uow.commit()
    return file


def _download(ctx: Context, uow: UnitOfWork, user_id: str) -> Download:
    """The one download: returns the token and deletes its ciphertext (same transaction).

    Compare-and-set on the ciphertext, so of two concurrent downloads one wins and
    the other gets 410 like any later one.
    """
    profile = uow.session.get(UserProfile, user_id)
    if profile is None or profile.recovery_hash is None:
        raise NotFound("no recovery token has been issued", code="no_recovery_token")
    pending = profile.recovery_pending_enc
    if pending is None:
        raise Gone("the recovery token was already downloaded", code="recovery_token_downloaded")
    won = affected_rows(
        uow.session,
        update(UserProfile)
        .where(UserProfile.user_id == user_id, UserProfile.recovery_pending_enc == pending)
        .values(recovery_pending_enc=None)
        .execution_options(synchronize_session=False),
    )
    if won != 1:
        raise Gone("the recovery token was already downloaded", code="recovery_token_downloaded")
    profile.recovery_pending_enc = None
    return Download(safe_filename(user_id), _file_text(user_id, ctx.keyring.decrypt(pending)))


def _file_text(user_id: str, token: str) -> str:
    return (
        "twofa recovery token\n"
        "====================\n\n"
        f"Account: {user_id}\n\n"
        f"    {token}\n\n"
        "If you can no longer use any of your second factors (lost phone, no SMS),\n"
        "this token resets two-factor authentication once: all your tokens are\n"
        "removed and you can set 2FA up again, which gives you a new recovery token.\n\n"
        "Keep this file somewhere safe and private. It is shown only this once.\n"
    )


def _policy(ctx: Context) -> ThrottlePolicy:
    s = ctx.settings
    return ThrottlePolicy(
        free_failures=s.recovery_free_failures,
        base_seconds=s.recovery_backoff_base_seconds,
        max_seconds=s.recovery_backoff_max_seconds,
        max_failures=10**9,  # never "locks": the back-off alone caps guessing
    )


def redeem(ctx: Context, user_id: str, supplied: str, correlation_id: str | None = None) -> int:
    with ctx.uow(correlation_id) as uow:
        removed = _redeem(ctx, uow, user_id, supplied)
        uow.commit()
    return removed


def _redeem(ctx: Context, uow: UnitOfWork, user_id: str, supplied: str) -> int:
    """Reset 2FA with the recovery token; returns how many tokens were removed.

    A wrong, used or never-issued token gets the same answer (422) and counts as a
    failure; during a back-off the token is not even compared (429).
    """
    profile = profile_for(ctx, uow, user_id)
    now = ctx.clock.now()
    wait = wait_seconds(profile.recovery_backoff_until, now)
    if wait:
        uow.emit(RecoveryFailed(reason="throttled"), user_id=user_id)
        uow.commit()
        raise Throttled("too many wrong recovery tokens; try again later", retry_after=wait)
    stored = profile.recovery_hash
    valid = (
        stored is not None
        and bool(_CANONICAL.match(canonical(supplied)))
        and constant_time_equal(_hash(supplied), stored)
    )
    if not valid:
        _record_failure(ctx, uow, profile, "none_issued" if stored is None else "invalid")
        uow.commit()
        raise InvalidCode("the recovery token is not valid", code="invalid_recovery_token")
    # Compare-and-set: a token redeemed twice at once resets only once.
    won = affected_rows(
        uow.session,
        update(UserProfile)
        .where(UserProfile.user_id == user_id, UserProfile.recovery_hash == stored)
        .values(
            recovery_hash=None,
            recovery_pending_enc=None,
            recovery_failures=0,
            recovery_backoff_until=None,
        )
        .execution_options(synchronize_session=False),
    )
    if won != 1:
        raise InvalidCode("the recovery token is not valid", code="invalid_recovery_token")
    recovery_id = profile.recovery_id
    uow.session.expire(profile)
    tokens = list(
        uow.session.scalars(
            select(Token).where(Token.user_id == user_id).order_by(Token.created_at, Token.id)
        )
    )
    for token in tokens:
        uow.session.delete(token)
        uow.emit(
            TokenDeleted(token_id=token.id, token_type=token.type, reason="recovery"),
            user_id=user_id,
        )
    uow.emit(
        RecoveryUsed(recovery_id=recovery_id or uuid.uuid4(), tokens_removed=len(tokens)),
        user_id=user_id,
    )
    return len(tokens)


def _record_failure(
    ctx: Context, uow: UnitOfWork, profile: UserProfile, reason: RecoveryFailureReason
) -> None:
    failures = uow.session.execute(  # counted in SQL so that concurrent guesses all count
        update(UserProfile)
        .where(UserProfile.user_id == profile.user_id)
        .values(recovery_failures=UserProfile.recovery_failures + 1)
        .returning(UserProfile.recovery_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    profile.recovery_failures = failures
    profile.recovery_backoff_until = next_backoff(_policy(ctx), failures, ctx.clock.now())
    uow.emit(RecoveryFailed(reason=reason), user_id=profile.user_id)
