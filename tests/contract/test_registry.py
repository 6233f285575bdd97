"""Registry rules and upcasting, on throwaway registries so nothing test-only leaks."""

from typing import Any
from uuid import UUID

import pytest
from pydantic import ConfigDict

from shared.envelope import EventData
from shared.registry import (
    EVENT_TYPES,
    RETIRED_TYPES,
    ContractError,
    InvalidEvent,
    Registry,
    UnknownEvent,
)
from tests.contract.examples import WHEN

THING = UUID("22222222-2222-4222-8222-222222222222")


class ThingMovedV1(EventData):
    TYPE = "thing.moved"
    VERSION = 1

    thing_id: UUID
    place: str


class ThingMovedV2(EventData):
    TYPE = "thing.moved"
    VERSION = 2

    thing_id: UUID
    place: str
    floor: int


class ThingMovedV3(EventData):
    """v3 renamed ``place`` to ``room``."""

    TYPE = "thing.moved"
    VERSION = 3

    thing_id: UUID
    room: str
    floor: int


def three_versions() -> Registry:
    registry = Registry()
    for model in (ThingMovedV1, ThingMovedV2, ThingMovedV3):
        registry.register(model)

    @registry.upcaster("thing.moved", 1)
    def add_floor(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "floor": 0}

    @registry.upcaster("thing.moved", 2)
    def rename_place(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        data["room"] = data.pop("place")
        return data

    return registry


def raw(version: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": "33333333-3333-4333-8333-333333333333",
        "type": "thing.moved",
        "version": version,
        "occurred_at": WHEN.isoformat(),
        "correlation_id": "c-1",
        "user_id": "u1",
        "data": data,
    }


def test_test_types_stay_out_of_the_default_registry() -> None:
    three_versions()
    assert "thing.moved" not in EVENT_TYPES


def test_old_version_is_upcast_through_the_chain_to_the_latest() -> None:
    registry = three_versions()
    old = {"thing_id": str(THING), "place": "attic"}

    envelope, data = registry.parse_event(raw(1, old))

    assert data == ThingMovedV3(thing_id=THING, room="attic", floor=0)
    assert envelope.version == 3
    assert envelope.data == {"thing_id": str(THING), "room": "attic", "floor": 0}
    assert old == {"thing_id": str(THING), "place": "attic"}  # the input is left untouched


def test_middle_version_is_upcast_one_step() -> None:
    v2 = {"thing_id": str(THING), "place": "hall", "floor": 2}
    _, data = three_versions().parse_event(raw(2, v2))
    assert data == ThingMovedV3(thing_id=THING, room="hall", floor=2)


def test_latest_version_is_not_touched() -> None:
    registry = three_versions()
    assert registry.latest("thing.moved") is ThingMovedV3
    envelope = registry.new_event(
        ThingMovedV3(thing_id=THING, room="cellar", floor=-1),
        user_id=None,
        correlation_id="c",
        occurred_at=WHEN,
    )
    assert registry.parse_event(envelope.model_dump_json()) == (
        envelope,
        ThingMovedV3(thing_id=THING, room="cellar", floor=-1),
    )


def test_old_data_is_validated_against_its_own_version_before_upcasting() -> None:
    with pytest.raises(InvalidEvent, match=r"thing\.moved v1"):
        three_versions().parse_event(raw(1, {"thing_id": str(THING)}))


def test_upcaster_may_outlive_the_model_of_its_version() -> None:
    registry = Registry()
    registry.register(ThingMovedV2)

    @registry.upcaster("thing.moved", 1)
    def add_floor(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "floor": 0}

    registry.check()
    _, data = registry.parse_event(raw(1, {"thing_id": str(THING), "place": "attic"}))
    assert data == ThingMovedV2(thing_id=THING, place="attic", floor=0)
    with pytest.raises(UnknownEvent):
        registry.parse_event({**raw(1, {}), "type": "thing.gone"})


def test_failing_upcaster_is_an_invalid_event() -> None:
    registry = Registry()
    registry.register(ThingMovedV2)

    @registry.upcaster("thing.moved", 1)
    def needs_place(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "floor": int(data["place"])}

    with pytest.raises(InvalidEvent, match=r"cannot upcast thing\.moved v1 data: KeyError"):
        registry.parse_event(raw(1, {"thing_id": str(THING)}))


def test_missing_link_in_the_chain_is_caught() -> None:
    registry = Registry()
    registry.register(ThingMovedV1)
    registry.register(ThingMovedV3)
    with pytest.raises(ContractError, match=r"no upcaster from version\(s\) \[1, 2\]"):
        registry.check()
    with pytest.raises(UnknownEvent):
        registry.parse_event(raw(1, {"thing_id": str(THING), "place": "attic"}))


def test_duplicate_registration_is_refused() -> None:
    registry = Registry()
    registry.register(ThingMovedV1)
    with pytest.raises(ContractError, match="already registered"):
        registry.register(ThingMovedV1)
    registry.upcaster("thing.moved", 1)(lambda data: data)
    with pytest.raises(ContractError, match="already exists"):
        registry.upcaster("thing.moved", 1)(lambda data: data)


def test_retired_type_names_cannot_be_reused() -> None:
    registry = Registry(retired=frozenset({"thing.moved"}))
    with pytest.raises(ContractError, match="retired"):
        registry.register(ThingMovedV1)
    with pytest.raises(ContractError, match="retired"):
        registry.upcaster("thing.moved", 1)


def test_no_registered_type_is_retired() -> None:
    assert not RETIRED_TYPES & set(EVENT_TYPES)


def test_malformed_or_mutable_models_are_refused() -> None:
    class BadType(EventData):
        TYPE = "ThingMoved"
        VERSION = 1

    class BadVersion(EventData):
        TYPE = "thing.moved"
        VERSION = 0

    class NoVersion(EventData):
        TYPE = "thing.moved"

    class Mutable(EventData):
        model_config = ConfigDict(frozen=False)
        TYPE = "thing.moved"
        VERSION = 1

    for model in (BadType, BadVersion, NoVersion, Mutable):
        with pytest.raises(ContractError):
            Registry().register(model)
