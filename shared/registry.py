"""The registry of event contracts: ``(type, version) -> model``, plus upcasters.

Producers build envelopes with ``new_event``; consumers read them with ``parse_event``, which
upcasts an old version to the latest one through a chain of pure functions registered with
``@upcaster(type, from_version)``, so consumer code only ever handles the latest model
(versions are read forward).

The module-level functions use ``default_registry``, which the modules in ``shared.events``
fill when ``shared`` is imported. Tests that need throwaway types build their own
``Registry()`` so nothing test-only ever leaks into the default one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pydantic import ValidationError

from shared.envelope import Envelope, EventData

__all__ = [
    "EVENT_TYPES",
    "RETIRED_TYPES",
    "ContractError",
    "InvalidEvent",
    "Registry",
    "UnknownEvent",
    "Upcaster",
    "all_models",
    "default_registry",
    "event",
    "latest",
    "new_event",
    "parse_event",
    "upcaster",
]

RETIRED_TYPES: frozenset[str] = frozenset()
"""Type names that were once used and may never be registered again.

Old messages and stored audit entries still carry them; reusing a name would make them parse
as something they are not. Add a name here when its last version is removed.
"""

M = TypeVar("M", bound=type[EventData])
_T = TypeVar("_T")
_TYPE_RE = re.compile(r"^[a-z_]+\.[a-z_]+$")  # the same rule as ``Envelope.type``
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""A pure function turning the ``data`` of version N into the ``data`` of version N + 1."""


class ContractError(ValueError):
    """An event does not fit the contracts (base of ``UnknownEvent`` and ``InvalidEvent``)."""


class UnknownEvent(ContractError):
    """The ``(type, version)`` is not registered and cannot be upcast to a registered one."""


class InvalidEvent(ContractError):
    """The envelope or its ``data`` failed validation (or could not be upcast).

    The message lists locations and reasons only - never the input values, which could hold
    something a log must not show. ``errors`` keeps the same details in structured form.
    """

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)

    @classmethod
    def from_validation(cls, what: str, exc: ValidationError) -> InvalidEvent:
        """Summarise a pydantic error without the offending input values."""
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        details = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}"
            for err in errors
        )
        return cls(f"invalid {what}: {details}", errors)


class _TypeNames(Set[str]):
    """A live, read-only view of the type names registered in a registry."""

    def __init__(self, source: Callable[[], frozenset[str]]) -> None:
        self._source = source

    def __contains__(self, item: object) -> bool:
        return item in self._source()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._source()))

    def __len__(self) -> int:
        return len(self._source())

    @classmethod
    def _from_iterable(cls, it: Iterable[_T]) -> frozenset[_T]:  # results of &, |, -
        return frozenset(it)

    def __repr__(self) -> str:
        return f"EventTypes({sorted(self._source())!r})"


class Registry:
    """Maps ``(type, version)`` to its model and holds the upcasters between versions."""

    def __init__(self, *, retired: frozenset[str] = RETIRED_TYPES) -> None:
        self._retired = retired
        self._models: dict[tuple[str, int], type[EventData]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self.types: Set[str] = _TypeNames(self._type_names)
        """Live read-only set of the registered type names."""

    # -- registration -------------------------------------------------------------------------

    def register(self, model: M) -> M:
        """Register an ``EventData`` subclass under its ``(TYPE, VERSION)``; usable as decorator.

        Refuses a retired type name, a duplicate ``(type, version)``, a malformed type or
        version and a model that is not frozen with ``extra="forbid"``.
        """
        if not (isinstance(model, type) and issubclass(model, EventData)):
            raise ContractError(f"{model!r} is not an EventData subclass")
        type_, version = getattr(model, "TYPE", None), getattr(model, "VERSION", None)
        if not isinstance(type_, str) or not isinstance(version, int):
            raise ContractError(f"{model.__name__} must set TYPE (str) and VERSION (int)")
        _check_key(type_, version)
        if type_ in self._retired:
            raise ContractError(f"{type_!r} is a retired event type and cannot be reused")
        if (type_, version) in self._models:
            raise ContractError(f"{type_} v{version} is already registered")
        config = model.model_config
        if not config.get("frozen") or config.get("extra") != "forbid":
            raise ContractError(f"{model.__name__} must be frozen with extra='forbid'")
        self._models[(type_, version)] = model
        return model

    def upcaster(self, type_: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator registering a pure ``data`` upcaster from ``from_version`` to the next."""
        _check_key(type_, from_version)
        if type_ in self._retired:
            raise ContractError(f"{type_!r} is a retired event type")

        def decorate(fn: Upcaster) -> Upcaster:
            if (type_, from_version) in self._upcasters:
                raise ContractError(f"an upcaster from {type_} v{from_version} already exists")
            self._upcasters[(type_, from_version)] = fn
            return fn

        return decorate

    # -- lookup -------------------------------------------------------------------------------

    def latest(self, type_: str) -> type[EventData]:
        """The model of the highest registered version of ``type_``."""
        versions = [v for t, v in self._models if t == type_]
        if not versions:
            raise UnknownEvent(f"unknown event type {type_!r}")
        return self._models[(type_, max(versions))]

    def get(self, type_: str, version: int) -> type[EventData]:
        """The model registered for exactly ``(type_, version)``."""
        try:
            return self._models[(type_, version)]
        except KeyError:
            raise UnknownEvent(f"unknown event {type_} v{version}") from None

    def all_models(self) -> list[type[EventData]]:
        """Every registered model, old versions included, sorted by ``(type, version)``."""
        return [self._models[key] for key in sorted(self._models)]

    def check(self) -> None:
        """Raise ``ContractError`` unless every old version has an upcaster chain to the latest.

        Also refuses upcasters for unregistered types or from the latest version (which
        would lead nowhere).
        """
        orphans = sorted({t for t, _ in self._upcasters} - self._type_names())
        if orphans:
            raise ContractError(f"upcasters for unregistered types: {orphans}")
        for type_ in self.types:
            top = self.latest(type_).VERSION
            starts = [v for t, v in self._models if t == type_]
            starts += [v for t, v in self._upcasters if t == type_]
            if max(starts) > top or (type_, top) in self._upcasters:
                raise ContractError(f"{type_}: an upcaster starts at or beyond the latest v{top}")
            missing = [v for v in range(min(starts), top) if (type_, v) not in self._upcasters]
            if missing:
                raise ContractError(f"{type_}: no upcaster from version(s) {missing}")

    def _type_names(self) -> frozenset[str]:
        return frozenset(type_ for type_, _ in self._models)

    # -- producing and consuming --------------------------------------------------------------

    def new_event(
        self,
        data: EventData,
        *,
        user_id: str | None,
        correlation_id: str,
        occurred_at: datetime,
        event_id: UUID | None = None,
    ) -> Envelope:
        """Wrap ``data`` (a registered model instance) in a validated envelope.

        ``data`` is dumped in JSON mode, so the envelope holds exactly what goes on the wire.
        Raises ``UnknownEvent`` for an unregistered model, ``InvalidEvent`` for a bad envelope.
        """
        model = type(data)
        if self._models.get((model.TYPE, model.VERSION)) is not model:
            raise UnknownEvent(f"{model.__name__} is not a registered event model")
        try:
            return Envelope(
                event_id=event_id or uuid4(),
                type=model.TYPE,
                version=model.VERSION,
                occurred_at=occurred_at,
                correlation_id=correlation_id,
                user_id=user_id,
                data=data.model_dump(mode="json"),
            )
        except ValidationError as exc:
            raise InvalidEvent.from_validation("envelope", exc) from None

    def parse_event(self, raw: dict[str, Any] | str | bytes) -> tuple[Envelope, EventData]:
        """Validate an event from the wire and return it at the latest version of its type.

        An old version is upcast step by step to the latest; the returned envelope then carries
        the latest ``version`` and the upcast ``data``. Raises ``UnknownEvent`` when the type or
        version cannot be mapped to a model, ``InvalidEvent`` when validation fails.
        """
        try:
            if isinstance(raw, str | bytes | bytearray):
                envelope = Envelope.model_validate_json(raw)
            else:
                envelope = Envelope.model_validate(raw)
        except ValidationError as exc:
            raise InvalidEvent.from_validation("envelope", exc) from None
        model = self.latest(envelope.type)
        data = self._upcast(envelope.type, envelope.version, model.VERSION, envelope.data)
        try:
            payload = model.model_validate(data)
        except ValidationError as exc:
            raise InvalidEvent.from_validation(f"{model.TYPE} v{model.VERSION} data", exc) from None
        if envelope.version != model.VERSION:
            envelope = envelope.model_copy(
                update={"version": model.VERSION, "data": payload.model_dump(mode="json")}
            )
        return envelope, payload

    def _upcast(
        self, type_: str, version: int, target: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Walk ``data`` from ``version`` up to ``target`` through the registered upcasters.

        When the old version still has a model, ``data`` is validated against it first, so an
        upcaster only ever sees well-formed, JSON-mode input.
        """
        if version > target:
            raise UnknownEvent(f"unknown event {type_} v{version} (latest is v{target})")
        while version < target:
            step = self._upcasters.get((type_, version))
            if step is None:
                raise UnknownEvent(
                    f"unknown event {type_} v{version}: no upcaster to v{version + 1}"
                )
            old = self._models.get((type_, version))
            try:
                if old is not None:
                    data = old.model_validate(data).model_dump(mode="json")
                # A deep copy keeps the caller's dict intact even if an upcaster mutates it.
                data = step(copy.deepcopy(data))
            except ValidationError as exc:
                raise InvalidEvent.from_validation(f"{type_} v{version} data", exc) from None
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidEvent(
                    f"cannot upcast {type_} v{version} data: {type(exc).__name__}"
                ) from None
            version += 1
        return data


def _check_key(type_: str, version: int) -> None:
    if not isinstance(type_, str) or _TYPE_RE.fullmatch(type_) is None:
        raise ContractError(f"malformed event type {type_!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ContractError(f"malformed event version {version!r}")


default_registry = Registry()
"""The registry of the service's contracts, filled by the modules in ``shared.events``."""

event = default_registry.register
upcaster = default_registry.upcaster
new_event = default_registry.new_event
parse_event = default_registry.parse_event
latest = default_registry.latest
all_models = default_registry.all_models
EVENT_TYPES: Set[str] = default_registry.types
"""Live read-only set of the registered type names (compare with ``==``, test with ``in``)."""
