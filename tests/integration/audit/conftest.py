"""A 12-row audit chain signed with the Context's own checkpoint key (checkpoints at 1, 6, 11)."""

from __future__ import annotations

import pytest

from services.core.audit.service import signer_for
from tests.unit.audit import tamper

TAMPERINGS = {
    "edit": (lambda s: tamper.edit_row(s, 7), 7),
    "delete": (lambda s: tamper.delete_row(s, 5), 5),
    "swap": (lambda s: tamper.swap_rows(s, 4, 9), 4),
    "cut_tail": (lambda s: tamper.cut_tail(s, 8), 9),
}


@pytest.fixture
def chain12(ctx, clock):
    return tamper.build_chain(ctx.sessions, signer_for(ctx), clock, 12, every_rows=5)


@pytest.fixture
def audit_headers(make_key):
    return {"Authorization": f"Bearer {make_key('audit:read')}"}
