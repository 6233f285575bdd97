"""``db.transient``: a mapped class's instance as a plain value, made without the change
tracking of the mapped constructor."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from services.core.models import Challenge
from services.core.plumbing.db import transient


def _values() -> dict[str, object]:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    return dict(id=uuid.uuid4(), user_id="alice", area="sso", state="verified",
                token_id=uuid.uuid4(), token_type="totp", attempts=0, max_attempts=5,
                correlation_id="c" * 32, created_at=now, expires_at=now, completed_at=now)


def test_the_value_reads_as_the_mapped_instance_would() -> None:
    values = _values()
    made, built = transient(Challenge, values), Challenge(**values)
    for column in Challenge.__table__.columns:
        assert getattr(made, column.key) == getattr(built, column.key), column.key
    assert made.used_at is None and made.reason is None  # not given: None, as built


def test_the_value_records_no_changes_and_belongs_to_no_session() -> None:
    made = transient(Challenge, _values())
    state = inspect(made)
    assert state.transient and state.session is None
    assert not state.modified and not state.committed_state


def test_a_process_whose_first_use_of_the_models_is_a_value() -> None:
    """The mappers are configured at the first instance the mapped constructor makes;
    ``transient`` configures them itself when it comes first."""
    code = (
        "import uuid\n"
        "from services.core.models import Challenge\n"
        "from services.core.plumbing.db import transient\n"
        "c = transient(Challenge, {'id': uuid.UUID(int=1), 'state': 'pending'})\n"
        "print(c.state, c.id.int, c.area)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["pending", "1", "None"]


def test_a_value_with_an_attribute_the_model_lacks_is_refused() -> None:
    with pytest.raises(TypeError, match="statee"):
        transient(Challenge, {**_values(), "statee": "verified"})
