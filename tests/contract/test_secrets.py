"""The secrets guard: no contract field can carry a secret, a code or a phone number in clear.

It walks every field of every registered model (into nested models) and requires a field
whose name looks sensitive to be typed ``Sealed`` or ``MaskedPhone``.
"""

import re
import types
import typing
from collections.abc import Iterator

from pydantic import BaseModel

from shared.envelope import Envelope
from shared.registry import all_models, new_event
from shared.types import MaskedPhone, Sealed
from tests.contract.examples import WHEN, example, sealed_code

SUSPICIOUS = re.compile(
    r"(?:^|_)(secret|code|otp|password|pin|recovery_token|nonce|signature|phone|number|key)(?:_|$)",
    re.IGNORECASE,
)
SAFE_TYPES = (Sealed, MaskedPhone, type(None))


def suspicious(name: str) -> bool:
    """Whether a word part of ``name`` (snake_case or camelCase) looks sensitive."""
    return SUSPICIOUS.search(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)) is not None


def safe(hint: object) -> bool:
    """Whether every member type of ``hint`` is ``Sealed``, ``MaskedPhone`` or ``None``."""
    return all(any(leaf == allowed for allowed in SAFE_TYPES) for leaf in leaves(hint))


# Suspicious-looking names that are known to hold no secret. Keep this list short and justify
# every entry; a new entry needs review.
ALLOWLIST = {
    # sms.failed: the SMS provider's numeric error code (e.g. Twilio 30003), not a one-time code.
    "error_code",
    # audit.checkpoint_signed: an Ed25519 signature and the fingerprint of the PUBLIC key that
    # checks it; both are published so that anyone can verify, neither grants anything.
    "signature",
    "key_id",
}


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, object]]:
    """(path, name, annotation with Annotated metadata) for every field, recursively."""
    hints = typing.get_type_hints(model, include_extras=True)
    for name in model.model_fields:
        hint = hints[name]
        yield f"{prefix}{name}", name, hint
        for nested in leaves(hint):
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                yield from fields(nested, f"{prefix}{name}.")


def leaves(hint: object) -> Iterator[object]:
    """The member types of a hint: through unions and containers, but not into Annotated."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset, dict):
        for arg in typing.get_args(hint):
            yield from leaves(arg)
    else:
        yield hint


def test_sensitive_field_names_are_sealed_or_masked() -> None:
    offenders, allowed_seen = [], set()
    models: list[type[BaseModel]] = [Envelope, *all_models()]
    for model in models:
        for path, name, hint in fields(model):
            if not suspicious(name):
                continue
            if name in ALLOWLIST:
                allowed_seen.add(name)
                continue
            if not safe(hint):
                offenders.append(f"{getattr(model, 'TYPE', model.__name__)}: {path}: {hint}")
    assert offenders == []
    assert allowed_seen == ALLOWLIST, "drop allowlist entries that no field uses any more"


def test_guard_catches_a_clear_code_and_a_full_phone() -> None:
    class Nested(BaseModel):
        pin: str

    class Leaky(BaseModel):
        otp_code: str
        phone_number: MaskedPhone | str
        api_key: Sealed
        devices: list[Nested] | None

    bad = [path for path, name, hint in fields(Leaky) if suspicious(name) and not safe(hint)]
    assert bad == ["otp_code", "phone_number", "devices.pin"]


def test_the_guard_matches_word_parts_only() -> None:
    for name in ("code", "error_code", "phoneNumber", "PIN", "recovery_token", "apiKey"):
        assert suspicious(name), name
    for name in ("token_id", "recovery_id", "provider_message_id", "keyboard", "opinion"):
        assert not suspicious(name), name


def test_repr_of_an_event_with_a_sealed_code_hides_the_ciphertext() -> None:
    from shared.events.sms import SmsRequestedV1

    code = sealed_code()
    data = SmsRequestedV1(**example("sms.requested").model_dump(), code=code)
    ciphertext = code.reveal()
    assert ciphertext not in repr(data)
    assert ciphertext not in str(data)
    for shown in (repr(code), str(code), f"{code}", "%s" % code):  # noqa: UP031 - logging style
        assert ciphertext not in shown
    assert repr(code) == "***"
    # ...but the value itself is intact on the wire (version 1 carried it for the SMS worker).
    envelope = new_event(data, user_id="u", correlation_id="c", occurred_at=WHEN)
    assert envelope.data["code"] == ciphertext
    assert type(envelope.data["code"]) is str
