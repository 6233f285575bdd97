"""Both key scopes at once, for tests that enroll and log in."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def both_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('enroll', 'challenge')}"}
