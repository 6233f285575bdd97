"""The contracts refuse what they do not describe."""

import json
from datetime import datetime
from typing import Any

import pytest

from shared.envelope import EventData
from shared.registry import ContractError, InvalidEvent, UnknownEvent, new_event, parse_event
from tests.contract.examples import WHEN, example


def wire(type_: str = "token.locked") -> dict[str, Any]:
    envelope = new_event(example(type_), user_id="bob", correlation_id="req-9", occurred_at=WHEN)
    raw: dict[str, Any] = json.loads(envelope.model_dump_json())
    return raw


def test_contract_errors_are_value_errors() -> None:
    assert issubclass(UnknownEvent, ContractError)
    assert issubclass(InvalidEvent, ContractError)
    assert issubclass(ContractError, ValueError)


def test_extra_envelope_field_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="source: Extra inputs"):
        parse_event({**wire(), "source": "api"})


def test_extra_data_field_is_refused() -> None:
    raw = wire()
    raw["data"]["otp"] = "123456"
    with pytest.raises(InvalidEvent, match=r"data: .*otp"):
        parse_event(raw)


def test_event_models_refuse_extra_fields_and_are_frozen() -> None:
    data = example("token.locked")
    with pytest.raises(ValueError):
        type(data).model_validate({**data.model_dump(), "extra": 1})
    with pytest.raises(ValueError):
        data.consecutive_failures = 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_id", "not-a-uuid"),
        ("token_type", "hotp"),
        ("consecutive_failures", "many"),
        ("consecutive_failures", -1),
        ("token_id", None),
    ],
)
def test_wrong_data_types_are_refused(field: str, value: object) -> None:
    raw = wire()
    raw["data"][field] = value
    with pytest.raises(InvalidEvent):
        parse_event(raw)


def test_missing_data_field_is_refused() -> None:
    raw = wire()
    del raw["data"]["token_type"]
    with pytest.raises(InvalidEvent):
        parse_event(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "123"),
        ("version", 0),
        ("type", "TokenLocked"),
        ("occurred_at", "2026-01-02T03:04:05"),  # naive: no timezone
        ("correlation_id", ""),
        ("correlation_id", "has space"),
        ("user_id", "-starts-with-dash"),
        ("data", []),
    ],
)
def test_wrong_envelope_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidEvent):
        parse_event({**wire(), field: value})


def test_malformed_json_is_invalid() -> None:
    with pytest.raises(InvalidEvent):
        parse_event(b"{not json")


def test_invalid_event_message_does_not_echo_input_values() -> None:
    raw = wire()
    raw["data"]["token_type"] = "SECRET-VALUE-123"
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert "SECRET-VALUE-123" not in str(info.value)
    assert info.value.__cause__ is None
    assert all("input" not in err for err in info.value.errors)


def test_unknown_type_is_unknown_event() -> None:
    with pytest.raises(UnknownEvent):
        parse_event({**wire(), "type": "token.exploded"})


def test_unknown_future_version_is_unknown_event() -> None:
    with pytest.raises(UnknownEvent):
        parse_event({**wire(), "version": 2})


def test_new_event_refuses_an_unregistered_model() -> None:
    class Unregistered(EventData):
        TYPE = "test.unregistered"
        VERSION = 1

    with pytest.raises(UnknownEvent):
        new_event(Unregistered(), user_id=None, correlation_id="c", occurred_at=WHEN)


def test_new_event_refuses_a_naive_timestamp() -> None:
    with pytest.raises(InvalidEvent):
        new_event(
            example("recovery.issued"),
            user_id=None,
            correlation_id="c",
            occurred_at=datetime(2026, 1, 1),  # deliberately naive
        )
