"""What happens around a token's life that is not about one token type:
step-up checks for sensitive changes, and the consequences of a first active token."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.core.challenges import step_up
from services.core.errors import Forbidden, NotFound
from services.core.factors.base import factor_for
from services.core.models import Token, TokenState
from services.core.tokens.verification import check_any_token_code
from shared.events.challenge import ChallengePurpose

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

_activation_hooks: list[Any] = []


def on_first_activation(hook: Any) -> Any:
    """Register ``hook(ctx, uow, token) -> dict`` to run when a user's first token goes active."""
    _activation_hooks.append(hook)
    return hook


def token_activated(ctx: Context, uow: UnitOfWork, token: Token) -> dict[str, Any]:
    others = uow.session.scalar(
        select(Token.id).where(
            Token.user_id == token.user_id, Token.state == TokenState.ACTIVE, Token.id != token.id
        ).limit(1)
    )
    details: dict[str, Any] = {"first_token": others is None}
    if others is None:
        for hook in _activation_hooks:
            details.update(hook(ctx, uow, token) or {})
    return details


def require_step_up(
    ctx: Context,
    uow: UnitOfWork,
    user_id: str,
    code: str | None,
    verify_with: uuid.UUID | None,
    *,
    purpose: str,
    action: tuple[ChallengePurpose, str],
    step_up_id: uuid.UUID | None = None,
    default: Token | None = None,
) -> Token | None:
    """A passed step-up for ``action`` (purpose, target), spent here; or else a fresh valid
    code from one of the user's active tokens, if the user has any.

    ``verify_with`` names the token the code is from; without it the code may come from
    any of the user's tokens that take codes (``default`` is tried first, then those whose
    code the user reads off an app, then the others, oldest first). Returns the token that
    verified, or None when the user has no token at all (nothing to protect yet). Locked
    tokens do not count as "no token": with only locked tokens every step-up is refused
    (403 ``factors_locked``).
    """
    if step_up_id is not None:
        step_up.spend(ctx, uow, step_up_id, user_id, *action)
        return None
    actives = list(
        uow.session.scalars(
            select(Token)
            .where(Token.user_id == user_id, Token.state == TokenState.ACTIVE)
            .order_by(Token.created_at)
        )
    )
    if not actives:
        if _has_locked(uow, user_id):
            # Fail closed: guessing every token into lockout must not unlock the settings.
            raise Forbidden(
                "every token is locked; reset with the recovery token", code="factors_locked"
            )
        return None
    if not code:
        raise Forbidden(
            "a passed step-up or a valid code from one of your tokens is required",
            code="step_up_required",
        )
    return check_any_token_code(
        ctx, uow, _verifiers(actives, verify_with, default), code, purpose=purpose
    )


def _has_locked(uow: UnitOfWork, user_id: str) -> bool:
    found = uow.session.scalar(
        select(Token.id).where(Token.user_id == user_id, Token.state == TokenState.LOCKED).limit(1)
    )
    return found is not None


def _verifiers(
    actives: list[Token], verify_with: uuid.UUID | None, default: Token | None
) -> list[Token]:
    if verify_with is not None:
        for token in actives:
            if token.id == verify_with:
                if not factor_for(token.type).takes_codes:
                    raise Forbidden("that token does not produce codes", code="step_up_required")
                return [token]
        raise NotFound("no such active token for this user", code="token_not_found")
    # A code the user reads off an app before one that was sent; oldest first within each.
    ordered = sorted(
        (t for t in actives if factor_for(t.type).takes_codes),
        key=lambda t: not factor_for(t.type).code_ready,
    )
    if default is not None and default in ordered:
        ordered.remove(default)
        ordered.insert(0, default)
    if not ordered:
        raise Forbidden("none of your tokens produces codes", code="step_up_required")
    return ordered
