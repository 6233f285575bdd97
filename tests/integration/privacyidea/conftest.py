"""Fixtures for the privacyIDEA-compatible API: the plugin clients on the TestClient and a
user with an active TOTP token (which protects ``sso``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.privacyidea import accounts
from tests.integration.helpers import active_totp, totp_code
from tests.pi_plugins import PluginClient, client_for


@pytest.fixture
def plugin(api: TestClient) -> Callable[[str], PluginClient]:
    return lambda name: client_for(api, name)


@pytest.fixture
def totp_user(
    api: TestClient, enroll_headers: dict[str, str], clock: FrozenClock
) -> Callable[[], str]:
    """alice's TOTP secret; ``code()`` gives the code of the current step."""
    _, secret = active_totp(api, enroll_headers, clock)
    return lambda offset=0: totp_code(secret, clock, offset)


@pytest.fixture
def service_account(ctx: Context) -> tuple[str, str]:
    with ctx.sessions.begin() as session:
        created = accounts.create(session, "keycloak", ctx.clock.now())
    return created.username, created.password
