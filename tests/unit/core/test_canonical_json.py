"""The audit chain's canonical JSON is RFC 8785 byte for byte, whichever encoder writes it."""

from __future__ import annotations

from typing import Any

import jcs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.plumbing import canonical_json
from services.core.plumbing.canonical_json import canonicalize

# Any text, control characters, quotes, backslashes and characters beyond the BMP included.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | texts | st.integers(-(2**60), 2**60) | st.floats(
    allow_nan=False, allow_infinity=False
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(values)
def test_the_bytes_are_jcs_bytes(value: Any) -> None:
    assert canonicalize(value) == jcs.canonicalize(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8),
                       st.none() | st.booleans() | texts | st.integers(-(2**52), 2**52),
                       max_size=6))
def test_event_shaped_values_take_the_standard_encoder(value: dict[str, Any]) -> None:
    assert canonical_json._standard_encoder_agrees(value)
    assert canonicalize(value) == jcs.canonicalize(value)


@pytest.mark.parametrize("value", [
    {"amount": 1.5},  # float: ES6 number formatting
    {"n": 2**60},  # beyond 2**53: jcs prints it as a double
    {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code point order
    {"t": (1, 2)},
])
def test_what_the_standard_encoder_would_write_differently_goes_to_jcs(value: Any) -> None:
    assert not canonical_json._standard_encoder_agrees(value)
    assert canonicalize(value) == jcs.canonicalize(value)


def test_an_event_row_is_written_by_the_standard_encoder() -> None:
    row = {"position": 7, "prev_hash": "0" * 64, "recorded_at": "2026-12-01T05:00:00+00:00",
           "factor": "totp", "outcome": "success",
           "event": {"type": "challenge.verified", "version": 1, "user_id": "alice@example.org",
                     "data": {"area": "sso", "note": "line\nbreak \"quoted\" \\ é ✓ \U0001f600"}}}
    assert canonical_json._standard_encoder_agrees(row)
    assert canonicalize(row) == jcs.canonicalize(row)
