"""The e-mail address a user is told things at, set by the portal or a login service.

Stored encrypted (personal data) and changed only with a step-up once the user has a
factor: otherwise whoever holds a session could silence the warnings before taking
over the account.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from services.core.challenges.step_up import CONTACT_TARGET
from services.core.errors import Unprocessable
from services.core.models import UserContact
from services.core.tokens.lifecycle import require_step_up

if TYPE_CHECKING:
    import uuid

    from services.core.plumbing.context import Context

# Deliberately plain: one @, a dotted domain with a letter TLD, no spaces or control
# characters. Whether the mailbox exists is the SMTP server's to say.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{4,253}$)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


class InvalidEmail(Unprocessable):
    code = "invalid_email"


def normalise_email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value) or ".." in value:
        raise InvalidEmail("not an e-mail address")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def get_email(ctx: Context, user_id: str) -> str | None:
    with ctx.sessions() as session:
        row = session.get(UserContact, user_id)
        return ctx.keyring.decrypt(row.email_enc) if row else None


def set_email(
    ctx: Context,
    user_id: str,
    email: str | None,
    *,
    code: str | None,
    verify_with: uuid.UUID | None,
    step_up_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> str | None:
    """Set (or with None remove) the address; once the user has a factor, a passed
    ``set_contact`` step-up or a fresh code."""
    normalised = normalise_email(email) if email is not None else None
    with ctx.uow(correlation_id) as uow:
        require_step_up(ctx, uow, user_id, code, verify_with, purpose="step_up",
                        action=("set_contact", CONTACT_TARGET), step_up_id=step_up_id)
        row = uow.session.get(UserContact, user_id)
        if normalised is None:
            if row is not None:
                uow.session.delete(row)
        elif row is None:
            uow.session.add(
                UserContact(
                    user_id=user_id,
                    email_enc=ctx.keyring.encrypt(normalised),
                    updated_at=ctx.clock.now(),
                )
            )
        else:
            row.email_enc, row.updated_at = ctx.keyring.encrypt(normalised), ctx.clock.now()
        uow.commit()
    return normalised
