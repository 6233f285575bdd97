"""TWOFA_AREAS: plain slugs as before, or ``slug=Display name`` for the name people read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.core.plumbing.settings import Settings


def test_the_default_catalogue_has_names_for_people():
    s = Settings(env="test")
    assert s.area_names == ("sso", "portal-security")
    assert s.area_display_names == {"sso": "Single sign-on", "portal-security": "Security settings"}


def test_plain_slugs_still_work_and_show_the_slug():
    s = Settings(env="test", areas="sso, billing = Billing and invoices ,portal")
    assert s.area_names == ("sso", "billing", "portal")
    assert s.area_display_names == {
        "sso": "sso",
        "billing": "Billing and invoices",
        "portal": "portal",
    }
    assert s.areas == "sso,billing=Billing and invoices,portal"


@pytest.mark.parametrize("value", ["sso=", "Sso=Single", "sso=a=b", "sso=" + "x" * 65, " , "])
def test_a_bad_catalogue_is_refused_at_start(value):
    with pytest.raises(ValidationError):
        Settings(env="test", areas=value)
