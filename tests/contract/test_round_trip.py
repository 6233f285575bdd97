"""Every registered event survives new_event -> JSON -> parse_event unchanged."""

import json
from uuid import UUID

import pytest

from shared.registry import (
    EVENT_TYPES,
    all_models,
    default_registry,
    latest,
    new_event,
    parse_event,
)
from tests.contract.examples import EXAMPLES, WHEN, example


def test_every_registered_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)


def test_the_default_registry_is_consistent() -> None:
    default_registry.check()  # every old version has an upcaster chain to the latest
    assert {m.TYPE for m in all_models()} == set(EVENT_TYPES)


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_round_trip_through_json(type_: str) -> None:
    data = example(type_)
    assert type(data) is latest(type_)
    envelope = new_event(
        data, user_id="alice@example.org", correlation_id="req-1", occurred_at=WHEN
    )

    wire = envelope.model_dump_json()
    parsed_envelope, parsed_data = parse_event(wire)

    assert parsed_envelope == envelope
    assert parsed_data == data
    assert parse_event(wire.encode()) == (envelope, data)
    assert parse_event(json.loads(wire)) == (envelope, data)


def test_new_event_fills_the_envelope() -> None:
    data = example("recovery.issued")
    event_id = UUID("11111111-1111-4111-8111-111111111111")
    envelope = new_event(
        data, user_id=None, correlation_id="task:abc", occurred_at=WHEN, event_id=event_id
    )
    assert envelope.event_id == event_id
    assert (envelope.type, envelope.version) == ("recovery.issued", 1)
    assert envelope.user_id is None
    assert envelope.data == {"recovery_id": str(data.recovery_id)}  # type: ignore[attr-defined]
    assert json.loads(envelope.model_dump_json())["occurred_at"] == "2026-01-02T03:04:05Z"


def test_new_event_generates_distinct_event_ids() -> None:
    data = example("recovery.issued")
    first, second = (
        new_event(data, user_id="u1", correlation_id="c", occurred_at=WHEN) for _ in range(2)
    )
    assert first.event_id != second.event_id
