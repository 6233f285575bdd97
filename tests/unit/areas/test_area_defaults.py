"""The sso-by-default rule on the first active token, under each configuration."""

from __future__ import annotations

import uuid
from pathlib import Path

from services.core import areas
from services.core.bootstrap import build_context
from services.core.models import AreaProtection, Token
from tests.conftest import make_settings


def first_token(user: str = "alice") -> Token:
    return Token(id=uuid.uuid4(), user_id=user, type="totp", description="x", state="active")


def run_hook(ctx) -> tuple[dict, bool | None]:
    with ctx.uow() as uow:
        details = areas.protect_sso_by_default(ctx, uow, first_token())
        uow.commit()
        row = uow.session.get(AreaProtection, ("alice", "sso"))
        return details, (row.protected if row else None)


def context(tmp_path: Path, database_url: str, clock, publisher, **overrides):
    settings = make_settings(tmp_path, database_url, **overrides)
    return build_context(settings, publisher=publisher, background=False, clock=clock)


def test_sso_is_protected_by_default(ctx, publisher):
    assert run_hook(ctx) == ({"areas_protected_by_default": ["sso"]}, True)
    [event] = publisher.published
    assert event["data"] == {"area": "sso", "protected": True, "by_default": True}


def test_the_default_can_be_switched_off(tmp_path, database_url, clock, publisher):
    ctx = context(tmp_path, database_url, clock, publisher, protect_sso_on_first_token=False)
    assert run_hook(ctx) == ({}, None)
    assert publisher.published == []
    ctx.engine.dispose()


def test_no_default_when_sso_is_not_in_the_catalogue(tmp_path, database_url, clock, publisher):
    ctx = context(tmp_path, database_url, clock, publisher, areas="portal,billing")
    assert run_hook(ctx) == ({}, None)
    ctx.engine.dispose()


def test_an_explicit_choice_stands(ctx, publisher):
    areas.set_protection(ctx, "alice", "sso", False, code=None)
    assert run_hook(ctx) == ({}, False)
    assert len(publisher.published) == 1
