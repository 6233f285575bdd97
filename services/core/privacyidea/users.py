"""A plugin's ``user`` (and ``realm``) as a twofa user id and protected area.

privacyIDEA splits ``user@realm`` at the last ``@`` when what follows is a realm it knows
(``splitAtSign``), and an explicit ``realm`` parameter wins. twofa has no user store: the
login is the twofa user id, and the realm only chooses the area the login protects
(``TWOFA_PI_REALMS``); no realm, or ``""`` (the default realm), means ``sso``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.core.plumbing.settings import Settings

# The native API's user id rule: a name that breaks it cannot be anybody's.
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$")


class UserNotFound(Exception):
    """No twofa user can carry this name, or the realm is not configured (privacyIDEA 904)."""


@dataclass(frozen=True)
class PiUser:
    login: str
    realm: str  # as the plugin named it, "" for the default realm
    area: str

    @property
    def user_id(self) -> str:
        return self.login


def resolve(settings: Settings, user: str, realm: str | None) -> PiUser:
    realms = settings.pi_realm_areas
    login, chosen = user, (realm or "").strip()
    if not chosen and "@" in user:
        head, _, tail = user.rpartition("@")
        if head and tail.lower() in realms:
            login, chosen = head, tail
    if chosen:
        area = realms.get(chosen.lower())
        if area is None:
            raise UserNotFound("The user can not be found in any resolver in this realm!")
    else:
        area = settings.pi_area_without_realm
    if not USER_ID.match(login):
        raise UserNotFound("The user can not be found in any resolver in this realm!")
    return PiUser(login=login, realm=chosen, area=area)
